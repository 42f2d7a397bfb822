// Host interface of the persistent wgmma GEMM with B row-major ("NN", hgemm_wgmma_nn.cu, sm_90a only).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>

// C (M x N, row-major fp32) = A (M x K, row-major fp16) * B (K x N, row-major fp16); block tile 128 x 256.
// Any M > 0 (rows past M are zero-filled by TMA and not stored), N % 256 == 0, K % 64 == 0.
bool hgemm_wgmma_nn_shape_ok(int M, int N, int K);
void launch_hgemm_wgmma_nn(int M, int N, int K, const half* A, const half* B, float* C, cudaStream_t st = 0);
void hgemm_wgmma_nn_info(int* registers, size_t* smem_bytes, int* stages);
