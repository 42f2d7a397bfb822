// The implicit-GEMM 3x3 convolution of conv_implicit_gemm_tc.cuh with the MMAs on Hopper's wgmma (sm_90a): the
// same on-the-fly im2col gather by cp.async (zero-filled padding, per-thread tap masks), with BK = 64 so that a
// tile row is 128 bytes and the chunk swizzle (chunk ^ row % 8) is exactly the 128-byte swizzle a wgmma shared-
// memory descriptor reads (tiles 1024-byte aligned). Two warpgroups each own 64 rows of the 128-row block tile and
// issue wgmma m64nBNk16 with both operands read from shared memory (A: pixels x 9C, B: filters x 9C, both K-major).
// The cp.async writes are made visible to the async proxy (fence.proxy.async) before the barrier that precedes the
// MMAs; each k-tile's MMAs are waited for before the next barrier, so the buffer they read can be refilled.
#include <cstdio>

#include "conv_implicit_gemm_tc.cuh"
#include "conv_implicit_gemm_wgmma.h"
#include "wgmma_ptx.cuh"

namespace igemm_wg {

using igemm::cp_async_16;
using igemm::cp_async_commit;
using igemm::cp_async_wait;
using igemm::smem_u32;
using igemm::swz;

// wgmma m64n64k16: f32 += f16 x f16, A and B from shared memory (K-major), D in 32 registers per thread
__device__ __forceinline__ void wgmma_m64n64k16(float (&d)[32], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\n"
      "setp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "%32, %33, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(da), "l"(db), "r"(1));  // scale-d = 1: D += A * B
}

template <int BN>
__device__ __forceinline__ void mma_k16(float (&d)[BN / 2], uint64_t da, uint64_t db) {
  if constexpr (BN == 64)
    wgmma_m64n64k16(d, da, db);
  else
    wgk::wgmma_m64n128k16(d, da, db, 1);
}

// OVERLAP: keep one wgmma group in flight (wait_group 1) while the next k-tile's MMAs are issued; the copies then
// run STAGES - 2 tiles ahead (not STAGES - 1), so the buffer refilled at step kt (tile kt - 2) is one whose MMAs
// every warpgroup has waited for before the barrier of step kt.
// WG warpgroups, each owning 64 rows of the BM = 64 * WG block tile (WG = 1: more, smaller blocks for layers with
// few output pixels).
template <int BN, int STAGES, bool PARTIAL, bool OVERLAP, int WG = 2>
__global__ void __launch_bounds__(128 * WG)
    conv3x3_igemm_wgmma(const half* __restrict__ x, const half* __restrict__ w, void* __restrict__ out, int N, int H,
                        int W, int C, int K) {
  constexpr int BM = 64 * WG, BK = 64, T = 128 * WG, CPR = BK / 8;
  constexpr int A_CH = BM * CPR / T, B_CH = BN * CPR / T;
  static_assert(BN == 64 || BN == 128, "BN: 64 or 128");
  static_assert(!OVERLAP || STAGES >= 3, "OVERLAP needs 3 stages or more");
  constexpr int AHEAD = OVERLAP ? STAGES - 2 : STAGES - 1;  // tiles in flight ahead of the one being multiplied
  extern __shared__ unsigned char smem_raw[];
  // the 128-byte swizzle repeats every 1024 bytes: tiles start on a 1024-byte boundary (A and B stages are 16 KB
  // and BN x 128 bytes, multiples of 1024)
  unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
  half* As = reinterpret_cast<half*>(smem);  // [STAGES][BM * BK]
  half* Bs = As + STAGES * BM * BK;          // [STAGES][BN * BK]

  const int M = N * H * W, HW = H * W;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  const int tid = threadIdx.x, wg = tid / 128, warp = (tid % 128) / 32, lane = tid % 32;

  int a_off[A_CH], a_s[A_CH];
  unsigned a_mask[A_CH];
#pragma unroll
  for (int j = 0; j < A_CH; ++j) {
    const int i = tid + j * T, row = i / CPR, ch = i % CPR, m = m0 + row;
    const int pq = m % HW, p = pq / W, q = pq % W;
    unsigned mask = 0;
    if (m < M)
#pragma unroll
      for (int r = 0; r < 3; ++r)
#pragma unroll
        for (int s = 0; s < 3; ++s)
          if (p + r - 1 >= 0 && p + r - 1 < H && q + s - 1 >= 0 && q + s - 1 < W) mask |= 1u << (r * 3 + s);
    a_mask[j] = mask;
    a_off[j] = m * C + ch * 8;
    a_s[j] = swz<BK>(row, ch);
  }
  int b_off[B_CH], b_s[B_CH];
  bool b_ok[B_CH];
#pragma unroll
  for (int j = 0; j < B_CH; ++j) {
    const int i = tid + j * T, row = i / CPR, ch = i % CPR, n = n0 + row;
    b_ok[j] = n < K;
    b_off[j] = n * 9 * C + ch * 8;
    b_s[j] = swz<BK>(row, ch);
  }
  auto load_tile = [&](int stage, int kt) {
    const int k0 = kt * BK, tap = k0 / C, c0 = k0 - tap * C;
    const int r = tap / 3, s = tap - r * 3;
    const int delta = ((r - 1) * W + (s - 1)) * C + c0;
    const uint32_t as = smem_u32(As + stage * BM * BK), bs = smem_u32(Bs + stage * BN * BK);
#pragma unroll
    for (int j = 0; j < A_CH; ++j) {
      const bool v = (a_mask[j] >> tap) & 1u;
      cp_async_16<true>(as + a_s[j] * 2, v ? x + a_off[j] + delta : x, v);
    }
#pragma unroll
    for (int j = 0; j < B_CH; ++j) cp_async_16(bs + b_s[j] * 2, b_ok[j] ? w + b_off[j] + k0 : w, b_ok[j]);
  };

  float d[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) d[i] = 0.f;

  const int KT_ALL = 9 * C / BK, per = (KT_ALL + gridDim.z - 1) / gridDim.z;
  const int kt0 = blockIdx.z * per, KT = min(KT_ALL - kt0, per);
#pragma unroll
  for (int st = 0; st < AHEAD; ++st) {
    if (st < KT) load_tile(st, kt0 + st);
    cp_async_commit();
  }
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<AHEAD - 1>();
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // cp.async writes -> visible to wgmma
    __syncthreads();
    const int nk = kt + AHEAD;
    if (nk < KT) load_tile(nk % STAGES, kt0 + nk);
    cp_async_commit();
    const int stage = kt % STAGES;
    const half* a = As + stage * BM * BK + wg * 64 * BK;
    const half* b = Bs + stage * BN * BK;
    wgk::fence_regs(d);
    wgk::wgmma_fence();
#pragma unroll
    for (int k = 0; k < BK / 16; ++k) mma_k16<BN>(d, wgk::desc_sw128(a + k * 16), wgk::desc_sw128(b + k * 16));
    wgk::wgmma_commit();
    wgk::fence_regs(d);
    if constexpr (OVERLAP)
      wgk::wgmma_wait<1>();  // tile kt - 1's MMAs are done: its buffer may be refilled after the next barrier
    else
      wgk::wgmma_wait<0>();  // this stage may be refilled after the next barrier
    wgk::fence_regs(d);
  }
  wgk::wgmma_wait<0>();
  wgk::fence_regs(d);
  cp_async_wait<0>();

  // m64nBN accumulators: warp w of the warpgroup holds rows 16w..16w+15; registers 4j+{0,1,2,3} are (r, c),
  // (r, c+1), (r+8, c), (r+8, c+1) with r = lane/4 and c = 8j + 2*(lane%4)
  const int r = m0 + wg * 64 + 16 * warp + lane / 4;
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int c = n0 + 8 * j + 2 * (lane % 4);
    if (c >= K) continue;
    if constexpr (PARTIAL) {
      float* ws = static_cast<float*>(out) + (size_t)blockIdx.z * M * K;
      if (r < M) *reinterpret_cast<float2*>(ws + (size_t)r * K + c) = make_float2(d[4 * j], d[4 * j + 1]);
      if (r + 8 < M) *reinterpret_cast<float2*>(ws + (size_t)(r + 8) * K + c) = make_float2(d[4 * j + 2], d[4 * j + 3]);
    } else {
      half* y = static_cast<half*>(out);
      if (r < M) *reinterpret_cast<half2*>(y + (size_t)r * K + c) = __floats2half2_rn(d[4 * j], d[4 * j + 1]);
      if (r + 8 < M)
        *reinterpret_cast<half2*>(y + (size_t)(r + 8) * K + c) = __floats2half2_rn(d[4 * j + 2], d[4 * j + 3]);
    }
  }
}

template <int BN, int STAGES, bool OVERLAP, bool PARTIAL, int WG>
void launch(int N, int H, int W, int C, int K, const half* x, const half* w, void* out, int splits, cudaStream_t st) {
  auto kern = conv3x3_igemm_wgmma<BN, STAGES, PARTIAL, OVERLAP, WG>;
  constexpr size_t smem = (size_t)STAGES * (64 * WG + BN) * 64 * sizeof(half) + 1024;  // + alignment slack
  static const cudaError_t attr = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (attr != cudaSuccess) {
    std::fprintf(stderr, "{\"error\":\"%s\",\"call\":\"cudaFuncSetAttribute(smem=%zu)\"}\n", cudaGetErrorString(attr),
                 smem);
    std::exit(1);
  }
  const int M = N * H * W;
  dim3 grid((M + 64 * WG - 1) / (64 * WG), (K + BN - 1) / BN, splits);
  kern<<<grid, 128 * WG, smem, st>>>(x, w, out, N, H, W, C, K);
}

template <int BN, int STAGES, bool OVERLAP, int WG = 2>
void launch_any(int N, int H, int W, int C, int K, const half* x, const half* w, void* out, int splits,
                cudaStream_t st) {
  if (splits > 1)
    launch<BN, STAGES, OVERLAP, true, WG>(N, H, W, C, K, x, w, out, splits, st);
  else
    launch<BN, STAGES, OVERLAP, false, WG>(N, H, W, C, K, x, w, out, 1, st);
}

}  // namespace igemm_wg

namespace {
struct WgConfig {
  const char* name;
  int bm, bn;
  void (*launch)(int, int, int, int, int, const half*, const half*, void*, int, cudaStream_t);
};
const WgConfig CONFIGS[] = {
    {"implicit GEMM wgmma, 128x128x64 tile, 2 warpgroups, 3 stages", 128, 128, igemm_wg::launch_any<128, 3, false>},
    {"implicit GEMM wgmma, 128x64x64 tile, 2 warpgroups, 4 stages", 128, 64, igemm_wg::launch_any<64, 4, false>},
    {"implicit GEMM wgmma, 128x128x64 tile, 2 warpgroups, 4 stages, 1 MMA group in flight", 128, 128,
     igemm_wg::launch_any<128, 4, true>},
    {"implicit GEMM wgmma, 128x64x64 tile, 2 warpgroups, 4 stages, 1 MMA group in flight", 128, 64,
     igemm_wg::launch_any<64, 4, true>},
    // one warpgroup per block: twice the blocks for the layers whose 128-row tiles leave SMs idle
    {"implicit GEMM wgmma, 64x128x64 tile, 1 warpgroup, 4 stages, 1 MMA group in flight", 64, 128,
     igemm_wg::launch_any<128, 4, true, 1>},
    {"implicit GEMM wgmma, 64x64x64 tile, 1 warpgroup, 4 stages, 1 MMA group in flight", 64, 64,
     igemm_wg::launch_any<64, 4, true, 1>},
    {"implicit GEMM wgmma, 64x128x64 tile, 1 warpgroup, 3 stages", 64, 128, igemm_wg::launch_any<128, 3, false, 1>},
    {"implicit GEMM wgmma, 64x64x64 tile, 1 warpgroup, 3 stages", 64, 64, igemm_wg::launch_any<64, 3, false, 1>},
    // 72 KB of shared memory: three blocks per SM to hide the short (9 k-tile) mainloops of the 56x56 layer
    {"implicit GEMM wgmma, 128x64x64 tile, 2 warpgroups, 3 stages", 128, 64, igemm_wg::launch_any<64, 3, false>},
};
constexpr int NCONF = sizeof(CONFIGS) / sizeof(CONFIGS[0]);
}  // namespace

int conv_wgmma_configs() { return NCONF; }
const char* conv_wgmma_name(int i) { return i >= 0 && i < NCONF ? CONFIGS[i].name : "?"; }
int conv_wgmma_bn(int i) { return i >= 0 && i < NCONF ? CONFIGS[i].bn : 0; }
int conv_wgmma_bm(int i) { return i >= 0 && i < NCONF ? CONFIGS[i].bm : 0; }
bool conv_wgmma_launch(int cfg, int N, int H, int W, int C, int K, const half* x, const half* w, void* out, int splits,
                       cudaStream_t st) {
  if (!igemm::supports(N, H, W, C, K, 64) || cfg < 0 || cfg >= NCONF) return false;
  CONFIGS[cfg].launch(N, H, W, C, K, x, w, out, splits, st);
  return true;
}
