// vector_add with 16-byte (float4) loads and stores and a grid-stride loop: fewer, wider memory instructions.
#pragma once
__global__ void vector_add_vec4(const float4* __restrict__ a, const float4* __restrict__ b, float4* __restrict__ c,
                                size_t n4) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
    float4 x = a[i], y = b[i];
    c[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
  }
}
