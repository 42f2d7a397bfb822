// Host interface of the persistent, warp-specialised wgmma GEMM (hgemm_wgmma_persistent.cu, sm_90a only).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

// C (M x N, row-major fp32) = A (M x K, row-major fp16) * Bt^T, Bt (N x K, row-major fp16); block tile 128 x bn.
// Any M > 0 (rows past M are zero-filled by TMA and not stored); N % bn == 0, K % 64 == 0.
bool hgemm_wgmma_persistent_shape_ok(int bn, int M, int N, int K);
void launch_hgemm_wgmma_persistent(int bn, int M, int N, int K, const half* A, const half* Bt, float* C,
                                   cudaStream_t st = 0);
// registers per thread at launch (before setmaxnreg), dynamic shared memory, stages
void hgemm_wgmma_persistent_info(int bn, int* registers, size_t* smem_bytes, int* stages);
