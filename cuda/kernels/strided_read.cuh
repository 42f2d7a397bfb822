// Copy with a read stride (d64.e3): stride 1 is coalesced; stride s makes each warp touch up to 32 sectors.
#pragma once
__global__ void strided_read(const float* __restrict__ in, float* __restrict__ out, size_t n, int stride) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[(i * stride) % n];
}
