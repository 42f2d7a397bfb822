// vector_add with a grid-stride loop: a fixed grid (a few blocks per SM) covers any n.
#pragma once
__global__ void vector_add_gridstride(const float* __restrict__ a, const float* __restrict__ b,
                                      float* __restrict__ c, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    c[i] = a[i] + b[i];
}
