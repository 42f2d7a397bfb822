// Winograd F(2x2,3x3) convolution (Lavin & Gray 2015), NCHW fp32, 3x3 filters, stride 1, pad 1 ONLY. Output tiles
// of 2x2 (odd H/W: the last tile row/column is partly outside and its extra outputs are not stored):
//   filter transform  U[xi][k][c] = (G g G^T)[xi]           (xi = 4x4 position, 16 of them)
//   input transform   V[xi][c][t] = (B^T d B)[xi]           (d = the 4x4 input patch of tile t, zero padded)
//   16 GEMMs          M[xi] (K x T) = U[xi] (K x C) * V[xi] (C x T)
//   output transform  y(tile t, k) = A^T M[.][k][t] A
// The GEMMs do 16 multiplies per tile and channel pair where direct convolution does 4 * 9 = 36: 2.25x fewer.
#pragma once

// G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]: u = G g G^T, one thread per (k, c)
__global__ void winograd_filter_transform(const float* __restrict__ w, float* __restrict__ U, int K, int C) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= K * C) return;
  int k = i / C, c = i % C;
  const float* g = w + (size_t)i * 9;
  float t[4][3];  // G g
  for (int s = 0; s < 3; ++s) {
    t[0][s] = g[s];
    t[1][s] = 0.5f * (g[s] + g[3 + s] + g[6 + s]);
    t[2][s] = 0.5f * (g[s] - g[3 + s] + g[6 + s]);
    t[3][s] = g[6 + s];
  }
  for (int r = 0; r < 4; ++r) {  // (G g) G^T
    float u[4] = {t[r][0], 0.5f * (t[r][0] + t[r][1] + t[r][2]), 0.5f * (t[r][0] - t[r][1] + t[r][2]), t[r][2]};
    for (int s = 0; s < 4; ++s) U[((size_t)(r * 4 + s) * K + k) * C + c] = u[s];
  }
}

// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]: v = B^T d B, one thread per (tile, c); consecutive threads take
// consecutive tiles, so the 16 stores of a warp are coalesced rows of V.
__global__ void winograd_input_transform(const float* __restrict__ x, float* __restrict__ V, int N, int C, int H,
                                         int W) {
  const int tP = (H + 1) / 2, tQ = (W + 1) / 2, T = N * tP * tQ;
  const int t = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.y;
  if (t >= T) return;
  const int n = t / (tP * tQ), ti = (t / tQ) % tP, tj = t % tQ;
  const float* xc = x + ((size_t)n * C + c) * H * W;
  float d[4][4];
#pragma unroll
  for (int a = 0; a < 4; ++a)
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      int h = 2 * ti - 1 + a, w = 2 * tj - 1 + b;
      d[a][b] = (h >= 0 && h < H && w >= 0 && w < W) ? xc[(size_t)h * W + w] : 0.f;
    }
  float e[4][4];  // B^T d
#pragma unroll
  for (int b = 0; b < 4; ++b) {
    e[0][b] = d[0][b] - d[2][b];
    e[1][b] = d[1][b] + d[2][b];
    e[2][b] = d[2][b] - d[1][b];
    e[3][b] = d[1][b] - d[3][b];
  }
  const size_t plane = (size_t)C * T;  // distance between V[xi] and V[xi + 1]
  float* v = V + (size_t)c * T + t;
#pragma unroll
  for (int a = 0; a < 4; ++a) {  // (B^T d) B
    v[(a * 4 + 0) * plane] = e[a][0] - e[a][2];
    v[(a * 4 + 1) * plane] = e[a][1] + e[a][2];
    v[(a * 4 + 2) * plane] = e[a][2] - e[a][1];
    v[(a * 4 + 3) * plane] = e[a][1] - e[a][3];
  }
}

// A^T = [1 1 1 0; 0 1 -1 -1]: y = A^T m A, one thread per (tile, k)
__global__ void winograd_output_transform(const float* __restrict__ Mt, float* __restrict__ y, int N, int K, int H,
                                          int W) {
  const int tP = (H + 1) / 2, tQ = (W + 1) / 2, T = N * tP * tQ;
  const int t = blockIdx.x * blockDim.x + threadIdx.x, k = blockIdx.y;
  if (t >= T) return;
  const int n = t / (tP * tQ), ti = (t / tQ) % tP, tj = t % tQ;
  const size_t plane = (size_t)K * T;
  const float* m = Mt + (size_t)k * T + t;
  float e[2][4];  // A^T m
#pragma unroll
  for (int b = 0; b < 4; ++b) {
    float m0 = m[(0 * 4 + b) * plane], m1 = m[(1 * 4 + b) * plane], m2 = m[(2 * 4 + b) * plane],
          m3 = m[(3 * 4 + b) * plane];
    e[0][b] = m0 + m1 + m2;
    e[1][b] = m1 - m2 - m3;
  }
  float* yk = y + ((size_t)n * K + k) * H * W;
#pragma unroll
  for (int a = 0; a < 2; ++a) {
    int h = 2 * ti + a;
    if (h >= H) continue;
    float o0 = e[a][0] + e[a][1] + e[a][2], o1 = e[a][1] - e[a][2] - e[a][3];
    int w = 2 * tj;
    yk[(size_t)h * W + w] = o0;
    if (w + 1 < W) yk[(size_t)h * W + w + 1] = o1;
  }
}

struct WinogradShape {
  int N, C, H, W, K;
  int tiles() const { return N * ((H + 1) / 2) * ((W + 1) / 2); }
  size_t u_elems() const { return (size_t)16 * K * C; }
  size_t v_elems() const { return (size_t)16 * C * tiles(); }
  size_t m_elems() const { return (size_t)16 * K * tiles(); }
  size_t workspace_bytes() const { return (u_elems() + v_elems() + m_elems()) * sizeof(float); }
};

inline void launch_winograd_filter(const WinogradShape& s, const float* w, float* U, cudaStream_t st = 0) {
  winograd_filter_transform<<<(s.K * s.C + 255) / 256, 256, 0, st>>>(w, U, s.K, s.C);
}
inline void launch_winograd_input(const WinogradShape& s, const float* x, float* V, cudaStream_t st = 0) {
  winograd_input_transform<<<dim3((s.tiles() + 255) / 256, s.C), 256, 0, st>>>(x, V, s.N, s.C, s.H, s.W);
}
inline void launch_winograd_output(const WinogradShape& s, const float* Mt, float* y, cudaStream_t st = 0) {
  winograd_output_transform<<<dim3((s.tiles() + 255) / 256, s.K), 256, 0, st>>>(Mt, y, s.N, s.K, s.H, s.W);
}
