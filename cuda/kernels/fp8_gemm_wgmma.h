// Host interface of the FP8 wgmma GEMM (fp8_gemm_wgmma.cu, compiled for sm_90a only).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstddef>

// D (M x N, row-major bf16) = scale_a * scale_b * A (M x K, row-major e4m3) * Bt^T, Bt (N x K, row-major e4m3),
// accumulated in fp32; scale_a and scale_b are single fp32 values in device memory (per-tensor scales, as
// cuBLASLt's A/B scale pointers). Any M > 0, N % 256 == 0, K % 128 == 0. promote = false: 128 x 256 tile, one
// fp32 accumulator set for all of K (FAST_ACCUM semantics); true: 128 x 128 tile, partial sums of each K = 128
// stage promoted into a second fp32 set (cuBLASLt's default semantics).
bool fp8_gemm_wgmma_shape_ok(int M, int N, int K);
void launch_fp8_gemm_wgmma(bool promote, int M, int N, int K, const __nv_fp8_e4m3* A, const __nv_fp8_e4m3* Bt,
                           const float* scale_a, const float* scale_b, __nv_bfloat16* D, cudaStream_t st = 0);
// registers per thread at launch (before setmaxnreg), dynamic shared memory, stages
void fp8_gemm_wgmma_info(bool promote, int* registers, size_t* smem_bytes, int* stages);
