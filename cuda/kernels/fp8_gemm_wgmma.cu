// FP8 GEMM on Hopper: e4m3 inputs, fp32 accumulators, per-tensor scales applied in the epilogue, bf16 output.
// The persistent, warp-specialised structure of hgemm_wgmma_persistent.cu with one-byte elements: a 128-byte
// swizzle row now holds 128 K values, so a stage is 128 x 128 of A and 256 x 128 of Bt, and each stage takes four
// `wgmma.mma_async m64n256k32.f32.e4m3.e4m3` per consumer warpgroup (twice the K of an f16 MMA per instruction at
// the same byte footprint). wgmma reads 8-bit operands only K-major, hence the "TN" layout (as cuBLASLt's FP8).
// Accumulation, two variants: FAST (128 x 256 tile) adds every MMA into the same fp32 registers, the semantics of
// cuBLASLt's CUBLASLT_MATMUL_DESC_FAST_ACCUM (the FP8 MMA accumulates with reduced internal precision over long
// K); PROMOTED (128 x 128 tile, the registers of a second accumulator set) lets each stage's four MMAs (K = 128)
// start from zero in a scratch set and adds that into the main fp32 accumulators with ordinary FADDs after
// `wgmma.wait_group 0`, as cuBLASLt's default mode (torch._scaled_mm's default) promotes partial sums. The second
// consumer warpgroup's MMAs overlap one warpgroup's wait and adds.
#include <map>
#include <tuple>

#include "fp8_gemm_wgmma.h"
#include "wgmma_ops.cuh"

namespace wg8 {

using namespace wgk;
constexpr int BM = 128, BKB = 128, GROUP_M = 8;  // BKB: K elements (= bytes) per stage

template <bool PROMOTE>
struct Cfg {
  static constexpr int BN = PROMOTE ? 128 : 256, STAGES = PROMOTE ? 6 : 4;
  static constexpr int A_BYTES = BM * BKB, B_BYTES = BN * BKB, STAGE_BYTES = A_BYTES + B_BYTES;
  static constexpr size_t SMEM = (size_t)STAGES * STAGE_BYTES + 2 * STAGES * sizeof(uint64_t) + 1024;
};

__device__ __forceinline__ void tile_coords(int tile, int tiles_m, int tiles_n, int& tm, int& tn) {
  const int per_group = GROUP_M * tiles_n, group = tile / per_group, first = group * GROUP_M;
  const int rows = min(tiles_m - first, GROUP_M), in = tile % per_group;
  tm = first + in % rows;
  tn = in / rows;
}

template <bool PROMOTE>
__global__ void __launch_bounds__(384, 1)
    fp8_gemm_wgmma(int M, int N, int K, const __grid_constant__ CUtensorMap tmA, const __grid_constant__ CUtensorMap tmB,
                   const float* __restrict__ scale_a, const float* __restrict__ scale_b, __nv_bfloat16* __restrict__ D) {
  constexpr int BN = Cfg<PROMOTE>::BN, STAGES = Cfg<PROMOTE>::STAGES, A_BYTES = Cfg<PROMOTE>::A_BYTES;
  constexpr int B_BYTES = Cfg<PROMOTE>::B_BYTES, STAGE_BYTES = Cfg<PROMOTE>::STAGE_BYTES;
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
  uint8_t* sA = smem;
  uint8_t* sB = smem + STAGES * A_BYTES;
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + STAGES * STAGE_BYTES);
  uint64_t* empty = full + STAGES;
  const int wg = threadIdx.x / 128, t = threadIdx.x % 128, warp = t / 32, lane = t % 32;
  const int tiles_m = (M + BM - 1) / BM, tiles_n = N / BN, tiles = tiles_m * tiles_n, KT = K / BKB;
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], 8);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (wg == 0) {  // producer warpgroup: one thread issues the copies
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
          tma_load_2d(sA + s * A_BYTES, &tmA, &full[s], kt * BKB, tm * BM);
          tma_load_2d(sB + s * B_BYTES, &tmB, &full[s], kt * BKB, tn * BN);
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    const int row0 = (wg - 1) * 64;
    const float scale = scale_a[0] * scale_b[0];
    float d[BN / 2], acc[PROMOTE ? BN / 2 : 1];
    int it = 0;
    for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
      int tm, tn;
      tile_coords(tile, tiles_m, tiles_n, tm, tn);
#pragma unroll
      for (int i = 0; i < BN / 2; ++i) d[i] = 0.f;
      if constexpr (PROMOTE) {
#pragma unroll
        for (int i = 0; i < BN / 2; ++i) acc[i] = 0.f;
      }
      for (int kt = 0; kt < KT; ++kt, ++it) {
        const int s = it % STAGES;
        mbar_wait_bounded(&full[s], (it / STAGES) & 1);
        const uint8_t* a = sA + s * A_BYTES + row0 * BKB;
        const uint8_t* b = sB + s * B_BYTES;
        fence_regs(d);
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < BKB / 32; ++k)  // 32 e4m3 values = 32 bytes along the swizzled row per MMA
          wgmma_e4m3<BN>(d, desc_sw128(a + k * 32), desc_sw128(b + k * 32), PROMOTE ? (k > 0) : 1);
        wgmma_commit();
        fence_regs(d);
        if constexpr (PROMOTE) {
          wgmma_wait<0>();  // this stage's partial sum is complete and its buffer read: release it, promote
          fence_regs(d);
          if (lane == 0) mbar_arrive(&empty[s]);
#pragma unroll
          for (int i = 0; i < BN / 2; ++i) acc[i] += d[i];
        } else {
          wgmma_wait<1>();
          if (kt > 0 && lane == 0) mbar_arrive(&empty[(it - 1) % STAGES]);
        }
      }
      if constexpr (PROMOTE) {
#pragma unroll
        for (int i = 0; i < BN / 2; ++i) d[i] = acc[i];
      } else {
        wgmma_wait<0>();
        fence_regs(d);
        if (lane == 0) mbar_arrive(&empty[(it - 1) % STAGES]);
      }
      // same accumulator layout as the f16 MMAs: register 4j+{0,1,2,3} is (r, c), (r, c+1), (r+8, c), (r+8, c+1)
      const int r = tm * BM + row0 + 16 * warp + lane / 4;
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const int c = tn * BN + 8 * j + 2 * (lane % 4);
        if (r < M)
          *reinterpret_cast<__nv_bfloat162*>(&D[(size_t)r * N + c]) =
              __floats2bfloat162_rn(d[4 * j] * scale, d[4 * j + 1] * scale);
        if (r + 8 < M)
          *reinterpret_cast<__nv_bfloat162*>(&D[(size_t)(r + 8) * N + c]) =
              __floats2bfloat162_rn(d[4 * j + 2] * scale, d[4 * j + 3] * scale);
      }
    }
  }
}

}  // namespace wg8

namespace {

template <bool PROMOTE>
const void* kernel_ptr() {
  static cudaError_t once = cudaFuncSetAttribute(wg8::fp8_gemm_wgmma<PROMOTE>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 (int)wg8::Cfg<PROMOTE>::SMEM);
  (void)once;
  return (const void*)wg8::fp8_gemm_wgmma<PROMOTE>;
}

template <bool PROMOTE>
void launch(int M, int N, int K, const __nv_fp8_e4m3* A, const __nv_fp8_e4m3* Bt, const float* scale_a,
            const float* scale_b, __nv_bfloat16* D, cudaStream_t st) {
  using G = wg8::Cfg<PROMOTE>;
  static std::map<std::tuple<const void*, int, int, int>, CUtensorMap> maps;  // encoding is a host call: cache it
  auto get = [&](const void* p, int rows, int cols, int box) -> const CUtensorMap& {
    auto key = std::make_tuple(p, rows, cols, box);
    auto it = maps.find(key);
    if (it == maps.end())
      it = maps.emplace(key, wgk_host::make_map_any(p, CU_TENSOR_MAP_DATA_TYPE_UINT8, 1, rows, cols, box, wg8::BKB,
                                                    CU_TENSOR_MAP_SWIZZLE_128B))
               .first;
    return it->second;
  };
  static int sms = [] {
    int dev, n;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n;
  }();
  kernel_ptr<PROMOTE>();
  const int tiles = ((M + wg8::BM - 1) / wg8::BM) * (N / G::BN);
  wg8::fp8_gemm_wgmma<PROMOTE><<<tiles < sms ? tiles : sms, 384, G::SMEM, st>>>(
      M, N, K, get(A, M, K, wg8::BM), get(Bt, N, K, G::BN), scale_a, scale_b, D);
}

}  // namespace

bool fp8_gemm_wgmma_shape_ok(int M, int N, int K) {
  return M > 0 && N > 0 && N % 256 == 0 && K > 0 && K % wg8::BKB == 0;
}

void launch_fp8_gemm_wgmma(bool promote, int M, int N, int K, const __nv_fp8_e4m3* A, const __nv_fp8_e4m3* Bt,
                           const float* scale_a, const float* scale_b, __nv_bfloat16* D, cudaStream_t st) {
  if (!fp8_gemm_wgmma_shape_ok(M, N, K)) {
    std::fprintf(stderr, "{\"error\":\"fp8_gemm_wgmma: M=%d N=%d K=%d: M > 0, N %% 256 == 0, K %% 128 == 0\"}\n", M, N,
                 K);
    std::exit(1);
  }
  if (promote)
    launch<true>(M, N, K, A, Bt, scale_a, scale_b, D, st);
  else
    launch<false>(M, N, K, A, Bt, scale_a, scale_b, D, st);
}

void fp8_gemm_wgmma_info(bool promote, int* registers, size_t* smem_bytes, int* stages) {
  cudaFuncAttributes a;
  *registers = cudaFuncGetAttributes(&a, promote ? kernel_ptr<true>() : kernel_ptr<false>()) == cudaSuccess ? a.numRegs : -1;
  *smem_bytes = promote ? wg8::Cfg<true>::SMEM : wg8::Cfg<false>::SMEM;
  *stages = promote ? wg8::Cfg<true>::STAGES : wg8::Cfg<false>::STAGES;
}
