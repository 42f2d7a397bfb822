// vector_add WITHOUT the bounds check: the last block writes past the end (caught by compute-sanitizer).
#pragma once
__global__ void vector_add_unguarded(const float* a, const float* b, float* c, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  (void)n;  // the bug on purpose: n is ignored
  c[i] = a[i] + b[i];
}
