// Persistent, warp-specialised Hopper GEMM: one block per SM loops over output tiles handed out in a grouped
// (L2-friendly) order, so the producer warpgroup's TMA loads of the next tile overlap the consumers' epilogue of
// the current one. `setmaxnreg` moves registers from the producer (40 per thread: it only issues copies) to the two
// consumer warpgroups (232 per thread: 128 accumulators plus the epilogue). Otherwise as hgemm_wgmma_tma.cu: TMA
// with 128-byte swizzle into STAGES buffers on mbarriers, wgmma m64nBNk16 from shared memory, "TN" layout.
// Rows past M are zero-filled by TMA and never stored, so decode-like M (e.g. 64) runs on the same kernel.
#include <map>
#include <tuple>

#include "hgemm_wgmma_persistent.h"
#include "wgmma_ptx.cuh"

namespace wgp {

using namespace wgk;
constexpr int BM = 128, GROUP_M = 8;  // tiles of GROUP_M consecutive row-blocks are walked column by column

template <int BN, int STAGES>
struct Cfg {
  static constexpr int A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2, STAGE_BYTES = A_BYTES + B_BYTES;
  static constexpr size_t SMEM = (size_t)STAGES * STAGE_BYTES + 2 * STAGES * sizeof(uint64_t) + 1024;
};

__device__ __forceinline__ void tile_coords(int tile, int tiles_m, int tiles_n, int& tm, int& tn) {
  const int per_group = GROUP_M * tiles_n, group = tile / per_group, first = group * GROUP_M;
  const int rows = min(tiles_m - first, GROUP_M), in = tile % per_group;
  tm = first + in % rows;
  tn = in / rows;
}

template <int BN, int STAGES>
__global__ void __launch_bounds__(384, 1)
    hgemm_wgmma_persistent(int M, int N, int K, const __grid_constant__ CUtensorMap tmA,
                           const __grid_constant__ CUtensorMap tmB, float* __restrict__ C) {
  using G = Cfg<BN, STAGES>;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
  half* sA = reinterpret_cast<half*>(smem);
  half* sB = reinterpret_cast<half*>(smem + STAGES * G::A_BYTES);
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + STAGES * G::STAGE_BYTES);
  uint64_t* empty = full + STAGES;
  const int wg = threadIdx.x / 128, t = threadIdx.x % 128, warp = t / 32, lane = t % 32;
  const int tiles_m = (M + BM - 1) / BM, tiles_n = N / BN, tiles = tiles_m * tiles_n, KT = K / BK;
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], 8);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (wg == 0) {  // producer warpgroup
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (t == 0) {
      int it = 0;  // k-tiles issued so far, over all of this block's tiles: selects stage and phase
      for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        int tm, tn;
        tile_coords(tile, tiles_m, tiles_n, tm, tn);
        for (int kt = 0; kt < KT; ++kt, ++it) {
          const int s = it % STAGES;
          if (it >= STAGES) mbar_wait(&empty[s], ((it / STAGES) - 1) & 1);
          mbar_expect_tx(&full[s], G::STAGE_BYTES);  // out-of-bounds rows are zero-filled and still counted
          tma_load_2d(sA + s * BM * BK, &tmA, &full[s], kt * BK, tm * BM);
          tma_load_2d(sB + s * BN * BK, &tmB, &full[s], kt * BK, tn * BN);
        }
      }
    }
    return;
  }
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
  const int row0 = (wg - 1) * 64;
  float d[BN / 2];
  int it = 0;
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    int tm, tn;
    tile_coords(tile, tiles_m, tiles_n, tm, tn);
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) d[i] = 0.f;
    for (int kt = 0; kt < KT; ++kt, ++it) {
      const int s = it % STAGES;
      mbar_wait(&full[s], (it / STAGES) & 1);
      const half* a = sA + s * BM * BK + row0 * BK;
      const half* b = sB + s * BN * BK;
      fence_regs(d);
      wgmma_fence();
#pragma unroll
      for (int k = 0; k < BK / 16; ++k) wgmma_tile<BN>(d, desc_sw128(a + k * 16), desc_sw128(b + k * 16), 1);
      wgmma_commit();
      fence_regs(d);
      wgmma_wait<1>();
      if (kt > 0 && lane == 0) mbar_arrive(&empty[(it - 1) % STAGES]);
    }
    wgmma_wait<0>();
    fence_regs(d);
    if (lane == 0) mbar_arrive(&empty[(it - 1) % STAGES]);  // the tile's last buffer: the producer may refill it
    const int r = tm * BM + row0 + 16 * warp + lane / 4;
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
      const int c = tn * BN + 8 * j + 2 * (lane % 4);
      if (r < M) *reinterpret_cast<float2*>(&C[(size_t)r * N + c]) = make_float2(d[4 * j], d[4 * j + 1]);
      if (r + 8 < M) *reinterpret_cast<float2*>(&C[(size_t)(r + 8) * N + c]) = make_float2(d[4 * j + 2], d[4 * j + 3]);
    }
  }
}

}  // namespace wgp

namespace {

template <int BN, int STAGES>
const void* kernel_ptr() {
  static cudaError_t once = cudaFuncSetAttribute(wgp::hgemm_wgmma_persistent<BN, STAGES>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 (int)wgp::Cfg<BN, STAGES>::SMEM);
  (void)once;
  return (const void*)wgp::hgemm_wgmma_persistent<BN, STAGES>;
}

template <int BN, int STAGES>
void launch(int M, int N, int K, const half* A, const half* Bt, float* C, cudaStream_t st) {
  static std::map<std::tuple<const void*, int, int, int>, CUtensorMap> maps;  // encoding is a host call: cache it
  auto get = [&](const half* p, int rows, int cols, int box) -> const CUtensorMap& {
    auto key = std::make_tuple((const void*)p, rows, cols, box);
    auto it = maps.find(key);
    if (it == maps.end()) it = maps.emplace(key, wgk_host::make_map(p, rows, cols, box)).first;
    return it->second;
  };
  static int sms = [] {
    int dev, n;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n;
  }();
  kernel_ptr<BN, STAGES>();
  const int tiles = ((M + wgp::BM - 1) / wgp::BM) * (N / BN);
  wgp::hgemm_wgmma_persistent<BN, STAGES><<<tiles < sms ? tiles : sms, 384, wgp::Cfg<BN, STAGES>::SMEM, st>>>(
      M, N, K, get(A, M, K, wgp::BM), get(Bt, N, K, BN), C);
}

}  // namespace

bool hgemm_wgmma_persistent_shape_ok(int bn, int M, int N, int K) {
  return (bn == 128 || bn == 256) && M > 0 && N % bn == 0 && K % wgk::BK == 0 && K > 0;
}

void launch_hgemm_wgmma_persistent(int bn, int M, int N, int K, const half* A, const half* Bt, float* C,
                                   cudaStream_t st) {
  if (!hgemm_wgmma_persistent_shape_ok(bn, M, N, K)) {
    std::fprintf(stderr,
                 "{\"error\":\"hgemm_wgmma_persistent: BN=%d M=%d N=%d K=%d: BN must be 128 or 256, M > 0, "
                 "N %% BN == 0, K %% 64 == 0\"}\n",
                 bn, M, N, K);
    std::exit(1);
  }
  if (bn == 256)
    launch<256, 4>(M, N, K, A, Bt, C, st);
  else
    launch<128, 6>(M, N, K, A, Bt, C, st);
}

void hgemm_wgmma_persistent_info(int bn, int* registers, size_t* smem_bytes, int* stages) {
  const void* f = bn == 256 ? kernel_ptr<256, 4>() : kernel_ptr<128, 6>();
  cudaFuncAttributes a;
  *registers = cudaFuncGetAttributes(&a, f) == cudaSuccess ? a.numRegs : -1;
  *smem_bytes = bn == 256 ? wgp::Cfg<256, 4>::SMEM : wgp::Cfg<128, 6>::SMEM;
  *stages = bn == 256 ? 4 : 6;
}
