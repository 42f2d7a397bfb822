// The persistent wgmma GEMM of hgemm_wgmma_persistent.cu with B row-major (K x N, N contiguous: the "NN" layout
// of a plain row-major C = A B). wgmma reads a 16-bit B in that MN-major order itself when the instruction's
// transpose bit for B is set, so no transposed copy of B is made. TMA loads each stage's B tile (64 K rows x 256 N)
// as four 64 x 64 boxes with 128-byte swizzle (each K row of a box is 128 bytes); the B descriptor says so: MN-major
// 128-byte swizzle, 8 K rows 1024 bytes apart (stride byte offset), 64-wide N blocks 8 KB apart (leading byte
// offset). K steps of 16 advance the descriptor by 16 rows = 2048 bytes. A stays K-major as before.
#include <map>
#include <tuple>

#include "hgemm_wgmma_nn.h"
#include "wgmma_ops.cuh"

namespace wgn {

using namespace wgk;
constexpr int BM = 128, BN = 256, STAGES = 4, GROUP_M = 8, NBOX = 64;  // NBOX: N width of one B box (128 bytes)
constexpr int A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2, STAGE_BYTES = A_BYTES + B_BYTES;
constexpr int BOX_BYTES = NBOX * BK * 2;  // 64 N x 64 K halves = 8 KB
constexpr size_t SMEM = (size_t)STAGES * STAGE_BYTES + 2 * STAGES * sizeof(uint64_t) + 1024;

__device__ __forceinline__ void tile_coords(int tile, int tiles_m, int tiles_n, int& tm, int& tn) {
  const int per_group = GROUP_M * tiles_n, group = tile / per_group, first = group * GROUP_M;
  const int rows = min(tiles_m - first, GROUP_M), in = tile % per_group;
  tm = first + in % rows;
  tn = in / rows;
}

__global__ void __launch_bounds__(384, 1)
    hgemm_wgmma_nn(int M, int N, int K, const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmB,
                   float* __restrict__ C) {
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
  half* sA = reinterpret_cast<half*>(smem);
  unsigned char* sB = smem + STAGES * A_BYTES;
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + STAGES * STAGE_BYTES);
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
  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (t == 0) {
      int it = 0;
      for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        int tm, tn;
        tile_coords(tile, tiles_m, tiles_n, tm, tn);
        for (int kt = 0; kt < KT; ++kt, ++it) {
          const int s = it % STAGES;
          if (it >= STAGES) mbar_wait_bounded(&empty[s], ((it / STAGES) - 1) & 1);
          mbar_expect_tx(&full[s], STAGE_BYTES);
          tma_load_2d(sA + s * BM * BK, &tmA, &full[s], kt * BK, tm * BM);
#pragma unroll
          for (int j = 0; j < BN / NBOX; ++j)  // box j: N columns [64j, 64j + 64) of the tile, K rows of the stage
            tma_load_2d(sB + s * B_BYTES + j * BOX_BYTES, &tmB, &full[s], tn * BN + j * NBOX, kt * BK);
        }
      }
    }
  } else {
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
        mbar_wait_bounded(&full[s], (it / STAGES) & 1);
        const half* a = sA + s * BM * BK + row0 * BK;
        const unsigned char* b = sB + s * B_BYTES;
        fence_regs(d);
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < BK / 16; ++k)
          wgmma_f16<BN, 1>(d, desc_sw128(a + k * 16), desc_sw128_mn(b + k * 16 * 128, BOX_BYTES, 1024), 1);
        wgmma_commit();
        fence_regs(d);
        wgmma_wait<1>();
        if (kt > 0 && lane == 0) mbar_arrive(&empty[(it - 1) % STAGES]);
      }
      wgmma_wait<0>();
      fence_regs(d);
      if (lane == 0) mbar_arrive(&empty[(it - 1) % STAGES]);
      const int r = tm * BM + row0 + 16 * warp + lane / 4;
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const int c = tn * BN + 8 * j + 2 * (lane % 4);
        if (r < M) *reinterpret_cast<float2*>(&C[(size_t)r * N + c]) = make_float2(d[4 * j], d[4 * j + 1]);
        if (r + 8 < M)
          *reinterpret_cast<float2*>(&C[(size_t)(r + 8) * N + c]) = make_float2(d[4 * j + 2], d[4 * j + 3]);
      }
    }
  }
}

}  // namespace wgn

namespace {

const void* kernel_ptr() {
  static cudaError_t once =
      cudaFuncSetAttribute(wgn::hgemm_wgmma_nn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)wgn::SMEM);
  (void)once;
  return (const void*)wgn::hgemm_wgmma_nn;
}

}  // namespace

bool hgemm_wgmma_nn_shape_ok(int M, int N, int K) {
  return M > 0 && N > 0 && N % wgn::BN == 0 && K > 0 && K % wgk::BK == 0;
}

void launch_hgemm_wgmma_nn(int M, int N, int K, const half* A, const half* B, float* C, cudaStream_t st) {
  if (!hgemm_wgmma_nn_shape_ok(M, N, K)) {
    std::fprintf(stderr, "{\"error\":\"hgemm_wgmma_nn: M=%d N=%d K=%d: M > 0, N %% 256 == 0, K %% 64 == 0\"}\n", M, N, K);
    std::exit(1);
  }
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
  static int sms = [] {
    int dev, n;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n;
  }();
  kernel_ptr();
  const int tiles = ((M + wgn::BM - 1) / wgn::BM) * (N / wgn::BN);
  wgn::hgemm_wgmma_nn<<<tiles < sms ? tiles : sms, 384, wgn::SMEM, st>>>(
      M, N, K, get(A, M, K, wgn::BM, wgk::BK), get(B, K, N, wgk::BK, wgn::NBOX), C);
}

void hgemm_wgmma_nn_info(int* registers, size_t* smem_bytes, int* stages) {
  cudaFuncAttributes a;
  *registers = cudaFuncGetAttributes(&a, kernel_ptr()) == cudaSuccess ? a.numRegs : -1;
  *smem_bytes = wgn::SMEM;
  *stages = wgn::STAGES;
}
