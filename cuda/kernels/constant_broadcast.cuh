// Polynomial with 16 coefficients every thread reads (d09.e3): from __constant__ (one broadcast per warp from
// the constant cache) vs from global memory through a plain pointer.
#pragma once
__constant__ float c_coef[16];
__global__ void poly_constant(const float* __restrict__ x, float* __restrict__ y, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = x[i], acc = 0;
#pragma unroll
  for (int k = 0; k < 16; ++k) acc = acc * v + c_coef[k];
  y[i] = acc;
}
__global__ void poly_global(const float* x, float* y, const float* coef, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = x[i], acc = 0;
#pragma unroll
  for (int k = 0; k < 16; ++k) acc = acc * v + coef[k];  // no __restrict__: re-read after each store risk
  y[i] = acc;
}
