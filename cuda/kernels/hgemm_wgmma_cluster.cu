// Persistent wgmma GEMM in thread-block clusters of 2 x 1 with TMA multicast, optionally with a TMA-store epilogue.
// The two blocks of a cluster compute vertically adjacent 128 x 256 tiles (rows tm = 2 * pair + rank, the same
// columns), so they need the same B tile at every K step: each block's producer loads half of it (128 of the 256
// rows of Bt) and multicasts that half into both blocks' shared memory, completing bytes on the "full" mbarrier at
// the same offset in each. Each block's L2 -> SM traffic per stage drops from 16 KB (A) + 32 KB (B) to 16 + 16 KB.
// A stage may be refilled only when the consumers of BOTH blocks are done with it (the peer's producer writes into
// it too), so every consumer warp arrives on the "empty" mbarrier of both blocks (lane c -> block c, mapa + remote
// arrive; count 16).
// Cluster barriers after the mbarrier initialisation (the peer's barriers exist before anything lands on them) and
// before exit (no block leaves while its peer may still arrive on its barriers). Otherwise as
// hgemm_wgmma_persistent.cu: grouped tile order over pairs of row-blocks, setmaxnreg 40 / 232.
// TMA-store epilogue (TMA_STORE): each consumer warpgroup writes its 64 x 256 fp32 result in eight 64 x 32 chunks
// into two 8 KB shared buffers laid out with the 128-byte swizzle (conflict-free float2 writes), fences them to the
// async proxy, and one thread stores each chunk with cp.async.bulk.tensor; rows past M are clipped by the copy
// engine. The buffers alternate, so the store of one chunk overlaps the writes of the next.
#include <map>
#include <tuple>

#include "hgemm_wgmma_cluster.h"
#include "wgmma_ops.cuh"

namespace wgc {

using namespace wgk;
constexpr int BM = 128, BN = 256, STAGES = 4, GROUP_M = 8, CLUSTER = 2;
constexpr int A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2, STAGE_BYTES = A_BYTES + B_BYTES;
constexpr int B_HALF_ROWS = BN / CLUSTER, B_HALF_BYTES = B_HALF_ROWS * BK * 2;
constexpr int EPI_COLS = 32, EPI_BYTES = 64 * EPI_COLS * 4;  // one 64 x 32 fp32 chunk = 8 KB (128-byte rows)

template <bool TMA_STORE>
struct Cfg {
  static constexpr size_t EPI = TMA_STORE ? 2 * 2 * EPI_BYTES : 0;  // 2 consumer warpgroups x 2 buffers
  static constexpr size_t SMEM = (size_t)STAGES * STAGE_BYTES + EPI + 2 * STAGES * sizeof(uint64_t) + 1024;
};

__device__ __forceinline__ void tile_coords(int tile, int tiles_m, int tiles_n, int& tm, int& tn) {
  const int per_group = GROUP_M * tiles_n, group = tile / per_group, first = group * GROUP_M;
  const int rows = min(tiles_m - first, GROUP_M), in = tile % per_group;
  tm = first + in % rows;
  tn = in / rows;
}

template <bool TMA_STORE>
__global__ void __cluster_dims__(CLUSTER, 1, 1) __launch_bounds__(384, 1)
    hgemm_wgmma_cluster(int M, int N, int K, const __grid_constant__ CUtensorMap tmA,
                        const __grid_constant__ CUtensorMap tmB, const __grid_constant__ CUtensorMap tmC,
                        float* __restrict__ C) {
  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
  half* sA = reinterpret_cast<half*>(smem);
  half* sB = reinterpret_cast<half*>(smem + STAGES * A_BYTES);
  unsigned char* sEpi = smem + STAGES * STAGE_BYTES;
  uint64_t* full = reinterpret_cast<uint64_t*>(sEpi + Cfg<TMA_STORE>::EPI);
  uint64_t* empty = full + STAGES;
  const int wg = threadIdx.x / 128, t = threadIdx.x % 128, warp = t / 32, lane = t % 32;
  const uint32_t rank = cluster_ctarank();
  const int cid = blockIdx.x / CLUSTER, clusters = gridDim.x / CLUSTER;
  // work is handed out in pairs of row-blocks: "pair tiles" of 256 x 256, the block of rank r takes the r-th half
  const int tiles_m = (M + BM - 1) / BM, pairs_m = (tiles_m + 1) / 2, tiles_n = N / BN;
  const int tiles = pairs_m * tiles_n, KT = K / BK;
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(&full[s], 1);                // own producer's arrive.expect_tx; both producers' copies add bytes
      mbar_init(&empty[s], 8 * CLUSTER);     // every consumer warp of both blocks
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  cluster_sync();
  if (wg == 0) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (t == 0) {
      int it = 0;
      for (int tile = cid; tile < tiles; tile += clusters) {
        int pm, tn;
        tile_coords(tile, pairs_m, tiles_n, pm, tn);
        const int tm = 2 * pm + (int)rank;
        for (int kt = 0; kt < KT; ++kt, ++it) {
          const int s = it % STAGES;
          if (it >= STAGES) mbar_wait_bounded(&empty[s], ((it / STAGES) - 1) & 1);
          mbar_expect_tx(&full[s], STAGE_BYTES);  // own A + both halves of B
          tma_load_2d(sA + s * BM * BK, &tmA, &full[s], kt * BK, tm * BM);
          tma_load_2d_multicast(reinterpret_cast<unsigned char*>(sB + s * BN * BK) + rank * B_HALF_BYTES, &tmB,
                                &full[s], kt * BK, tn * BN + (int)rank * B_HALF_ROWS, (uint16_t)((1u << CLUSTER) - 1));
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    const int row0 = (wg - 1) * 64;
    float d[BN / 2];
    int it = 0;
    for (int tile = cid; tile < tiles; tile += clusters) {
      int pm, tn;
      tile_coords(tile, pairs_m, tiles_n, pm, tn);
      const int tm = 2 * pm + (int)rank;
#pragma unroll
      for (int i = 0; i < BN / 2; ++i) d[i] = 0.f;
      for (int kt = 0; kt < KT; ++kt, ++it) {
        const int s = it % STAGES;
        mbar_wait_bounded(&full[s], (it / STAGES) & 1);
        const half* a = sA + s * BM * BK + row0 * BK;
        const half* b = sB + s * BN * BK;
        fence_regs(d);
        wgmma_fence();
#pragma unroll
        for (int k = 0; k < BK / 16; ++k) wgmma_f16<BN, 0>(d, desc_sw128(a + k * 16), desc_sw128(b + k * 16), 1);
        wgmma_commit();
        fence_regs(d);
        wgmma_wait<1>();
        // lane c of every consumer warp releases the previous buffer in CTA c: the arrivals go out in parallel
        if (kt > 0 && lane < CLUSTER) mbar_arrive_cluster(&empty[(it - 1) % STAGES], (uint32_t)lane);
      }
      wgmma_wait<0>();
      fence_regs(d);
      if (lane < CLUSTER) mbar_arrive_cluster(&empty[(it - 1) % STAGES], (uint32_t)lane);
      if constexpr (TMA_STORE) {
        unsigned char* bufs = sEpi + (wg - 1) * 2 * EPI_BYTES;
        const int rl = 16 * warp + lane / 4;  // local rows rl and rl + 8 of the warpgroup's 64
#pragma unroll
        for (int ch = 0; ch < BN / EPI_COLS; ++ch) {
          unsigned char* buf = bufs + (ch & 1) * EPI_BYTES;
          if (t == 0) bulk_wait_read<1>();  // the store that last read this buffer (two chunks ago) is done
          named_barrier(1 + (wg - 1), 128);
#pragma unroll
          for (int jj = 0; jj < EPI_COLS / 8; ++jj) {
            const int j = ch * (EPI_COLS / 8) + jj, cl = 8 * jj + 2 * (lane % 4);  // column within the chunk
            const int chunk = cl / 4, within = (cl % 4) * 4;
            *reinterpret_cast<float2*>(buf + rl * 128 + ((chunk ^ (rl % 8)) * 16) + within) =
                make_float2(d[4 * j], d[4 * j + 1]);
            *reinterpret_cast<float2*>(buf + (rl + 8) * 128 + ((chunk ^ ((rl + 8) % 8)) * 16) + within) =
                make_float2(d[4 * j + 2], d[4 * j + 3]);
          }
          fence_proxy_async();
          named_barrier(1 + (wg - 1), 128);
          if (t == 0) {
            tma_store_2d(&tmC, buf, tn * BN + ch * EPI_COLS, tm * BM + row0);
            bulk_commit();
          }
        }
      } else {
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
    if constexpr (TMA_STORE) {
      if (t == 0) bulk_wait<0>();  // every store has finished before the block's shared memory goes away
    }
  }
  __syncwarp();
  cluster_sync();  // the peer may still arrive on this block's empty barriers until it is done
}

}  // namespace wgc

namespace {

template <bool TMA_STORE>
const void* kernel_ptr() {
  static cudaError_t once = cudaFuncSetAttribute(wgc::hgemm_wgmma_cluster<TMA_STORE>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 (int)wgc::Cfg<TMA_STORE>::SMEM);
  (void)once;
  return (const void*)wgc::hgemm_wgmma_cluster<TMA_STORE>;
}

template <bool TMA_STORE>
int max_clusters() {
  static int n = [] {
    kernel_ptr<TMA_STORE>();
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(2 * 1024, 1, 1);
    cfg.blockDim = dim3(384, 1, 1);
    cfg.dynamicSmemBytes = wgc::Cfg<TMA_STORE>::SMEM;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = wgc::CLUSTER;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    int c = 0;
    if (cudaOccupancyMaxActiveClusters(&c, wgc::hgemm_wgmma_cluster<TMA_STORE>, &cfg) != cudaSuccess || c <= 0) {
      cudaGetLastError();
      int dev, sms;
      cudaGetDevice(&dev);
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
      c = sms / wgc::CLUSTER;
    }
    return c;
  }();
  return n;
}

template <bool TMA_STORE>
void launch(int M, int N, int K, const half* A, const half* Bt, float* C, cudaStream_t st) {
  static std::map<std::tuple<const void*, int, int, int, int>, CUtensorMap> maps;
  auto get = [&](const void* p, CUtensorMapDataType ty, int eb, int rows, int cols, int br, int bc) -> const CUtensorMap& {
    auto key = std::make_tuple(p, rows, cols, br, bc);
    auto it = maps.find(key);
    if (it == maps.end())
      it = maps.emplace(key, wgk_host::make_map_any(p, ty, eb, rows, cols, br, bc, CU_TENSOR_MAP_SWIZZLE_128B)).first;
    return it->second;
  };
  const CUtensorMap& mA = get(A, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, M, K, wgc::BM, wgk::BK);
  const CUtensorMap& mB = get(Bt, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, N, K, wgc::B_HALF_ROWS, wgk::BK);
  const CUtensorMap& mC = get(C, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, M, N, 64, wgc::EPI_COLS);
  const int tiles = ((M + wgc::BM - 1) / wgc::BM + 1) / 2 * (N / wgc::BN);
  const int clusters = tiles < max_clusters<TMA_STORE>() ? tiles : max_clusters<TMA_STORE>();
  kernel_ptr<TMA_STORE>();
  wgc::hgemm_wgmma_cluster<TMA_STORE><<<clusters * wgc::CLUSTER, 384, wgc::Cfg<TMA_STORE>::SMEM, st>>>(
      M, N, K, mA, mB, mC, C);
}

}  // namespace

bool hgemm_wgmma_cluster_shape_ok(int M, int N, int K) {
  return M > 0 && N > 0 && N % wgc::BN == 0 && K > 0 && K % wgk::BK == 0;
}

void launch_hgemm_wgmma_cluster(bool tma_store, int M, int N, int K, const half* A, const half* Bt, float* C,
                                cudaStream_t st) {
  if (!hgemm_wgmma_cluster_shape_ok(M, N, K)) {
    std::fprintf(stderr, "{\"error\":\"hgemm_wgmma_cluster: M=%d N=%d K=%d: M > 0, N %% 256 == 0, K %% 64 == 0\"}\n", M,
                 N, K);
    std::exit(1);
  }
  if (tma_store)
    launch<true>(M, N, K, A, Bt, C, st);
  else
    launch<false>(M, N, K, A, Bt, C, st);
}

void hgemm_wgmma_cluster_info(bool tma_store, int* registers, size_t* smem_bytes, int* stages, int* clusters) {
  const void* f = tma_store ? kernel_ptr<true>() : kernel_ptr<false>();
  cudaFuncAttributes a;
  *registers = cudaFuncGetAttributes(&a, f) == cudaSuccess ? a.numRegs : -1;
  *smem_bytes = tma_store ? wgc::Cfg<true>::SMEM : wgc::Cfg<false>::SMEM;
  *stages = wgc::STAGES;
  *clusters = tma_store ? max_clusters<true>() : max_clusters<false>();
}
