// Tensor-core GEMM through WMMA with shared-memory tiles: 128x128 block tile, BK=32, 8 warps each owning a 64x32
// piece (4x2 fragments); tiles arrive by cp.async (16 bytes, bypassing registers) in a 2-stage pipeline.
// Rows are padded by 8 halves (16 bytes) to spread fragment loads over the banks.
#pragma once
#include <cuda_fp16.h>
#include <mma.h>
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__global__ void __launch_bounds__(256) hgemm_wmma_pipelined(int M, int N, int K, const half* A, const half* B,
                                                            float* C) {
  using namespace nvcuda;
  constexpr int BM = 128, BN = 128, BK = 32, LDA = BK + 8, LDB = BN + 8;
  __shared__ __align__(128) half As[2][BM * LDA];
  __shared__ __align__(128) half Bs[2][BK * LDB];
  const int warp = threadIdx.x / 32, wr = warp / 4, wc = warp % 4;  // 2 x 4 warps, each 64 x 32
  A += (size_t)blockIdx.y * BM * K;
  B += (size_t)blockIdx.x * BN;
  auto issue = [&](int s, int k0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      int c = threadIdx.x + 256 * h;  // 512 chunks of 8 halves per tile
      int ar = c / (BK / 8), ac = (c % (BK / 8)) * 8;
      cp_async16(&As[s][ar * LDA + ac], A + (size_t)ar * K + k0 + ac);
      int br = c / (BN / 8), bc = (c % (BN / 8)) * 8;
      cp_async16(&Bs[s][br * LDB + bc], B + (size_t)(k0 + br) * N + bc);
    }
    cp_async_commit();
  };
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  issue(0, 0);
  int s = 0;
  for (int k0 = 0; k0 < K; k0 += BK) {
    if (k0 + BK < K) {
      issue(s ^ 1, k0 + BK);
      cp_async_wait<1>();  // the current stage has landed, the next may still fly
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> a[4];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::row_major> b[2];
#pragma unroll
      for (int i = 0; i < 4; ++i) wmma::load_matrix_sync(a[i], &As[s][(wr * 64 + i * 16) * LDA + kk], LDA);
#pragma unroll
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &Bs[s][kk * LDB + wc * 32 + j * 16], LDB);
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();  // everyone is done with stage s before it is refilled
    s ^= 1;
  }
  C += (size_t)(blockIdx.y * BM + wr * 64) * N + blockIdx.x * BN + wc * 32;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(C + (size_t)i * 16 * N + j * 16, acc[i][j], N, wmma::mem_row_major);
}
