// Tensor-core GEMM through WMMA, the small version (d10.e5): each warp computes one 16x16 tile of C, loading
// 16x16 fp16 fragments straight from global memory; fp32 accumulation.
#pragma once
#include <cuda_fp16.h>
#include <mma.h>
__global__ void hgemm_wmma_naive(int M, int N, int K, const half* A, const half* B, float* C) {
  using namespace nvcuda;
  int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32;
  int tilesN = N / 16, tm = warp / tilesN, tn = warp % tilesN;
  if (tm >= M / 16) return;
  wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> a;
  wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::row_major> b;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
  wmma::fill_fragment(c, 0.0f);
  for (int k = 0; k < K; k += 16) {
    wmma::load_matrix_sync(a, A + (size_t)tm * 16 * K + k, K);
    wmma::load_matrix_sync(b, B + (size_t)k * N + tn * 16, N);
    wmma::mma_sync(c, a, b, c);
  }
  wmma::store_matrix_sync(C + (size_t)tm * 16 * N + tn * 16, c, N, wmma::mem_row_major);
}
