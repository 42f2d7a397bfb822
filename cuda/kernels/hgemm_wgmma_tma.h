// Host interface of the wgmma + TMA tensor-core GEMM (hgemm_wgmma_tma.cu, compiled for sm_90a only).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>

struct WgmmaInfo {
  int threads, registers, blocks_per_sm, stages;
  size_t smem_bytes;
};

// C (M x N, row-major fp32) = A (M x K, row-major fp16) * Bt^T, Bt (N x K, row-major fp16); block tile 128 x bn
bool hgemm_wgmma_shape_ok(int bn, int M, int N, int K);
void launch_hgemm_wgmma(int bn, int M, int N, int K, const half* A, const half* Bt, float* C, cudaStream_t st = 0);
WgmmaInfo hgemm_wgmma_info(int bn);
