// Implicit-GEMM 3x3 convolution (stride 1, pad 1) on tensor cores: NHWC fp16 activations, KRSC fp16 filters, fp32
// accumulation, NHWC fp16 output. The convolution is the GEMM
//   y (M x K) = A (M x 9C) * B^T,   M = N*H*W output pixels, K output channels, reduction index kk = (r*3 + s)*C + c
// where A's row m is never stored: its k-tile [kk0, kk0 + BK) lies inside one filter tap (BK divides C), so it is
// the BK contiguous channels c0.. of input pixel (p + r - 1, q + s - 1), gathered straight from x by cp.async (16 B
// per copy; src-size 0 zero-fills a padding pixel). B's row n is filter n in KRSC order: 9C contiguous halves, so
// kk is the same index on both sides. Each thread precomputes, for the A rows it copies, the element offset of the
// centre pixel and a 9-bit mask of the taps that fall inside the image; a k-tile then needs one uniform offset.
// Shared tiles are BK halves per row with the 16-byte chunks XOR-swizzled by row, so ldmatrix (8 rows x 16 B per
// phase) and the cp.async stores are free of bank conflicts; STAGES-deep cp.async pipeline; mma.sync m16n8k16
// (fp16 in, fp32 accumulate), each warp a WM x WN tile of the BM x BN block tile. Since the output pixel index m is
// also the row of NHWC y, the epilogue stores half2 pairs of columns straight from the accumulators.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace igemm {

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// 16-byte async copy global -> shared; with valid == false nothing is read and the 16 bytes are zero-filled
// L1 = true: .ca (the copy is also cached in L1), else .cg (L2 only)
template <bool L1 = false>
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  if constexpr (L1)
    asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n) : "memory");
  else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr)
               : "memory");
}

// d (16x8 fp32) += a (16x16 fp16, row) * b (16x8 fp16, col)
__device__ __forceinline__ void mma_16816(float* d, const uint32_t* a, const uint32_t* b) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// half offset of 16-byte chunk `ch` of tile row `row` (BK halves per row): chunks XOR-swizzled so that 8 consecutive
// rows at one logical chunk land in 8 different 16-byte bank groups (BK = 32: 4 chunks a row, row pairs share a
// 128-byte line, so the XOR term is (row / 2) % 4; BK = 64: row % 8)
template <int BK>
__device__ __forceinline__ int swz(int row, int ch) {
  constexpr int CPR = BK / 8;
  return row * BK + ((ch ^ ((row * CPR >> 3) & (CPR - 1))) << 3);
}

// PARTIAL (split-K, conv_implicit_gemm_tc_splitk.cuh): blockIdx.z takes one of gridDim.z equal ranges of k-tiles
// and the block writes its fp32 partial sums to out + blockIdx.z * M * K instead of fp16 y.
// A_L1: activation copies through L1 (cp.async.ca). The nine taps of a tile read shifted windows of the same few
// image rows, so after the first tap most of them can hit in L1 instead of L2; filters always go through L2 only.
template <int BM, int BN, int BK, int WM, int WN, int STAGES, bool PARTIAL = false, bool A_L1 = true>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32)
    conv3x3_igemm_tc(const half* __restrict__ x, const half* __restrict__ w, void* __restrict__ out, int N, int H,
                     int W, int C, int K) {
  constexpr int WARPS_M = BM / WM, WARPS_N = BN / WN, T = WARPS_M * WARPS_N * 32;
  constexpr int CPR = BK / 8;  // 16-byte chunks per tile row
  constexpr int A_CH = BM * CPR / T, B_CH = BN * CPR / T;
  constexpr int MI = WM / 16, NI = WN / 8;
  static_assert(BK == 32 || BK == 64, "BK: 32 or 64 halves");
  static_assert(BM * CPR % T == 0 && BN * CPR % T == 0, "every thread copies whole chunks");
  static_assert(WM % 16 == 0 && WN % 16 == 0, "warp tile: m16 by pairs of n8");
  static_assert(STAGES >= 2, "pipeline");

  extern __shared__ __align__(128) unsigned char smem_raw[];
  half* As = reinterpret_cast<half*>(smem_raw);  // [STAGES][BM * BK]
  half* Bs = As + STAGES * BM * BK;              // [STAGES][BN * BK]

  const int M = N * H * W, HW = H * W;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp % WARPS_M, wn = warp / WARPS_M;

  // the A rows this thread copies: centre-pixel offset (m*C + chunk*8) and which of the 9 taps are inside the image
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
    const int delta = ((r - 1) * W + (s - 1)) * C + c0;  // same for every row of the tile
    const uint32_t as = smem_u32(As + stage * BM * BK), bs = smem_u32(Bs + stage * BN * BK);
#pragma unroll
    for (int j = 0; j < A_CH; ++j) {
      const bool v = (a_mask[j] >> tap) & 1u;
      cp_async_16<A_L1>(as + a_s[j] * 2, v ? x + a_off[j] + delta : x, v);
    }
#pragma unroll
    for (int j = 0; j < B_CH; ++j) cp_async_16(bs + b_s[j] * 2, b_ok[j] ? w + b_off[j] + k0 : w, b_ok[j]);
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  const int KT_ALL = 9 * C / BK, per = (KT_ALL + gridDim.z - 1) / gridDim.z;
  const int kt0 = blockIdx.z * per, KT = min(KT_ALL - kt0, per);  // KT <= 0: this split only writes zeros
#pragma unroll
  for (int st = 0; st < STAGES - 1; ++st) {
    if (st < KT) load_tile(st, kt0 + st);
    cp_async_commit();
  }
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<STAGES - 2>();  // tile kt has landed (for this thread's copies) ...
    __syncthreads();              // ... and for everyone's; stage (kt - 1) % STAGES is free again
    const int nk = kt + STAGES - 1;
    if (nk < KT) load_tile(nk % STAGES, kt0 + nk);
    cp_async_commit();
    const int stage = kt % STAGES;
    const uint32_t as = smem_u32(As + stage * BM * BK), bs = smem_u32(Bs + stage * BN * BK);
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t af[MI][4], bf[NI][2];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {  // x4: rows 0-7/8-15 at k 0-7, then at k 8-15 (a0..a3 of m16n8k16)
        const int row = wm * WM + mi * 16 + (lane & 15), ch = kk * 2 + (lane >> 4);
        ldmatrix_x4(as + swz<BK>(row, ch) * 2, af[mi][0], af[mi][1], af[mi][2], af[mi][3]);
      }
#pragma unroll
      for (int nj = 0; nj < NI / 2; ++nj) {  // x4: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15)
        const int row = wn * WN + nj * 16 + ((lane >> 4) << 3) + (lane & 7), ch = kk * 2 + ((lane >> 3) & 1);
        ldmatrix_x4(bs + swz<BK>(row, ch) * 2, bf[2 * nj][0], bf[2 * nj][1], bf[2 * nj + 1][0], bf[2 * nj + 1][1]);
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) mma_16816(acc[mi][ni], af[mi], bf[ni]);
    }
  }
  cp_async_wait<0>();

  // accumulator (mi, ni): rows lane/4 and lane/4 + 8, columns 2*(lane%4), +1; K % 8 == 0, so a pair is in or out
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < NI; ++ni) {
      const int row = m0 + wm * WM + mi * 16 + (lane >> 2), col = n0 + wn * WN + ni * 8 + (lane & 3) * 2;
      if (col >= K) continue;
      if constexpr (PARTIAL) {
        float* ws = static_cast<float*>(out) + (size_t)blockIdx.z * M * K;
        if (row < M) *reinterpret_cast<float2*>(ws + (size_t)row * K + col) = make_float2(acc[mi][ni][0], acc[mi][ni][1]);
        if (row + 8 < M)
          *reinterpret_cast<float2*>(ws + (size_t)(row + 8) * K + col) = make_float2(acc[mi][ni][2], acc[mi][ni][3]);
      } else {
        half* y = static_cast<half*>(out);
        if (row < M)
          *reinterpret_cast<half2*>(y + (size_t)row * K + col) = __floats2half2_rn(acc[mi][ni][0], acc[mi][ni][1]);
        if (row + 8 < M)
          *reinterpret_cast<half2*>(y + (size_t)(row + 8) * K + col) =
              __floats2half2_rn(acc[mi][ni][2], acc[mi][ni][3]);
      }
    }
}

// What the kernel takes: C a multiple of BK (a k-tile inside one tap, 16-byte aligned rows), K a multiple of 8
// (16-byte filter rows, column pairs), and offsets that fit in int.
inline bool supports(int N, int H, int W, int C, int K, int BK = 32) {
  return C % BK == 0 && K % 8 == 0 && (long long)N * H * W * C < (1ll << 31) && 9ll * C * K < (1ll << 31) &&
         (long long)N * H * W * K < (1ll << 31);
}

template <int BM, int BN, int BK, int WM, int WN, int STAGES, bool A_L1 = true>
struct Config {
  static constexpr int BM_ = BM, BN_ = BN;
  static constexpr int threads = (BM / WM) * (BN / WN) * 32;
  static constexpr size_t smem = (size_t)STAGES * (BM + BN) * BK * sizeof(half);
  // x: N x H x W x C, w: K x 3 x 3 x C, y: N x H x W x K (all fp16)
  // splits > 1: fp32 partials of `splits` k-ranges into out (splits * M * K floats), else fp16 y into out
  static void launch(int N, int H, int W, int C, int K, const half* x, const half* w, void* out, int splits = 1,
                     cudaStream_t st = 0) {
    if (splits > 1)
      launch_as<true>(N, H, W, C, K, x, w, out, splits, st);
    else
      launch_as<false>(N, H, W, C, K, x, w, out, 1, st);
  }
  template <bool PARTIAL>
  static void launch_as(int N, int H, int W, int C, int K, const half* x, const half* w, void* out, int splits,
                        cudaStream_t st) {
    auto kern = conv3x3_igemm_tc<BM, BN, BK, WM, WN, STAGES, PARTIAL, A_L1>;
    static const cudaError_t attr =  // once per kernel instantiation
        cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (attr != cudaSuccess) {
      std::fprintf(stderr, "{\"error\":\"%s\",\"call\":\"cudaFuncSetAttribute(smem=%zu)\"}\n",
                   cudaGetErrorString(attr), smem);
      std::exit(1);
    }
    const int M = N * H * W;
    dim3 grid((M + BM - 1) / BM, (K + BN - 1) / BN, splits);
    kern<<<grid, threads, smem, st>>>(x, w, out, N, H, W, C, K);
  }
  static std::string name() {
    char b[96];
    std::snprintf(b, sizeof b, "implicit GEMM mma.sync, %dx%dx%d tile, %d warps, %d stages%s", BM, BN, BK,
                  threads / 32, STAGES, A_L1 ? "" : ", x via L2 only");
    return b;
  }
};

}  // namespace igemm
