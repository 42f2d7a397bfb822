// Direct 3x3 convolution, NCHW fp32, stride 1, pad 1: the correctness and speed baseline of d65. A block computes a
// TILE x TILE patch of one image for KB output channels; input patches (with the 1-pixel halo) and filters are
// staged through shared memory CB channels at a time, and each thread keeps KB accumulators for its pixel.
#pragma once
template <int TILE, int KB, int CB>
__global__ void __launch_bounds__(TILE * TILE) conv_direct(const float* __restrict__ x, const float* __restrict__ w,
                                                           float* __restrict__ y, int C, int H, int W, int K) {
  __shared__ float xs[CB][TILE + 2][TILE + 2];
  __shared__ float ws[CB][9][KB];  // [c][r*3+s][k]: the KB filters of one tap sit side by side
  const int tilesQ = (W + TILE - 1) / TILE;
  const int p0 = (blockIdx.x / tilesQ) * TILE, q0 = (blockIdx.x % tilesQ) * TILE;
  const int k0 = blockIdx.y * KB, n = blockIdx.z;
  const int ty = threadIdx.x / TILE, tx = threadIdx.x % TILE;
  const float* xn = x + (size_t)n * C * H * W;
  float acc[KB] = {};
  for (int c0 = 0; c0 < C; c0 += CB) {
    for (int i = threadIdx.x; i < CB * (TILE + 2) * (TILE + 2); i += TILE * TILE) {
      int c = i / ((TILE + 2) * (TILE + 2)), rem = i % ((TILE + 2) * (TILE + 2));
      int hh = p0 - 1 + rem / (TILE + 2), ww = q0 - 1 + rem % (TILE + 2);
      bool in = c0 + c < C && hh >= 0 && hh < H && ww >= 0 && ww < W;  // zero padding and channel tail
      xs[c][rem / (TILE + 2)][rem % (TILE + 2)] = in ? xn[((size_t)(c0 + c) * H + hh) * W + ww] : 0.f;
    }
    for (int i = threadIdx.x; i < CB * 9 * KB; i += TILE * TILE) {
      int k = i / (CB * 9), c = (i / 9) % CB, t = i % 9;  // consecutive threads read consecutive taps of a filter
      ws[c][t][k] = (k0 + k < K && c0 + c < C) ? w[((size_t)(k0 + k) * C + c0 + c) * 9 + t] : 0.f;
    }
    __syncthreads();
#pragma unroll 2
    for (int c = 0; c < CB; ++c)
#pragma unroll
      for (int t = 0; t < 9; ++t) {
        float v = xs[c][ty + t / 3][tx + t % 3];
#pragma unroll
        for (int k = 0; k < KB; ++k) acc[k] += v * ws[c][t][k];  // same address in all threads: a broadcast
      }
    __syncthreads();
  }
  const int p = p0 + ty, q = q0 + tx;
  if (p >= H || q >= W) return;
#pragma unroll
  for (int k = 0; k < KB; ++k)
    if (k0 + k < K) y[(((size_t)n * K + k0 + k) * H + p) * W + q] = acc[k];
}

// Launch for input x[N][C][H][W], filters w[K][C][3][3], output y[N][K][H][W]; 8x8 tiles for small images.
inline void launch_conv_direct(int N, int C, int H, int W, int K, const float* x, const float* w, float* y,
                               cudaStream_t st = 0) {
  constexpr int KB = 16, CB = 8;
  if (H >= 14) {
    dim3 g(((H + 15) / 16) * ((W + 15) / 16), (K + KB - 1) / KB, N);
    conv_direct<16, KB, CB><<<g, 256, 0, st>>>(x, w, y, C, H, W, K);
  } else {
    dim3 g(((H + 7) / 8) * ((W + 7) / 8), (K + KB - 1) / KB, N);
    conv_direct<8, KB, CB><<<g, 64, 0, st>>>(x, w, y, C, H, W, K);
  }
}
