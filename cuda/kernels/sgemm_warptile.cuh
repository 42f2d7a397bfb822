// FP32 SGEMM with warp tiling: the block tile (BM x BN) is split into warp tiles (WM x WN), each warp tile into
// WMITER x WNITER sub-tiles, and each thread of a warp computes TM x TN outputs of every sub-tile. A warp's reads of
// shared memory then touch few distinct addresses (broadcasts), and each thread keeps
// WMITER*TM x WNITER*TN accumulators in registers. A tiles are stored transposed (As[k][m], padded by 4 floats so
// float4 reads stay aligned), B tiles as float4 (vectorised shared stores); the next k-tile is prefetched into
// registers while the current one is multiplied (two shared buffers, one barrier per k-tile).
// Row-major C (M x N) = A (M x K) * B (K x N); M % BM, N % BN, K % BK must be 0 (sgemm_warptile_fits checks).
// The configurations the autotuner tries are listed in kSgemmWarptileConfigs below.
#pragma once
#include <cuda_runtime.h>

template <int BM, int BN, int BK, int WM, int WN, int WNITER, int TM, int TN, int NT>
struct WarptileCfg {
  static constexpr int WARPS = NT / 32, WARPS_N = BN / WN, WARPS_M = BM / WM;
  static constexpr int WMITER = (WM * WN) / (32 * TM * TN * WNITER);
  static constexpr int WSUBM = WM / WMITER, WSUBN = WN / WNITER;
  static constexpr int PAD = 4, LDA = BM + PAD;
  static constexpr int A_F4 = BM * BK / 4 / NT, B_F4 = BK * BN / 4 / NT;  // float4 loads per thread per k-tile
  static constexpr size_t SMEM = 2ull * (BK * LDA + BK * BN) * sizeof(float);
  static_assert(WARPS_M * WARPS_N == WARPS, "warp tiles must cover the block tile");
  static_assert(WMITER >= 1 && (WSUBM / TM) * (WSUBN / TN) == 32, "a warp sub-tile must be 32 threads of TM x TN");
  static_assert(A_F4 >= 1 && B_F4 >= 1 && BM * BK % (4 * NT) == 0 && BK * BN % (4 * NT) == 0, "loads must divide");
  static_assert(TN % 4 == 0 && TM % 4 == 0, "TM and TN are read as float4");
};

template <int BM, int BN, int BK, int WM, int WN, int WNITER, int TM, int TN, int NT>
__global__ void __launch_bounds__(NT) sgemm_warptile(int M, int N, int K, const float* __restrict__ A,
                                                     const float* __restrict__ B, float* __restrict__ C) {
  using G = WarptileCfg<BM, BN, BK, WM, WN, WNITER, TM, TN, NT>;
  extern __shared__ float4 smem_f4[];
  float* smem = reinterpret_cast<float*>(smem_f4);
  float* As = smem;                  // [2][BK][LDA]
  float* Bs = smem + 2 * BK * G::LDA;  // [2][BK][BN]
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wrow = warp / G::WARPS_N, wcol = warp % G::WARPS_N;
  const int trow = lane / (G::WSUBN / TN), tcol = lane % (G::WSUBN / TN);
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  A += (size_t)m0 * K;
  B += n0;

  float4 ra[G::A_F4], rb[G::B_F4];
  auto load = [&](int k0) {
#pragma unroll
    for (int i = 0; i < G::A_F4; ++i) {
      const int idx = tid + i * NT, r = idx / (BK / 4), c = (idx % (BK / 4)) * 4;
      ra[i] = *reinterpret_cast<const float4*>(&A[(size_t)r * K + k0 + c]);
    }
#pragma unroll
    for (int i = 0; i < G::B_F4; ++i) {
      const int idx = tid + i * NT, r = idx / (BN / 4), c = (idx % (BN / 4)) * 4;
      rb[i] = *reinterpret_cast<const float4*>(&B[(size_t)(k0 + r) * N + c]);
    }
  };
  auto store = [&](int buf) {
    float* as = As + buf * BK * G::LDA;
    float* bs = Bs + buf * BK * BN;
#pragma unroll
    for (int i = 0; i < G::A_F4; ++i) {
      const int idx = tid + i * NT, r = idx / (BK / 4), c = (idx % (BK / 4)) * 4;
      as[(c + 0) * G::LDA + r] = ra[i].x;
      as[(c + 1) * G::LDA + r] = ra[i].y;
      as[(c + 2) * G::LDA + r] = ra[i].z;
      as[(c + 3) * G::LDA + r] = ra[i].w;
    }
#pragma unroll
    for (int i = 0; i < G::B_F4; ++i) {
      const int idx = tid + i * NT, r = idx / (BN / 4), c = (idx % (BN / 4)) * 4;
      *reinterpret_cast<float4*>(&bs[r * BN + c]) = rb[i];
    }
  };

  float acc[G::WMITER * TM][WNITER * TN] = {};
  float fa[G::WMITER * TM], fb[WNITER * TN];
  load(0);
  store(0);
  __syncthreads();
  const int KT = K / BK;
  for (int kt = 0; kt < KT; ++kt) {
    const int buf = kt & 1;
    if (kt + 1 < KT) load((kt + 1) * BK);  // global loads in flight while this tile is multiplied
    const float* as = As + buf * BK * G::LDA + wrow * WM + trow * TM;
    const float* bs = Bs + buf * BK * BN + wcol * WN + tcol * TN;
#pragma unroll
    for (int k = 0; k < BK; ++k) {
#pragma unroll
      for (int wm = 0; wm < G::WMITER; ++wm)
#pragma unroll
        for (int i = 0; i < TM; i += 4)
          *reinterpret_cast<float4*>(&fa[wm * TM + i]) =
              *reinterpret_cast<const float4*>(&as[k * G::LDA + wm * G::WSUBM + i]);
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
    if (kt + 1 < KT) store(buf ^ 1);  // the other buffer: nobody reads it during this tile
    __syncthreads();
  }
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

// One autotuner candidate: its name, block tile and a launcher that raises the kernel's shared-memory limit once.
struct SgemmWarptileConfig {
  const char* name;
  int bm, bn, bk, threads;
  size_t smem;
  void (*launch)(int M, int N, int K, const float* A, const float* B, float* C, cudaStream_t st);
  const void* (*kernel)();
};

template <int BM, int BN, int BK, int WM, int WN, int WNITER, int TM, int TN, int NT>
const void* sgemm_warptile_kernel() {
  using G = WarptileCfg<BM, BN, BK, WM, WN, WNITER, TM, TN, NT>;
  auto f = sgemm_warptile<BM, BN, BK, WM, WN, WNITER, TM, TN, NT>;
  static cudaError_t once = cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)G::SMEM);
  (void)once;
  return (const void*)f;
}

template <int BM, int BN, int BK, int WM, int WN, int WNITER, int TM, int TN, int NT>
void sgemm_warptile_launch(int M, int N, int K, const float* A, const float* B, float* C, cudaStream_t st) {
  using G = WarptileCfg<BM, BN, BK, WM, WN, WNITER, TM, TN, NT>;
  sgemm_warptile_kernel<BM, BN, BK, WM, WN, WNITER, TM, TN, NT>();
  sgemm_warptile<BM, BN, BK, WM, WN, WNITER, TM, TN, NT><<<dim3(N / BN, M / BM), NT, G::SMEM, st>>>(M, N, K, A, B, C);
}

#define SGEMM_WT(BM, BN, BK, WM, WN, WNITER, TM, TN, NT)                                                           \
  SgemmWarptileConfig {                                                                                           \
    "BM" #BM " BN" #BN " BK" #BK " WM" #WM " WN" #WN " WNITER" #WNITER " TM" #TM " TN" #TN " threads" #NT, BM, BN, \
        BK, NT, WarptileCfg<BM, BN, BK, WM, WN, WNITER, TM, TN, NT>::SMEM,                                        \
        sgemm_warptile_launch<BM, BN, BK, WM, WN, WNITER, TM, TN, NT>,                                            \
        sgemm_warptile_kernel<BM, BN, BK, WM, WN, WNITER, TM, TN, NT>                                             \
  }

// The autotuner's search space: block tiles 64..256 wide, 128 or 256 threads, 64 or 128 accumulators per thread.
inline const SgemmWarptileConfig kSgemmWarptileConfigs[] = {
    SGEMM_WT(128, 128, 16, 64, 64, 4, 8, 4, 128),   // 128 accumulators/thread, 4 warps
    SGEMM_WT(128, 128, 8, 64, 64, 4, 8, 4, 128),    // the same, shorter k-tile
    SGEMM_WT(128, 128, 8, 64, 64, 4, 4, 4, 128),    // the same, TM4 x 2 sub-tiles: conflict-free A fragment reads
    SGEMM_WT(128, 128, 16, 64, 32, 2, 8, 4, 256),   // 64 accumulators/thread, 8 warps
    SGEMM_WT(128, 256, 16, 64, 64, 4, 8, 4, 256),   // wide block tile, 128 accumulators/thread
    SGEMM_WT(128, 256, 8, 64, 64, 4, 8, 4, 256),    // the same, shorter k-tile
    SGEMM_WT(256, 128, 16, 128, 32, 2, 8, 4, 256),  // tall block tile, 128 accumulators/thread
    SGEMM_WT(256, 128, 8, 128, 32, 2, 8, 4, 256),   // the same, shorter k-tile
    SGEMM_WT(64, 128, 16, 32, 64, 4, 4, 4, 128),    // small block tile (more blocks for small N)
};
#undef SGEMM_WT

inline bool sgemm_warptile_fits(const SgemmWarptileConfig& c, int M, int N, int K) {
  return M % c.bm == 0 && N % c.bn == 0 && K % c.bk == 0;
}
