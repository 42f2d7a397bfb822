// FP32 FMA throughput probe: 8 independent FMA chains per thread, no memory traffic: the chip's FP32 ceiling.
#pragma once
__global__ void fma_peak(float* out, int iters, float s) {
  float a[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) a[k] = threadIdx.x * 1e-3f + k;
  for (int it = 0; it < iters; ++it) {
#pragma unroll
    for (int k = 0; k < 8; ++k) a[k] = fmaf(a[k], s, 0.5f);
  }
  float t = 0;
#pragma unroll
  for (int k = 0; k < 8; ++k) t += a[k];
  out[blockIdx.x * blockDim.x + threadIdx.x] = t;
}
