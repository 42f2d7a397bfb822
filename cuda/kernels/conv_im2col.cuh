// im2col for a 3x3, stride 1, pad 1 convolution (NCHW fp32): col[n][c*9 + r*3 + s][p*W + q] = x[n][c][p+r-1][q+s-1]
// (0 outside the image). Each image's convolution is then one GEMM, y[n] (K x HW) = w (K x 9C) * col[n] (9C x HW),
// done as a strided-batched GEMM over the N images (cuBLAS SGEMM or conv_sgemm_batched.cuh); col is the workspace.
#pragma once
__global__ void im2col_3x3(const float* __restrict__ x, float* __restrict__ col, int N, int C, int H, int W) {
  const size_t HW = (size_t)H * W, total = (size_t)N * C * 9 * HW;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    size_t pq = i % HW, row = (i / HW) % ((size_t)C * 9), n = i / HW / ((size_t)C * 9);
    int c = (int)(row / 9), r = (int)(row % 9) / 3, s = (int)(row % 3);
    int h = (int)(pq / W) + r - 1, w = (int)(pq % W) + s - 1;  // consecutive threads: consecutive q, coalesced
    col[i] = (h >= 0 && h < H && w >= 0 && w < W) ? x[((n * C + c) * H + h) * W + w] : 0.f;
  }
}

inline size_t im2col_workspace_bytes(int N, int C, int H, int W) { return (size_t)N * C * 9 * H * W * sizeof(float); }

inline void launch_im2col_3x3(int N, int C, int H, int W, const float* x, float* col, cudaStream_t st = 0) {
  size_t total = (size_t)N * C * 9 * H * W;
  unsigned g = (unsigned)std::min<size_t>((total + 255) / 256, 132 * 32);
  im2col_3x3<<<g, 256, 0, st>>>(x, col, N, C, H, W);
}
