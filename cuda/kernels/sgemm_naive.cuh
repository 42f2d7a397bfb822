// SGEMM, one thread per C element, threadIdx.x walking ROWS: a warp's loads of A stride by K (uncoalesced).
// All GEMM kernels here: row-major A[M][K], B[K][N], C[M][N] = A*B.
#pragma once
__global__ void sgemm_naive(int M, int N, int K, const float* A, const float* B, float* C) {
  int row = blockIdx.x * blockDim.x + threadIdx.x, col = blockIdx.y * blockDim.y + threadIdx.y;
  if (row >= M || col >= N) return;
  float acc = 0;
  for (int k = 0; k < K; ++k) acc += A[(size_t)row * K + k] * B[(size_t)k * N + col];
  C[(size_t)row * N + col] = acc;
}
