// CUDA sample run by the lab_validate role: adds two vectors on the GPU and checks every element.
#include <cstdio>
#include <cuda_runtime.h>

__global__ void add(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

int main() {
  const int n = 1 << 20;
  float *a, *b, *c;
  if (cudaMallocManaged(&a, n * sizeof(float)) != cudaSuccess || cudaMallocManaged(&b, n * sizeof(float)) != cudaSuccess ||
      cudaMallocManaged(&c, n * sizeof(float)) != cudaSuccess) {
    std::printf("FAIL cudaMallocManaged: %s\n", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  for (int i = 0; i < n; ++i) { a[i] = float(i); b[i] = 2.0f * float(i); }
  add<<<(n + 255) / 256, 256>>>(a, b, c, n);
  cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) { std::printf("FAIL kernel: %s\n", cudaGetErrorString(err)); return 1; }
  for (int i = 0; i < n; ++i) {
    if (c[i] != 3.0f * float(i)) { std::printf("FAIL at %d: %f\n", i, c[i]); return 1; }
  }
  std::printf("PASS vector_add n=%d\n", n);
  return 0;
}
