// y = iterate(x) with `iters` dependent FMAs per element: a tunable amount of compute per byte, so copies and
// kernels can be sized to overlap (d09.e5, d23).
#pragma once
__global__ void busy_map(const float* __restrict__ x, float* __restrict__ y, size_t n, int iters) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float v = x[i];
    for (int k = 0; k < iters; ++k) v = v * 0.9999f + 0.0001f;
    y[i] = v;
  }
}
