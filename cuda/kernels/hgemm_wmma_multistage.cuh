// Tensor-core GEMM through WMMA, a multi-stage pipeline with larger warp tiles: STAGES shared-memory buffers filled
// by cp.async (STAGES-1 tiles in flight while one is computed), 8 warps each owning WM x WN of a BM x BN block tile.
// A 64x64 warp tile does 16 mma per 8 fragment loads (the 64x32 tile of hgemm_wmma_pipelined: 8 per 6).
#pragma once
#include <cuda_fp16.h>
#include <mma.h>

#include "hgemm_wmma_pipelined.cuh"  // cp_async16 / commit / wait helpers

template <int BM, int BN, int WM, int WN, int STAGES>
struct WmmaCfg {
  static constexpr int BK = 32, LDA = BK + 8, LDB = BN + 8;
  static constexpr size_t smem_bytes = (size_t)STAGES * (BM * LDA + BK * LDB) * sizeof(half);
};

template <int BM, int BN, int WM, int WN, int STAGES>
__global__ void __launch_bounds__(256) hgemm_wmma_multistage(int M, int N, int K, const half* A, const half* B,
                                                             float* C) {
  using namespace nvcuda;
  using Cfg = WmmaCfg<BM, BN, WM, WN, STAGES>;
  constexpr int BK = Cfg::BK, LDA = Cfg::LDA, LDB = Cfg::LDB, WARPS_N = BN / WN, FM = WM / 16, FN = WN / 16;
  static_assert((BM / WM) * (BN / WN) == 8, "8 warps per block");
  extern __shared__ __align__(128) unsigned char smem[];
  half* As = reinterpret_cast<half*>(smem);
  half* Bs = As + STAGES * BM * LDA;
  const int warp = threadIdx.x / 32, wr = warp / WARPS_N, wc = warp % WARPS_N;
  A += (size_t)blockIdx.y * BM * K;
  B += (size_t)blockIdx.x * BN;
  auto issue = [&](int s, int k0) {
    for (int c = threadIdx.x; c < BM * BK / 8; c += 256) {
      int r = c / (BK / 8), col = (c % (BK / 8)) * 8;
      cp_async16(&As[s * BM * LDA + r * LDA + col], A + (size_t)r * K + k0 + col);
    }
    for (int c = threadIdx.x; c < BK * BN / 8; c += 256) {
      int r = c / (BN / 8), col = (c % (BN / 8)) * 8;
      cp_async16(&Bs[s * BK * LDB + r * LDB + col], B + (size_t)(k0 + r) * N + col);
    }
  };
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  const int T = K / BK;
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < T) issue(s, s * BK);
    cp_async_commit();  // always commit, so the group count stays in step with the tile count
  }
  for (int t = 0; t < T; ++t) {
    cp_async_wait<STAGES - 2>();  // tile t has landed
    __syncthreads();              // ... for every thread, and everyone is done computing tile t-1
    int nt = t + STAGES - 1;
    if (nt < T) issue(nt % STAGES, nt * BK);  // refill the stage tile t-1 used
    cp_async_commit();
    const half* as = As + (t % STAGES) * BM * LDA;
    const half* bs = Bs + (t % STAGES) * BK * LDB;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> a[FM];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::row_major> b[FN];
#pragma unroll
      for (int i = 0; i < FM; ++i) wmma::load_matrix_sync(a[i], as + (wr * WM + i * 16) * LDA + kk, LDA);
#pragma unroll
      for (int j = 0; j < FN; ++j) wmma::load_matrix_sync(b[j], bs + kk * LDB + wc * WN + j * 16, LDB);
#pragma unroll
      for (int i = 0; i < FM; ++i)
#pragma unroll
        for (int j = 0; j < FN; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
  }
  C += (size_t)(blockIdx.y * BM + wr * WM) * N + blockIdx.x * BN + wc * WN;
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j)
      wmma::store_matrix_sync(C + (size_t)i * 16 * N + j * 16, acc[i][j], N, wmma::mem_row_major);
}

// Opt in to more than 48 KB of dynamic shared memory, then launch.
template <int BM, int BN, int WM, int WN, int STAGES>
void launch_hgemm_wmma_multistage(int n, const half* A, const half* B, float* C) {
  auto k = hgemm_wmma_multistage<BM, BN, WM, WN, STAGES>;
  size_t smem = WmmaCfg<BM, BN, WM, WN, STAGES>::smem_bytes;
  static bool once = false;
  if (!once) {
    CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    once = true;
  }
  k<<<dim3(n / BN, n / BM), 256, smem>>>(n, n, n, A, B, C);
}
