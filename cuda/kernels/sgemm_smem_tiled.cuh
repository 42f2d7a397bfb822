// SGEMM with TILE x TILE tiles of A and B in shared memory: each global element is read N/TILE times, not N.
// Blocks have TILE x min(TILE, 1024/TILE) threads; with TILE=64 each thread computes TILE/16 = 4 outputs.
#pragma once
template <int TILE>
__global__ void sgemm_smem_tiled(int M, int N, int K, const float* A, const float* B, float* C) {
  constexpr int TY = TILE * TILE > 1024 ? 1024 / TILE : TILE, RPT = TILE / TY;
  __shared__ float As[TILE][TILE], Bs[TILE][TILE];
  int tx = threadIdx.x, ty = threadIdx.y;
  int row0 = blockIdx.y * TILE, col = blockIdx.x * TILE + tx;
  float acc[RPT] = {};
  for (int k0 = 0; k0 < K; k0 += TILE) {
#pragma unroll
    for (int r = 0; r < RPT; ++r) {
      As[ty + r * TY][tx] = A[(size_t)(row0 + ty + r * TY) * K + k0 + tx];
      Bs[ty + r * TY][tx] = B[(size_t)(k0 + ty + r * TY) * N + col];
    }
    __syncthreads();
#pragma unroll 16
    for (int k = 0; k < TILE; ++k) {
      float b = Bs[k][tx];
#pragma unroll
      for (int r = 0; r < RPT; ++r) acc[r] += As[ty + r * TY][k] * b;
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < RPT; ++r) C[(size_t)(row0 + ty + r * TY) * N + col] = acc[r];
}
