// FP32 SGEMM with the warp-tile layout of sgemm_warptile.cuh, fed by a STAGES-deep cp.async pipeline instead of
// the register prefetch: the copies of tiles kt+1 .. kt+STAGES-1 are in flight (in the async-copy unit, not in
// registers) while tile kt is multiplied, so no registers hold staged global data and no STS instructions run in
// the loop. A is copied 4 bytes at a time straight into its transposed place (As[k][m]; a warp's 32 copies cover
// 4 rows x 8 columns: 4 sectors per request, and with LDA = BM + 4 the 32 shared addresses fall in 32 different
// banks), B 16 bytes at a time. One barrier per k-tile: after it, every thread has finished tile kt-1, whose stage
// is then refilled. MINB is the __launch_bounds__ minimum of blocks per SM (2 caps a 128-thread block at 255
// registers, a 256-thread one at 128).
// Row-major C (M x N) = A (M x K) * B (K x N); M % BM, N % BN, K % BK must be 0 (sgemm_warptile_fits checks).
#pragma once
#include <cuda_runtime.h>

#include "sgemm_warptile.cuh"

__device__ __forceinline__ void sgemm_cp_async4(float* smem, const float* gmem) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void sgemm_cp_async16(float* smem, const float* gmem) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void sgemm_cp_async4_u32(unsigned smem, const float* gmem) {  // shared-window address
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(smem), "l"(gmem) : "memory");
}
__device__ __forceinline__ void sgemm_cp_async16_u32(unsigned smem, const float* gmem) {  // shared-window address
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem), "l"(gmem) : "memory");
}
__device__ __forceinline__ void sgemm_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void sgemm_cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// A lane's place in a warp's (32 / LC) x LC grid of threads. Plain (swz = 0): row-major, trow = lane / LC.
// Paired (swz = 1): lane bit 0 picks the column and bit 1 the row, so lanes n and n^1 read the same A fragment and
// lanes n and n^2 the same B fragment; the pairs rule of shared-memory loads (uniform addresses of lane pairs pack
// two registers per returned word, documented for sm_70-75) can then halve the return traffic of both operands.
__device__ __forceinline__ void sgemm_lane_place(int lane, int LC, int swz, int& trow, int& tcol) {
  if (swz == 0) {
    trow = lane / LC, tcol = lane % LC;
  } else {
    const int rest = lane >> 2;
    tcol = (lane & 1) | ((rest & (LC / 2 - 1)) << 1);
    trow = ((lane >> 1) & 1) | ((rest / (LC / 2)) << 1);
  }
}

template <int BM, int BN, int BK, int WM, int WN, int WNITER, int TM, int TN, int NT, int STAGES>
struct CpAsyncCfg {
  using G = WarptileCfg<BM, BN, BK, WM, WN, WNITER, TM, TN, NT>;
  static constexpr int LDA = G::LDA;
  static constexpr int A_STAGE = BK * LDA, B_STAGE = BK * BN;  // floats per stage
  static constexpr int A_N = BM * BK / NT, B_N = BK * BN / 4 / NT;  // 4-byte A copies, 16-byte B copies per thread
  static constexpr size_t SMEM = (size_t)STAGES * (A_STAGE + B_STAGE) * sizeof(float);
  static_assert(STAGES >= 2, "a pipeline needs at least two stages");
  static_assert(BK % 8 == 0 && BM * BK % NT == 0 && A_N >= 1, "A copies: 8 columns per row group, whole per thread");
  static_assert(B_N >= 1 && BK * BN % (4 * NT) == 0, "B copies must divide among the threads");
};

template <int BM, int BN, int BK, int WM, int WN, int WNITER, int TM, int TN, int NT, int STAGES, int MINB, int SWZ>
__global__ void __launch_bounds__(NT, MINB) sgemm_cp_async(int M, int N, int K, const float* __restrict__ A,
                                                            const float* __restrict__ B, float* __restrict__ C) {
  using P = CpAsyncCfg<BM, BN, BK, WM, WN, WNITER, TM, TN, NT, STAGES>;
  using G = typename P::G;
  extern __shared__ float4 smem_f4[];
  float* As = reinterpret_cast<float*>(smem_f4);  // [STAGES][BK][LDA]
  float* Bs = As + STAGES * P::A_STAGE;           // [STAGES][BK][BN]
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wrow = warp / G::WARPS_N, wcol = warp % G::WARPS_N;
  int trow, tcol;
  sgemm_lane_place(lane, G::WSUBN / TN, SWZ & 1, trow, tcol);
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  A += (size_t)m0 * K;
  B += n0;

  // SWZ bit 1 ("lean copies"): the same copies, addressed from per-thread pointers that advance one k-tile per load
  // (copy i = column group h, row group l: row tid/8 + l*NT/8, column tid%8 + 8h) instead of recomputed indices
  constexpr int RB = 8 * BM / NT, B_ROWS = NT / (BN / 4);
  static_assert(NT % 8 == 0 && BM % (NT / 8) == 0 && P::A_N % RB == 0 && NT % (BN / 4) == 0, "lean copy layout");
  const float* a_src = A + (size_t)(tid / 8) * K + tid % 8;
  const float* b_src = B + (size_t)(tid / (BN / 4)) * N + (tid % (BN / 4)) * 4;
  const size_t a_step = (size_t)(NT / 8) * K, b_step = (size_t)B_ROWS * N, b_tile = (size_t)BK * N;
  const unsigned a_dst = (unsigned)__cvta_generic_to_shared(As) + ((tid % 8) * P::LDA + tid / 8) * 4;
  const unsigned b_dst = (unsigned)__cvta_generic_to_shared(Bs) + ((tid / (BN / 4)) * BN + (tid % (BN / 4)) * 4) * 4;
  auto load_lean = [&](int s) {  // the next k-tile (loads come in tile order) into stage s
    const unsigned ad = a_dst + s * P::A_STAGE * 4, bd = b_dst + s * P::B_STAGE * 4;
    const float* p = a_src;
#pragma unroll
    for (int l = 0; l < RB; ++l, p += a_step)
#pragma unroll
      for (int h = 0; h < P::A_N / RB; ++h) sgemm_cp_async4_u32(ad + (8 * h * P::LDA + l * (NT / 8)) * 4, p + 8 * h);
#pragma unroll
    for (int i = 0; i < P::B_N; ++i) sgemm_cp_async16_u32(bd + i * B_ROWS * BN * 4, b_src + i * b_step);
    a_src += BK;
    b_src += b_tile;
  };

  // issue the copies of k-tile `kt` into stage `s` (no commit)
  auto load = [&](int kt, int s) {
    if (SWZ & 2) {
      load_lean(s);
      return;
    }
    const int k0 = kt * BK;
    float* as = As + s * P::A_STAGE;
    float* bs = Bs + s * P::B_STAGE;
#pragma unroll
    for (int i = 0; i < P::A_N; ++i) {
      // lanes: 4 rows x 8 consecutive columns (32-byte runs), the column group of 8 above that
      const int idx = tid + i * NT, c = idx % 8 + 8 * (idx / (8 * BM)), r = (idx / 8) % BM;
      sgemm_cp_async4(&as[c * P::LDA + r], &A[(size_t)r * K + k0 + c]);
    }
#pragma unroll
    for (int i = 0; i < P::B_N; ++i) {
      const int idx = tid + i * NT, r = idx / (BN / 4), c = (idx % (BN / 4)) * 4;
      sgemm_cp_async16(&bs[r * BN + c], &B[(size_t)(k0 + r) * N + c]);
    }
  };

  const int KT = K / BK;
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < KT) load(s, s);
    sgemm_cp_async_commit();  // always commit, so the group count stays in step with the tile count
  }

  float acc[G::WMITER * TM][WNITER * TN] = {};
  float fa[G::WMITER * TM], fb[WNITER * TN];
  for (int kt = 0; kt < KT; ++kt) {
    sgemm_cp_async_wait<STAGES - 2>();  // this thread's copies of tile kt have landed ...
    __syncthreads();                    // ... everybody's, and everybody is done with tile kt-1
    if (kt + STAGES - 1 < KT) load(kt + STAGES - 1, (kt + STAGES - 1) % STAGES);
    sgemm_cp_async_commit();
    const int s = kt % STAGES;
    const float* as = As + s * P::A_STAGE + wrow * WM + trow * TM;
    const float* bs = Bs + s * P::B_STAGE + wcol * WN + tcol * TN;
#pragma unroll
    for (int k = 0; k < BK; ++k) {
#pragma unroll
      for (int wm = 0; wm < G::WMITER; ++wm)
#pragma unroll
        for (int i = 0; i < TM; i += 4)
          *reinterpret_cast<float4*>(&fa[wm * TM + i]) =
              *reinterpret_cast<const float4*>(&as[k * P::LDA + wm * G::WSUBM + i]);
#pragma unroll
      for (int wn = 0; wn < WNITER; ++wn)
#pragma unroll
        for (int j = 0; j < TN; j += 4)
          *reinterpret_cast<float4*>(&fb[wn * TN + j]) =
              *reinterpret_cast<const float4*>(&bs[k * BN + wn * G::WSUBN + j]);
#pragma unroll
      for (int i = 0; i < G::WMITER * TM; ++i)
#pragma unroll
        for (int j = 0; j < WNITER * TN; ++j) acc[i][j] = fmaf(fa[i], fb[j], acc[i][j]);
    }
  }
  sgemm_cp_async_wait<0>();  // no copy may still target shared memory when the block exits
#pragma unroll
  for (int wm = 0; wm < G::WMITER; ++wm)
#pragma unroll
    for (int i = 0; i < TM; ++i) {
      const int r = m0 + wrow * WM + wm * G::WSUBM + trow * TM + i;
#pragma unroll
      for (int wn = 0; wn < WNITER; ++wn)
#pragma unroll
        for (int j = 0; j < TN; j += 4) {
          const int c = n0 + wcol * WN + wn * G::WSUBN + tcol * TN + j;
          const float* a = &acc[wm * TM + i][wn * TN + j];
          *reinterpret_cast<float4*>(&C[(size_t)r * N + c]) = make_float4(a[0], a[1], a[2], a[3]);
        }
    }
}

template <int BM, int BN, int BK, int WM, int WN, int WNITER, int TM, int TN, int NT, int STAGES, int MINB, int SWZ>
const void* sgemm_cp_async_kernel() {
  using P = CpAsyncCfg<BM, BN, BK, WM, WN, WNITER, TM, TN, NT, STAGES>;
  auto f = sgemm_cp_async<BM, BN, BK, WM, WN, WNITER, TM, TN, NT, STAGES, MINB, SWZ>;
  static cudaError_t once = cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)P::SMEM);
  (void)once;
  return (const void*)f;
}

template <int BM, int BN, int BK, int WM, int WN, int WNITER, int TM, int TN, int NT, int STAGES, int MINB, int SWZ>
void sgemm_cp_async_launch(int M, int N, int K, const float* A, const float* B, float* C, cudaStream_t st) {
  using P = CpAsyncCfg<BM, BN, BK, WM, WN, WNITER, TM, TN, NT, STAGES>;
  sgemm_cp_async_kernel<BM, BN, BK, WM, WN, WNITER, TM, TN, NT, STAGES, MINB, SWZ>();
  sgemm_cp_async<BM, BN, BK, WM, WN, WNITER, TM, TN, NT, STAGES, MINB, SWZ>
      <<<dim3(N / BN, M / BM), NT, P::SMEM, st>>>(M, N, K, A, B, C);
}

#define SGEMM_CPAU(BM, BN, BK, WM, WN, WNITER, TM, TN, NT, ST, MINB, SWZ, SUFFIX)                                \
  SgemmWarptileConfig {                                                                                          \
    "cp.async " #ST "-stage BM" #BM " BN" #BN " BK" #BK " WM" #WM " WN" #WN " WNITER" #WNITER " TM" #TM " TN" #TN \
    " threads" #NT " minblocks" #MINB SUFFIX,                                                                     \
        BM, BN, BK, NT, CpAsyncCfg<BM, BN, BK, WM, WN, WNITER, TM, TN, NT, ST>::SMEM,                             \
        sgemm_cp_async_launch<BM, BN, BK, WM, WN, WNITER, TM, TN, NT, ST, MINB, SWZ>,                             \
        sgemm_cp_async_kernel<BM, BN, BK, WM, WN, WNITER, TM, TN, NT, ST, MINB, SWZ>                              \
  }
#define SGEMM_CPA(BM, BN, BK, WM, WN, WNITER, TM, TN, NT, ST, MINB) \
  SGEMM_CPAU(BM, BN, BK, WM, WN, WNITER, TM, TN, NT, ST, MINB, 0, "")

// Candidates added to the autotuner's search (bench_gemm's autotune_sgemm tries these after kSgemmWarptileConfigs).
// TM4 with WMITER 2 reads each warp's A fragment as 8 consecutive float4 (one conflict-free wavefront) where TM8
// spreads them 32 bytes apart (two-way conflicts).
inline const SgemmWarptileConfig kSgemmCpAsyncConfigs[] = {
    SGEMM_CPA(128, 128, 8, 64, 64, 4, 8, 4, 128, 3, 2),   // the register-prefetch winner's shape, 3 stages
    SGEMM_CPA(128, 128, 8, 64, 64, 4, 4, 4, 128, 3, 2),   // same tile, conflict-free A fragments
    SGEMM_CPAU(128, 128, 8, 64, 64, 4, 4, 4, 128, 3, 2, 1, " paired lanes"),  // ... lanes paired for A and B loads
    SGEMM_CPA(128, 128, 8, 64, 64, 4, 4, 4, 128, 4, 2),   // ... 4 stages
    SGEMM_CPA(128, 128, 16, 64, 64, 4, 4, 4, 128, 3, 2),  // ... longer k-tile, half the barriers
    SGEMM_CPAU(128, 128, 16, 64, 64, 4, 4, 4, 128, 3, 2, 1, " paired lanes"),  // BK16 (call B's best) + pairs
    SGEMM_CPAU(128, 128, 16, 64, 64, 4, 4, 4, 128, 4, 2, 1, " paired lanes"),  // ... 4 stages
    SGEMM_CPAU(128, 128, 16, 64, 64, 4, 4, 4, 128, 3, 2, 3, " paired lanes, lean copies"),  // fewer address ops
    SGEMM_CPAU(128, 128, 16, 64, 64, 4, 4, 4, 128, 4, 2, 3, " paired lanes, lean copies"),
    SGEMM_CPAU(128, 128, 8, 64, 64, 4, 4, 4, 128, 3, 2, 3, " paired lanes, lean copies"),
    SGEMM_CPAU(128, 128, 16, 64, 64, 4, 4, 4, 128, 3, 2, 2, " lean copies"),  // lean without pairs (each alone)
    SGEMM_CPAU(128, 256, 16, 64, 64, 4, 4, 4, 256, 3, 1, 3, " paired lanes, lean copies"),  // wide tile, 8 warps
    SGEMM_CPA(128, 128, 8, 64, 32, 2, 4, 4, 256, 3, 2),   // 8 warps, 8x8 per thread: 16 warps per SM
    SGEMM_CPA(128, 256, 8, 64, 64, 4, 4, 4, 256, 3, 1),   // wide tile, 128 accumulators per thread
};
#undef SGEMM_CPA
#undef SGEMM_CPAU
