// The K-major-A cp.async SGEMM (sgemm_kmajor.cuh) with the k-tile boundary hidden: the block's one barrier per
// k-tile sits before the tile's LAST 4-step group instead of before its first, and right after it each thread
// requests the A fragments of the NEXT tile's first group, so they arrive while the last group's FFMAs run. The
// warp never waits for shared-memory latency at a tile boundary; A fragments are double-buffered in registers by
// group parity (BK % 8 == 0 keeps the parity consistent across tiles).
// Why it is safe: every thread passes barrier kt only after finishing tile kt-1 and groups 0..G-2 of tile kt, so
// (a) the stage of tile kt-1 may be refilled after it, (b) tile kt is still intact for the last group (nobody
// refills it before barrier kt+1), and (c) with wait_group(STAGES-3) before it, tile kt+1 has landed for everybody.
// Needs STAGES >= 3. Row-major C = A * B; M % BM, N % BN, K % BK must be 0 (sgemm_warptile_fits checks).
#pragma once
#include <cuda_runtime.h>

#include "sgemm_kmajor.cuh"  // KmajorCfg, cp.async helpers, SgemmWarptileConfig

template <int BM, int BN, int BK, int WM, int WN, int LC, int NT, int STAGES, int MINB, int SWZ>
__global__ void __launch_bounds__(NT, MINB) sgemm_kmajor_xtile(int M, int N, int K, const float* __restrict__ A,
                                                                const float* __restrict__ B, float* __restrict__ C) {
  using P = KmajorCfg<BM, BN, BK, WM, WN, LC, NT, STAGES>;
  static_assert(STAGES >= 3, "the next tile must be in flight while the current one is refilled");
  static_assert(BK % 8 == 0, "an even number of 4-step groups per tile keeps the fragment parity");
  constexpr int G = BK / 4;                       // 4-step groups per tile
  constexpr int STAGE = P::A_STAGE + P::B_STAGE;  // floats per stage: A tile [BM][LDK], then B tile [BK][BN]
  extern __shared__ float4 smem_f4[];
  const float* S = reinterpret_cast<const float*>(smem_f4);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wrow = warp / P::WARPS_N, wcol = warp % P::WARPS_N;
  int trow, tcol;
  P::lane_place(lane, SWZ, trow, tcol);
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

  constexpr int A_ROWS = NT / (BK / 4), B_ROWS = NT / (BN / 4);
  static_assert(NT % (BK / 4) == 0 && NT % (BN / 4) == 0, "copy rows must be whole");
  const int ar = tid / (BK / 4), ac = (tid % (BK / 4)) * 4;
  const int br = tid / (BN / 4), bc = (tid % (BN / 4)) * 4;
  const float* a_src = A + (size_t)(m0 + ar) * K + ac;
  const float* b_src = B + (size_t)br * N + n0 + bc;
  const size_t a_step = (size_t)A_ROWS * K, b_step = (size_t)B_ROWS * N, b_tile = (size_t)BK * N;
  const unsigned a_dst = (unsigned)__cvta_generic_to_shared(S) + (ar * P::LDK + ac) * 4;
  const unsigned b_dst = (unsigned)__cvta_generic_to_shared(S) + (P::A_STAGE + br * BN + bc) * 4;
  auto load = [&](int stage) {  // issue the copies of the next k-tile into `stage` (no commit)
#pragma unroll
    for (int i = 0; i < P::A_N; ++i)
      sgemm_cp_async16_u32(a_dst + (stage * STAGE + i * A_ROWS * P::LDK) * 4, a_src + i * a_step);
#pragma unroll
    for (int i = 0; i < P::B_N; ++i)
      sgemm_cp_async16_u32(b_dst + (stage * STAGE + i * B_ROWS * BN) * 4, b_src + i * b_step);
    a_src += BK;
    b_src += b_tile;
  };
  const int a_off = (wrow * WM + trow) * P::LDK, b_off = P::A_STAGE + wcol * WN + tcol * 4;
  float fa[2][P::RM][4];
  auto load_fa = [&](float (&f)[P::RM][4], const float* as, int kg) {
#pragma unroll
    for (int i = 0; i < P::RM; ++i)
      *reinterpret_cast<float4*>(f[i]) = *reinterpret_cast<const float4*>(&as[i * P::LR * P::LDK + kg]);
  };

  const int KT = K / BK;
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < KT) load(s);
    sgemm_cp_async_commit();  // always commit, so the group count stays in step with the tile count
  }
  sgemm_cp_async_wait<STAGES - 2>();  // tile 0 has landed (this thread's copies) ...
  __syncthreads();                    // ... everybody's
  load_fa(fa[0], S + a_off, 0);

  float acc[P::RM][P::NG * 4] = {};
  int rs = 0, ws = STAGES - 1;  // stage of tile kt, stage refilled during iteration kt (it held tile kt-1)
  for (int kt = 0; kt < KT; ++kt) {
    const float* as = S + rs * STAGE + a_off;
    const float* bs = S + rs * STAGE + b_off;
    const int rn = rs + 1 == STAGES ? 0 : rs + 1;  // stage of tile kt+1
#pragma unroll
    for (int g = 0; g < G; ++g) {
      if (g + 1 < G) {
        load_fa(fa[(g + 1) & 1], as, 4 * (g + 1));
      } else {
        sgemm_cp_async_wait<STAGES - 3>();  // tile kt+1 has landed (this thread's copies) ...
        __syncthreads();  // ... everybody's; everybody finished tile kt-1 and groups 0..G-2 of tile kt
        if (kt + STAGES - 1 < KT) load(ws);
        sgemm_cp_async_commit();
        if (kt + 1 < KT) load_fa(fa[(g + 1) & 1], S + rn * STAGE + a_off, 0);
      }
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        float fb[P::NG * 4];
#pragma unroll
        for (int q = 0; q < P::NG; ++q)
          *reinterpret_cast<float4*>(&fb[q * 4]) =
              *reinterpret_cast<const float4*>(&bs[(4 * g + kk) * BN + q * 4 * LC]);
#pragma unroll
        for (int i = 0; i < P::RM; ++i)
#pragma unroll
          for (int j = 0; j < P::NG * 4; ++j) acc[i][j] = fmaf(fa[g & 1][i][kk], fb[j], acc[i][j]);
      }
    }
    rs = rn;
    ws = ws + 1 == STAGES ? 0 : ws + 1;
  }
  sgemm_cp_async_wait<0>();  // no copy may still target shared memory when the block exits
#pragma unroll
  for (int i = 0; i < P::RM; ++i) {
    const int r = m0 + wrow * WM + i * P::LR + trow;
#pragma unroll
    for (int q = 0; q < P::NG; ++q) {
      const int c = n0 + wcol * WN + q * 4 * LC + tcol * 4;
      *reinterpret_cast<float4*>(&C[(size_t)r * N + c]) =
          make_float4(acc[i][q * 4], acc[i][q * 4 + 1], acc[i][q * 4 + 2], acc[i][q * 4 + 3]);
    }
  }
}

template <int BM, int BN, int BK, int WM, int WN, int LC, int NT, int STAGES, int MINB, int SWZ>
const void* sgemm_kmajor_xtile_kernel() {
  using P = KmajorCfg<BM, BN, BK, WM, WN, LC, NT, STAGES>;
  auto f = sgemm_kmajor_xtile<BM, BN, BK, WM, WN, LC, NT, STAGES, MINB, SWZ>;
  static cudaError_t once = cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)P::SMEM);
  (void)once;
  return (const void*)f;
}

template <int BM, int BN, int BK, int WM, int WN, int LC, int NT, int STAGES, int MINB, int SWZ>
void sgemm_kmajor_xtile_launch(int M, int N, int K, const float* A, const float* B, float* C, cudaStream_t st) {
  using P = KmajorCfg<BM, BN, BK, WM, WN, LC, NT, STAGES>;
  sgemm_kmajor_xtile_kernel<BM, BN, BK, WM, WN, LC, NT, STAGES, MINB, SWZ>();
  sgemm_kmajor_xtile<BM, BN, BK, WM, WN, LC, NT, STAGES, MINB, SWZ>
      <<<dim3(N / BN, M / BM), NT, P::SMEM, st>>>(M, N, K, A, B, C);
}

#define SGEMM_KMXU(BM, BN, BK, WM, WN, LC, NT, ST, MINB, SWZ, SUFFIX)                                              \
  SgemmWarptileConfig {                                                                                         \
    "K-major A, next-tile fragments early, cp.async " #ST "-stage BM" #BM " BN" #BN " BK" #BK " WM" #WM " WN" #WN \
    " lanes" #LC "-wide threads" #NT " minblocks" #MINB SUFFIX,                                                  \
        BM, BN, BK, NT, KmajorCfg<BM, BN, BK, WM, WN, LC, NT, ST>::SMEM,                                         \
        sgemm_kmajor_xtile_launch<BM, BN, BK, WM, WN, LC, NT, ST, MINB, SWZ>,                                    \
        sgemm_kmajor_xtile_kernel<BM, BN, BK, WM, WN, LC, NT, ST, MINB, SWZ>                                     \
  }
#define SGEMM_KMX(BM, BN, BK, WM, WN, LC, NT, ST, MINB) SGEMM_KMXU(BM, BN, BK, WM, WN, LC, NT, ST, MINB, 0, "")

// Candidates added to the autotuner's search (after the plain K-major ones).
inline const SgemmWarptileConfig kSgemmKmajorXtileConfigs[] = {
    SGEMM_KMX(128, 128, 8, 64, 64, 4, 128, 4, 2),   // 4 warps of 64x64, 8x16 per thread, 4 stages
    SGEMM_KMX(128, 128, 16, 64, 64, 4, 128, 4, 2),  // the same with half the barriers
    SGEMM_KMXU(128, 128, 8, 64, 64, 4, 128, 4, 2, 1, " paired lanes"),  // lanes paired for both operands' loads
};
#undef SGEMM_KMX
#undef SGEMM_KMXU
