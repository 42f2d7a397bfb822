// Shared-memory reads at a word stride (d09.e2): lane l reads word (l*stride) mod 1024. 32 banks of 4 bytes,
// so the conflict degree is gcd(stride, 32): stride 32 is a 32-way conflict, odd strides (17) are conflict-free.
#pragma once
__global__ void smem_bank_stride(float* out, int stride, int iters) {
  __shared__ float s[1024];
  for (int k = threadIdx.x; k < 1024; k += blockDim.x) s[k] = (float)k;
  __syncthreads();
  int lane = threadIdx.x & 31, idx = (lane * stride) & 1023;
  float acc = 0;
  for (int it = 0; it < iters; ++it) {
    acc += s[idx];
    idx = (idx + 1) & 1023;  // shift all lanes together: same conflict degree every iteration
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}
