// Two different computations chosen per element (d10.e1 / d64.e2): a data-dependent branch that splits every
// warp (lane parity), the same branch made warp-uniform, and a branch-free select that computes both.
#pragma once
__device__ __forceinline__ float path_a(float v) {
  for (int k = 0; k < 32; ++k) v = v * 0.999f + 0.5f;
  return v;
}
__device__ __forceinline__ float path_b(float v) {
  for (int k = 0; k < 32; ++k) v = v * 1.001f - 0.25f;
  return v;
}
__global__ void branch_divergent(const float* x, float* y, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if (threadIdx.x & 1) y[i] = path_a(x[i]);
  else y[i] = path_b(x[i]);
}
__global__ void branch_uniform(const float* x, float* y, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if ((threadIdx.x >> 5) & 1) y[i] = path_a(x[i]);  // the same choice for all 32 lanes of a warp
  else y[i] = path_b(x[i]);
}
__global__ void branch_select(const float* x, float* y, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float a = path_a(x[i]), b = path_b(x[i]);
  y[i] = (threadIdx.x & 1) ? a : b;  // selp: both paths always run
}
