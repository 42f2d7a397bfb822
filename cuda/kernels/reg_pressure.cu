// A kernel with many live values (d10.e4), compiled by CMake with several -maxrregcount caps; NS names each copy.
#include <cuda_runtime.h>
namespace NS {  // one copy per compile flag set
__global__ void reg_pressure(const float* __restrict__ x, float* __restrict__ y, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = x[i], r[32];
#pragma unroll
  for (int k = 0; k < 32; ++k) r[k] = v * (k + 1);
  for (int it = 0; it < 16; ++it) {
#pragma unroll
    for (int k = 0; k < 32; ++k) r[k] = r[k] * 0.5f + r[(k + 7) & 31] * 0.25f;  // a contraction: stays finite
  }
  float s = 0;
#pragma unroll
  for (int k = 0; k < 32; ++k) s += r[k];
  y[i] = s;
}
void launch_reg_pressure(const float* x, float* y, size_t n, cudaStream_t s) {
  reg_pressure<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(x, y, n);
}
}  // namespace NS
