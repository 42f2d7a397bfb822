// Host interface of the 64-row-tile wgmma GEMM for decode-like M (hgemm_wgmma_m64.cu, sm_90a only).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>

// C (M x N, row-major fp32) = A (M x K, row-major fp16) * Bt^T, Bt (N x K, row-major fp16); block tile 64 x bn
// (bn 64 or 128). Any M > 0 (rows past M are zero-filled by TMA and not stored), N % bn == 0, K % 64 == 0.
bool hgemm_wgmma_m64_shape_ok(int bn, int M, int N, int K);
// b_row_major: B is K x N row-major ("NN", read through wgmma's transpose bit) instead of Bt N x K
void launch_hgemm_wgmma_m64(int bn, int M, int N, int K, const half* A, const half* B, float* C, cudaStream_t st = 0,
                            bool b_row_major = false);
// registers per thread, dynamic shared memory, stages, threads and resident blocks per SM (occupancy query)
void hgemm_wgmma_m64_info(int bn, int* registers, size_t* smem_bytes, int* stages, int* threads, int* blocks_per_sm);
