// FP32 SGEMM that keeps A's tile K-major in shared memory (As[m][k], as it lies in global memory), so both
// operands are copied 16 bytes at a time by a STAGES-deep cp.async pipeline (no transposing 4-byte copies, no
// register staging, two copy instructions per operand and thread for a 128 x 8 tile). A thread reads its A
// fragment along k: one LDS.128 gives one row's 4 k-values, so per 4 k-steps a thread loads RM float4 of A and
// 4 x NG float4 of B for RM x 4*NG x 4 FMAs, the same load count as a transposed A tile.
// Thread layout in a warp: LR x LC lanes (LR = 32 / LC). A thread owns rows trow + i*LR (i < RM = WM / LR) of
// its warp tile, so the LR distinct rows a warp reads at once are consecutive; with LDK = BK + 4 (LDK % 8 == 4 or
// LDK % 32 == 4) their float4 fall in disjoint banks (one wavefront, the lanes of one row broadcast). Columns:
// NG groups of 4 consecutive (float4), group g at g*4*LC + tcol*4, so a warp's B reads are contiguous runs.
// KU: 0 unrolls the whole k-tile (BK/4 groups of 4 k-steps); KU > 0 unrolls KU groups and loops over the rest, so a
// long k-tile (fewer barriers) keeps a short loop body (instruction-cache footprint: 1024 FFMA = 16 KB of code).
// Row-major C (M x N) = A (M x K) * B (K x N); M % BM, N % BN, K % BK must be 0 (sgemm_warptile_fits checks).
#pragma once
#include <cuda_runtime.h>

#include "sgemm_cp_async.cuh"  // the cp.async helpers and SgemmWarptileConfig

template <int BM, int BN, int BK, int WM, int WN, int LC, int NT, int STAGES>
struct KmajorCfg {
  static constexpr int WARPS_N = BN / WN, WARPS_M = BM / WM, LR = 32 / LC;
  static constexpr int RM = WM / LR, NG = WN / (4 * LC);  // rows per thread, float4 column groups per thread
  static constexpr int LDK = BK + 4;
  static constexpr int A_STAGE = BM * LDK, B_STAGE = BK * BN;  // floats per stage
  static constexpr int A_N = BM * BK / 4 / NT, B_N = BK * BN / 4 / NT;  // 16-byte copies per thread per tile
  static constexpr size_t SMEM = (size_t)STAGES * (A_STAGE + B_STAGE) * sizeof(float);
  static_assert(WARPS_M * WARPS_N * 32 == NT, "warp tiles must cover the block tile");
  static_assert(LC * LR == 32 && RM * LR == WM && NG * 4 * LC == WN && RM >= 1 && NG >= 1, "lane layout");
  static_assert(BK % 4 == 0 && (LDK % 8 == 4 || LR <= 4), "A rows must fall in disjoint banks");
  static_assert(A_N >= 1 && B_N >= 1 && BM * BK % (4 * NT) == 0 && BK * BN % (4 * NT) == 0, "copies must divide");
  static_assert(STAGES >= 2, "a pipeline needs at least two stages");
  __device__ static void lane_place(int lane, int swz, int& trow, int& tcol) {  // see sgemm_lane_place
    sgemm_lane_place(lane, LC, swz, trow, tcol);
  }
};

template <int BM, int BN, int BK, int WM, int WN, int LC, int NT, int STAGES, int MINB, int KU, int SWZ>
__global__ void __launch_bounds__(NT, MINB) sgemm_kmajor(int M, int N, int K, const float* __restrict__ A,
                                                          const float* __restrict__ B, float* __restrict__ C) {
  using P = KmajorCfg<BM, BN, BK, WM, WN, LC, NT, STAGES>;
  constexpr int STAGE = P::A_STAGE + P::B_STAGE;  // floats per stage: the A tile [BM][LDK], then the B tile [BK][BN]
  extern __shared__ float4 smem_f4[];
  const float* S = reinterpret_cast<const float*>(smem_f4);  // [STAGES][STAGE]
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wrow = warp / P::WARPS_N, wcol = warp % P::WARPS_N;
  int trow, tcol;
  P::lane_place(lane, SWZ, trow, tcol);
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

  // This thread's copies: its first A chunk (row ar, columns ac..ac+3 of the k-tile) and first B chunk (row br,
  // columns bc..); copy i lies A_ROWS (B_ROWS) rows further. Sources advance by one k-tile per load, destinations
  // are fixed offsets within a stage, so the loop spends few instructions on addresses.
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

  const int KT = K / BK;
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < KT) load(s);
    sgemm_cp_async_commit();  // always commit, so the group count stays in step with the tile count
  }

  float acc[P::RM][P::NG * 4] = {};
  int rs = 0, ws = STAGES - 1;  // stage read in this iteration, stage refilled in this iteration
  for (int kt = 0; kt < KT; ++kt) {
    sgemm_cp_async_wait<STAGES - 2>();  // this thread's copies of tile kt have landed ...
    __syncthreads();                    // ... everybody's, and everybody is done with tile kt-1 (stage ws)
    const bool more = kt + STAGES - 1 < KT;
    const float* as = S + rs * STAGE + (wrow * WM + trow) * P::LDK;
    const float* bs = S + rs * STAGE + P::A_STAGE + wcol * WN + tcol * 4;
    constexpr int U = KU == 0 ? BK / 4 : KU;  // 4-step groups per loop-body pass
    static_assert((BK / 4) % U == 0, "KU must divide BK / 4");
    if (KU != 0) {  // rolled k-loop: refill before it
      if (more) load(ws);
      sgemm_cp_async_commit();
    }
#pragma unroll 1
    for (int kg0 = 0; kg0 < BK; kg0 += 4 * U)
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int kg = kg0 + 4 * u;
      float fa[P::RM][4];
#pragma unroll
      for (int i = 0; i < P::RM; ++i)
        *reinterpret_cast<float4*>(fa[i]) = *reinterpret_cast<const float4*>(&as[i * P::LR * P::LDK + kg]);
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        float fb[P::NG * 4];
#pragma unroll
        for (int g = 0; g < P::NG; ++g)
          *reinterpret_cast<float4*>(&fb[g * 4]) =
              *reinterpret_cast<const float4*>(&bs[(kg + kk) * BN + g * 4 * LC]);
        if (KU == 0 && kg == 0 && kk == 0) {  // unrolled tile: refill once the first fragments are requested
          if (more) load(ws);
          sgemm_cp_async_commit();
        }
#pragma unroll
        for (int i = 0; i < P::RM; ++i)
#pragma unroll
          for (int j = 0; j < P::NG * 4; ++j) acc[i][j] = fmaf(fa[i][kk], fb[j], acc[i][j]);
      }
    }
    rs = rs + 1 == STAGES ? 0 : rs + 1;
    ws = ws + 1 == STAGES ? 0 : ws + 1;
  }
  sgemm_cp_async_wait<0>();  // no copy may still target shared memory when the block exits
#pragma unroll
  for (int i = 0; i < P::RM; ++i) {
    const int r = m0 + wrow * WM + i * P::LR + trow;
#pragma unroll
    for (int g = 0; g < P::NG; ++g) {
      const int c = n0 + wcol * WN + g * 4 * LC + tcol * 4;
      *reinterpret_cast<float4*>(&C[(size_t)r * N + c]) =
          make_float4(acc[i][g * 4], acc[i][g * 4 + 1], acc[i][g * 4 + 2], acc[i][g * 4 + 3]);
    }
  }
}

template <int BM, int BN, int BK, int WM, int WN, int LC, int NT, int STAGES, int MINB, int KU, int SWZ>
const void* sgemm_kmajor_kernel() {
  using P = KmajorCfg<BM, BN, BK, WM, WN, LC, NT, STAGES>;
  auto f = sgemm_kmajor<BM, BN, BK, WM, WN, LC, NT, STAGES, MINB, KU, SWZ>;
  static cudaError_t once = cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)P::SMEM);
  (void)once;
  return (const void*)f;
}

template <int BM, int BN, int BK, int WM, int WN, int LC, int NT, int STAGES, int MINB, int KU, int SWZ>
void sgemm_kmajor_launch(int M, int N, int K, const float* A, const float* B, float* C, cudaStream_t st) {
  using P = KmajorCfg<BM, BN, BK, WM, WN, LC, NT, STAGES>;
  sgemm_kmajor_kernel<BM, BN, BK, WM, WN, LC, NT, STAGES, MINB, KU, SWZ>();
  sgemm_kmajor<BM, BN, BK, WM, WN, LC, NT, STAGES, MINB, KU, SWZ><<<dim3(N / BN, M / BM), NT, P::SMEM, st>>>(M, N, K, A, B, C);
}

#define SGEMM_KMU(BM, BN, BK, WM, WN, LC, NT, ST, MINB, KU, SWZ, SUFFIX)                                             \
  SgemmWarptileConfig {                                                                                        \
    "K-major A, cp.async " #ST "-stage BM" #BM " BN" #BN " BK" #BK " WM" #WM " WN" #WN " lanes" #LC "-wide"    \
    " threads" #NT " minblocks" #MINB SUFFIX,                                                                   \
        BM, BN, BK, NT, KmajorCfg<BM, BN, BK, WM, WN, LC, NT, ST>::SMEM,                                        \
        sgemm_kmajor_launch<BM, BN, BK, WM, WN, LC, NT, ST, MINB, KU, SWZ>,                                          \
        sgemm_kmajor_kernel<BM, BN, BK, WM, WN, LC, NT, ST, MINB, KU, SWZ>                                        \
  }
#define SGEMM_KM(BM, BN, BK, WM, WN, LC, NT, ST, MINB) SGEMM_KMU(BM, BN, BK, WM, WN, LC, NT, ST, MINB, 0, 0, "")
#define SGEMM_KMP(BM, BN, BK, WM, WN, LC, NT, ST, MINB) \
  SGEMM_KMU(BM, BN, BK, WM, WN, LC, NT, ST, MINB, 0, 1, " paired lanes")
#define SGEMM_KMR(BM, BN, BK, WM, WN, LC, NT, ST, MINB, KU) \
  SGEMM_KMU(BM, BN, BK, WM, WN, LC, NT, ST, MINB, KU, 0, " k-loop of " #KU "x4 steps")

// Candidates added to the autotuner's search (after kSgemmWarptileConfigs and kSgemmCpAsyncConfigs).
inline const SgemmWarptileConfig kSgemmKmajorConfigs[] = {
    SGEMM_KM(128, 128, 8, 64, 64, 4, 128, 3, 2),       // 4 warps of 64x64, 8x16 per thread (cuBLAS's tile shape)
    SGEMM_KMP(128, 128, 8, 64, 64, 4, 128, 3, 2),      // the same, lanes paired for both operands' loads
    SGEMM_KMP(128, 128, 8, 64, 64, 4, 128, 4, 2),      // ... 4 stages
    SGEMM_KM(128, 128, 8, 64, 64, 8, 128, 3, 2),       // the same, 16x8 per thread (fewer B loads, more A loads)
    SGEMM_KM(128, 128, 8, 64, 64, 4, 128, 4, 2),       // 4 stages
    SGEMM_KM(128, 128, 16, 64, 64, 4, 128, 3, 2),      // longer k-tile, half the barriers
    SGEMM_KMR(128, 128, 16, 64, 64, 4, 128, 3, 2, 2),  // ... with an 8-step loop body
    SGEMM_KMR(128, 128, 32, 64, 64, 4, 128, 3, 2, 2),  // a quarter of the barriers, 8-step loop body
    SGEMM_KMR(128, 128, 16, 64, 64, 4, 128, 3, 2, 1),  // 4-step loop body (512 FFMA, ~8 KB of code)
    SGEMM_KM(128, 128, 8, 64, 32, 4, 256, 3, 2),       // 8 warps, 8x8 per thread: 16 warps per SM
    SGEMM_KMP(128, 128, 8, 64, 32, 4, 256, 3, 2),      // ... lanes paired (8x8 needs the most load bandwidth)
    SGEMM_KM(128, 128, 16, 64, 32, 4, 256, 3, 2),      // ... half the barriers
    SGEMM_KM(128, 256, 8, 64, 64, 4, 256, 3, 1),       // wide tile, 8x16 per thread
};
#undef SGEMM_KM
#undef SGEMM_KMR
#undef SGEMM_KMP
#undef SGEMM_KMU
