// Split-K for the tensor-core implicit-GEMM convolution (conv_implicit_gemm_tc.cuh): the deep, small-M layers (7x7
// and 14x14 at C = 256..512: M = N*H*W of a few thousand, reduction 9C of thousands) give too few BM x BN tiles to
// fill 132 SMs. Each of `splits` blocks per tile takes an equal range of the k-tiles and writes fp32 partial sums
// to a workspace (splits x M x K); one small kernel adds the partials and rounds to fp16 y. The workspace stays in
// L2 for these layers, so the extra pass costs far less than the idle SMs it replaces.
#pragma once
#include "conv_implicit_gemm_tc.cuh"

namespace igemm {

// y[i] = fp16(sum_z ws[z * MK + i]), four outputs per thread step (MK % 4 == 0 because K % 8 == 0)
__global__ void splitk_reduce_to_half(const float* __restrict__ ws, half* __restrict__ y, size_t MK, int splits) {
  for (size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 4; i < MK; i += (size_t)gridDim.x * blockDim.x * 4) {
    float4 a = *reinterpret_cast<const float4*>(ws + i);
    for (int z = 1; z < splits; ++z) {
      const float4 b = *reinterpret_cast<const float4*>(ws + (size_t)z * MK + i);
      a.x += b.x;
      a.y += b.y;
      a.z += b.z;
      a.w += b.w;
    }
    half2* o = reinterpret_cast<half2*>(y + i);
    o[0] = __floats2half2_rn(a.x, a.y);
    o[1] = __floats2half2_rn(a.z, a.w);
  }
}

inline size_t splitk_workspace_bytes(int N, int H, int W, int K, int splits) {
  return (size_t)splits * N * H * W * K * sizeof(float);
}

// Cfg: an igemm::Config; ws: splitk_workspace_bytes(...) of device memory
template <class Cfg>
void launch_splitk(int N, int H, int W, int C, int K, const half* x, const half* w, half* y, float* ws, int splits,
                   cudaStream_t st = 0) {
  Cfg::launch(N, H, W, C, K, x, w, ws, splits, st);
  const size_t MK = (size_t)N * H * W * K;
  const unsigned g = (unsigned)std::min<size_t>((MK / 4 + 255) / 256, 132 * 16);
  splitk_reduce_to_half<<<g, 256, 0, st>>>(ws, y, MK, splits);
}

}  // namespace igemm
