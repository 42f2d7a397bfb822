// Hopper tensor-core GEMM: TMA tile loads into 128-byte-swizzled shared memory, completed on mbarriers, and
// warpgroup MMAs (wgmma, sm_90a) reading both operands straight from shared memory. One producer warpgroup issues
// the copies (one thread), two consumer warpgroups each own 64 rows of the 128 x BN block tile and keep its
// accumulators in registers; STAGES buffers let copies of tile k+STAGES-1 overlap the MMAs of tile k.
// Layout "TN": A is M x K row-major, B is given transposed (Bt, N x K row-major), so both tiles are K-major, the
// layout wgmma reads without transposition; C = A * Bt^T is M x N row-major fp32. M % 128 == 0, N % BN == 0 and
// K % 64 == 0 are required (checked by the launcher).
#include <map>
#include <tuple>

#include "hgemm_wgmma_tma.h"
#include "wgmma_ptx.cuh"

namespace wgk {

constexpr int BM = 128;

template <int BN, int STAGES>
struct Cfg {
  static constexpr int A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2, STAGE_BYTES = A_BYTES + B_BYTES;
  static constexpr size_t SMEM = (size_t)STAGES * STAGE_BYTES + 2 * STAGES * sizeof(uint64_t) + 1024;  // + align
};

template <int BN, int STAGES>
__global__ void __launch_bounds__(384, 1)
    hgemm_wgmma_tma(int M, int N, int K, const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmB,
                    float* __restrict__ C) {
  using G = Cfg<BN, STAGES>;
  extern __shared__ unsigned char smem_raw[];
  // 128-byte swizzle repeats every 1024 bytes: tiles must start on a 1024-byte boundary of the shared window
  unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
  half* sA = reinterpret_cast<half*>(smem);
  half* sB = reinterpret_cast<half*>(smem + STAGES * G::A_BYTES);
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + STAGES * G::STAGE_BYTES);
  uint64_t* empty = full + STAGES;
  const int wg = threadIdx.x / 128, t = threadIdx.x % 128, warp = t / 32, lane = t % 32;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN, KT = K / BK;
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(&full[s], 1);   // the producer's arrive.expect_tx; the copies complete the bytes
      mbar_init(&empty[s], 8);  // one arrival per consumer warp (2 warpgroups x 4 warps)
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");  // visible to the async (TMA) proxy
  }
  __syncthreads();
  if (wg == 0) {  // producer warpgroup: one thread issues every copy
    if (t == 0) {
      for (int kt = 0; kt < KT; ++kt) {
        const int s = kt % STAGES;
        if (kt >= STAGES) mbar_wait(&empty[s], ((kt / STAGES) - 1) & 1);  // consumers released this buffer
        mbar_expect_tx(&full[s], G::STAGE_BYTES);
        tma_load_2d(sA + s * BM * BK, &tmA, &full[s], kt * BK, m0);
        tma_load_2d(sB + s * BN * BK, &tmB, &full[s], kt * BK, n0);
      }
    }
    return;
  }
  const int row0 = (wg - 1) * 64;  // this consumer warpgroup's rows within the block tile
  float d[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) d[i] = 0.f;
  for (int kt = 0; kt < KT; ++kt) {
    const int s = kt % STAGES;
    mbar_wait(&full[s], (kt / STAGES) & 1);
    const half* a = sA + s * BM * BK + row0 * BK;
    const half* b = sB + s * BN * BK;
    fence_regs(d);
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < BK / 16; ++k)  // 16 halves = 32 bytes along the swizzled row per MMA
      wgmma_tile<BN>(d, desc_sw128(a + k * 16), desc_sw128(b + k * 16), 1);
    wgmma_commit();
    fence_regs(d);
    wgmma_wait<1>();  // the previous tile's MMAs are done reading shared memory: hand its buffer back
    if (kt > 0 && lane == 0) mbar_arrive(&empty[(kt - 1) % STAGES]);
  }
  wgmma_wait<0>();
  fence_regs(d);
  // accumulator layout of m64nN: warp w holds rows 16w..16w+15; register 4j+{0,1,2,3} is (r, c), (r, c+1),
  // (r+8, c), (r+8, c+1) with r = lane/4 and c = 8j + 2*(lane%4)
  const int r = m0 + row0 + 16 * warp + lane / 4;
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int c = n0 + 8 * j + 2 * (lane % 4);
    *reinterpret_cast<float2*>(&C[(size_t)r * N + c]) = make_float2(d[4 * j], d[4 * j + 1]);
    *reinterpret_cast<float2*>(&C[(size_t)(r + 8) * N + c]) = make_float2(d[4 * j + 2], d[4 * j + 3]);
  }
}

}  // namespace wgk

namespace {

using wgk_host::make_map;

template <int BN, int STAGES>
const void* kernel_ptr() {
  static bool once = [] {
    cudaFuncSetAttribute(wgk::hgemm_wgmma_tma<BN, STAGES>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         (int)wgk::Cfg<BN, STAGES>::SMEM);
    return true;
  }();
  (void)once;
  return (const void*)wgk::hgemm_wgmma_tma<BN, STAGES>;
}

template <int BN, int STAGES>
void launch(int M, int N, int K, const half* A, const half* Bt, float* C, cudaStream_t st) {
  // encoding a tensor map is a host call (~µs): cache one per (pointer, shape) so timed loops measure the kernel
  static std::map<std::tuple<const void*, int, int, int>, CUtensorMap> maps;
  auto get = [&](const half* p, int rows, int cols, int box) -> const CUtensorMap& {
    auto key = std::make_tuple((const void*)p, rows, cols, box);
    auto it = maps.find(key);
    if (it == maps.end()) it = maps.emplace(key, make_map(p, rows, cols, box)).first;
    return it->second;
  };
  kernel_ptr<BN, STAGES>();
  dim3 grid(N / BN, M / wgk::BM);
  wgk::hgemm_wgmma_tma<BN, STAGES><<<grid, 384, wgk::Cfg<BN, STAGES>::SMEM, st>>>(
      M, N, K, get(A, M, K, wgk::BM), get(Bt, N, K, BN), C);
}

}  // namespace

bool hgemm_wgmma_shape_ok(int bn, int M, int N, int K) {
  return (bn == 128 || bn == 256) && M % wgk::BM == 0 && N % bn == 0 && K % wgk::BK == 0 && K > 0;
}

void launch_hgemm_wgmma(int bn, int M, int N, int K, const half* A, const half* Bt, float* C, cudaStream_t st) {
  if (!hgemm_wgmma_shape_ok(bn, M, N, K)) {
    std::fprintf(stderr, "{\"error\":\"hgemm_wgmma: BN=%d M=%d N=%d K=%d: BN must be 128 or 256, M %% 128, N %% BN, K %% 64 == 0\"}\n",
                 bn, M, N, K);
    std::exit(1);
  }
  if (bn == 256)
    launch<256, 4>(M, N, K, A, Bt, C, st);
  else
    launch<128, 6>(M, N, K, A, Bt, C, st);
}

WgmmaInfo hgemm_wgmma_info(int bn) {
  WgmmaInfo w{};
  const void* f = bn == 256 ? kernel_ptr<256, 4>() : kernel_ptr<128, 6>();
  w.threads = 384;
  w.smem_bytes = bn == 256 ? wgk::Cfg<256, 4>::SMEM : wgk::Cfg<128, 6>::SMEM;
  w.stages = bn == 256 ? 4 : 6;
  cudaFuncAttributes a;
  if (cudaFuncGetAttributes(&a, f) == cudaSuccess) w.registers = a.numRegs;
  cudaOccupancyMaxActiveBlocksPerMultiprocessor(&w.blocks_per_sm, f, w.threads, w.smem_bytes);
  return w;
}
