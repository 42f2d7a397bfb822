// Sum of squares with U independent accumulators per thread, unrolled U times (d10.e2): more loads in flight,
// more registers.
#pragma once
template <int U>
__global__ void sumsq_unroll(const float* __restrict__ x, float* __restrict__ partial, size_t n) {
  float acc[U];
#pragma unroll
  for (int u = 0; u < U; ++u) acc[u] = 0;
  size_t stride = (size_t)gridDim.x * blockDim.x;
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  for (; i + (U - 1) * stride < n; i += U * stride) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float v = x[i + u * stride];
      acc[u] += v * v;
    }
  }
  for (; i < n; i += stride) acc[0] += x[i] * x[i];
  float s = 0;
#pragma unroll
  for (int u = 0; u < U; ++u) s += acc[u];
  partial[(size_t)blockIdx.x * blockDim.x + threadIdx.x] = s;
}
