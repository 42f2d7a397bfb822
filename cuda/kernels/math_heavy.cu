// Transcendental-heavy map (d08.e5), compiled twice by CMake: once plain, once with --use_fast_math; NS names each.
#include <cuda_runtime.h>
namespace NS {  // one copy per compile flag set
__global__ void math_heavy(const float* __restrict__ x, float* __restrict__ y, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = x[i], acc = 0;
  for (int k = 1; k <= 8; ++k) acc += sinf(v * k) * expf(-0.1f * k * v * v) + logf(1.0f + k * v * v) / k;
  y[i] = acc;
}
void launch_math_heavy(const float* x, float* y, size_t n, cudaStream_t s) {
  math_heavy<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(x, y, n);
}
}  // namespace NS
