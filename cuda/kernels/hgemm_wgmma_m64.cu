// wgmma GEMM with a 64-row block tile, for decode-like M (a batch of 64 tokens): one consumer warpgroup owns the
// whole 64 x BN tile, so no MMA work or shared memory is spent on the zero rows a 128-row tile would carry, and
// small BN gives N / BN blocks, at least as many as the GPU has SMs: at M = 64 the product streams B (N x K)
// once from DRAM, and every SM must take part to reach the memory bandwidth. With BN = 64 a block needs 96 KB of
// shared memory, so two fit per SM. One producer warp issues the TMA copies (warp 4; the consumer warpgroup is
// warps 0-3), STAGES buffers deep on mbarriers; "TN" layout as hgemm_wgmma_tma.cu, or (NN = 1) B row-major
// K x N read through wgmma's transpose bit, loaded and described as in hgemm_wgmma_nn.cu (64 x 64 boxes, MN-major
// descriptor: 64-wide N blocks 8 KB apart, 8 K rows 1024 bytes apart).
#include <map>
#include <tuple>

#include "hgemm_wgmma_m64.h"
#include "wgmma_ops.cuh"

namespace wgm {

using namespace wgk;
constexpr int BM = 64, THREADS = 160;

template <int BN, int STAGES>
struct Cfg {
  static constexpr int A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2, STAGE_BYTES = A_BYTES + B_BYTES;
  static constexpr size_t SMEM = (size_t)STAGES * STAGE_BYTES + 2 * STAGES * sizeof(uint64_t) + 1024;
};

template <int BN, int STAGES, int NN>
__global__ void __launch_bounds__(THREADS)
    hgemm_wgmma_m64(int M, int N, int K, const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmB,
                    float* __restrict__ C) {
  using G = Cfg<BN, STAGES>;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
  half* sA = reinterpret_cast<half*>(smem);
  half* sB = reinterpret_cast<half*>(smem + STAGES * G::A_BYTES);
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + STAGES * G::STAGE_BYTES);
  uint64_t* empty = full + STAGES;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN, KT = K / BK;
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], 4);  // one arrival per consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (warp == 4) {  // producer warp
    if (lane == 0) {
      for (int kt = 0; kt < KT; ++kt) {
        const int s = kt % STAGES;
        if (kt >= STAGES) mbar_wait_bounded(&empty[s], ((kt / STAGES) - 1) & 1);
        mbar_expect_tx(&full[s], G::STAGE_BYTES);
        tma_load_2d(sA + s * BM * BK, &tmA, &full[s], kt * BK, m0);
        if constexpr (NN) {
#pragma unroll
          for (int j = 0; j < BN / 64; ++j)  // box j: N columns [64j, 64j + 64), the stage's 64 K rows
            tma_load_2d(sB + s * BN * BK + j * 64 * BK, &tmB, &full[s], n0 + 64 * j, kt * BK);
        } else {
          tma_load_2d(sB + s * BN * BK, &tmB, &full[s], kt * BK, n0);
        }
      }
    }
    return;
  }
  float d[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) d[i] = 0.f;
  for (int kt = 0; kt < KT; ++kt) {
    const int s = kt % STAGES;
    mbar_wait_bounded(&full[s], (kt / STAGES) & 1);
    const half* a = sA + s * BM * BK;
    const half* b = sB + s * BN * BK;
    fence_regs(d);
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < BK / 16; ++k) {
      if constexpr (NN)
        wgmma_f16<BN, 1>(d, desc_sw128(a + k * 16), desc_sw128_mn(b + k * 16 * 64, 64 * BK * 2, 1024), 1);
      else
        wgmma_f16<BN, 0>(d, desc_sw128(a + k * 16), desc_sw128(b + k * 16), 1);
    }
    wgmma_commit();
    fence_regs(d);
    wgmma_wait<1>();
    if (kt > 0 && lane == 0) mbar_arrive(&empty[(kt - 1) % STAGES]);
  }
  wgmma_wait<0>();
  fence_regs(d);
  const int r = m0 + 16 * warp + lane / 4;
#pragma unroll
  for (int j = 0; j < BN / 8; ++j) {
    const int c = n0 + 8 * j + 2 * (lane % 4);
    if (r < M) *reinterpret_cast<float2*>(&C[(size_t)r * N + c]) = make_float2(d[4 * j], d[4 * j + 1]);
    if (r + 8 < M) *reinterpret_cast<float2*>(&C[(size_t)(r + 8) * N + c]) = make_float2(d[4 * j + 2], d[4 * j + 3]);
  }
}

}  // namespace wgm

namespace {

constexpr int ST64 = 6, ST128 = 8;  // BN = 64: 6 x 16 KB (two blocks per SM); BN = 128: 8 x 24 KB (one)

template <int BN, int STAGES, int NN = 0>
const void* kernel_ptr() {
  static cudaError_t once = cudaFuncSetAttribute(wgm::hgemm_wgmma_m64<BN, STAGES, NN>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 (int)wgm::Cfg<BN, STAGES>::SMEM);
  (void)once;
  return (const void*)wgm::hgemm_wgmma_m64<BN, STAGES, NN>;
}

template <int BN, int STAGES, int NN>
void launch(int M, int N, int K, const half* A, const half* B, float* C, cudaStream_t st) {
  static std::map<std::tuple<const void*, int, int, int, int>, CUtensorMap> maps;
  auto get = [&](const half* p, int rows, int cols, int box_rows, int box_cols) -> const CUtensorMap& {
    auto key = std::make_tuple((const void*)p, rows, cols, box_rows, box_cols);
    auto it = maps.find(key);
    if (it == maps.end())
      it = maps.emplace(key, wgk_host::make_map_any(p, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, rows, cols, box_rows,
                                                    box_cols, CU_TENSOR_MAP_SWIZZLE_128B))
               .first;
    return it->second;
  };
  kernel_ptr<BN, STAGES, NN>();
  dim3 grid(N / BN, (M + wgm::BM - 1) / wgm::BM);
  // TN: Bt is N x K (boxes BN x 64); NN: B is K x N (boxes 64 K rows x 64 N columns)
  const CUtensorMap& mB = NN ? get(B, K, N, wgk::BK, 64) : get(B, N, K, BN, wgk::BK);
  wgm::hgemm_wgmma_m64<BN, STAGES, NN><<<grid, wgm::THREADS, wgm::Cfg<BN, STAGES>::SMEM, st>>>(
      M, N, K, get(A, M, K, wgm::BM, wgk::BK), mB, C);
}

}  // namespace

bool hgemm_wgmma_m64_shape_ok(int bn, int M, int N, int K) {
  return (bn == 64 || bn == 128) && M > 0 && N > 0 && N % bn == 0 && K > 0 && K % wgk::BK == 0;
}

void launch_hgemm_wgmma_m64(int bn, int M, int N, int K, const half* A, const half* B, float* C, cudaStream_t st,
                            bool b_row_major) {
  if (!hgemm_wgmma_m64_shape_ok(bn, M, N, K)) {
    std::fprintf(stderr,
                 "{\"error\":\"hgemm_wgmma_m64: BN=%d M=%d N=%d K=%d: BN must be 64 or 128, M > 0, N %% BN == 0, "
                 "K %% 64 == 0\"}\n",
                 bn, M, N, K);
    std::exit(1);
  }
  if (bn == 64)
    b_row_major ? launch<64, ST64, 1>(M, N, K, A, B, C, st) : launch<64, ST64, 0>(M, N, K, A, B, C, st);
  else
    b_row_major ? launch<128, ST128, 1>(M, N, K, A, B, C, st) : launch<128, ST128, 0>(M, N, K, A, B, C, st);
}

void hgemm_wgmma_m64_info(int bn, int* registers, size_t* smem_bytes, int* stages, int* threads, int* blocks_per_sm) {
  const void* f = bn == 64 ? kernel_ptr<64, ST64>() : kernel_ptr<128, ST128>();
  cudaFuncAttributes a;
  *registers = cudaFuncGetAttributes(&a, f) == cudaSuccess ? a.numRegs : -1;
  *smem_bytes = bn == 64 ? wgm::Cfg<64, ST64>::SMEM : wgm::Cfg<128, ST128>::SMEM;
  *stages = bn == 64 ? ST64 : ST128;
  *threads = wgm::THREADS;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks_per_sm, f, wgm::THREADS, *smem_bytes) != cudaSuccess)
    *blocks_per_sm = -1;
}
