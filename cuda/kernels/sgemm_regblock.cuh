// SGEMM with 2D register blocking: a 128x128 block tile, BK=8, each of 256 threads keeps an 8x8 tile of C in
// registers, so every shared-memory load feeds 8 FMAs instead of 1.
#pragma once
template <int BM = 128, int BN = 128, int BK = 8, int TM = 8, int TN = 8>
__global__ void __launch_bounds__((BM * BN) / (TM * TN)) sgemm_regblock(int M, int N, int K, const float* A,
                                                                        const float* B, float* C) {
  constexpr int NT = (BM * BN) / (TM * TN);
  __shared__ float As[BM * BK], Bs[BK * BN];
  const int tRow = threadIdx.x / (BN / TN), tCol = threadIdx.x % (BN / TN);
  A += (size_t)blockIdx.y * BM * K;
  B += (size_t)blockIdx.x * BN;
  C += (size_t)blockIdx.y * BM * N + (size_t)blockIdx.x * BN;
  const int iRowA = threadIdx.x / BK, iColA = threadIdx.x % BK, iRowB = threadIdx.x / BN, iColB = threadIdx.x % BN;
  float acc[TM * TN] = {}, rM[TM], rN[TN];
  for (int k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
    for (int o = 0; o < BM; o += NT / BK) As[(iRowA + o) * BK + iColA] = A[(size_t)(iRowA + o) * K + iColA];
#pragma unroll
    for (int o = 0; o < BK; o += NT / BN) Bs[(iRowB + o) * BN + iColB] = B[(size_t)(iRowB + o) * N + iColB];
    __syncthreads();
    A += BK;
    B += (size_t)BK * N;
#pragma unroll
    for (int d = 0; d < BK; ++d) {
#pragma unroll
      for (int i = 0; i < TM; ++i) rM[i] = As[(tRow * TM + i) * BK + d];
#pragma unroll
      for (int j = 0; j < TN; ++j) rN[j] = Bs[d * BN + tCol * TN + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i * TN + j] += rM[i] * rN[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) C[(size_t)(tRow * TM + i) * N + tCol * TN + j] = acc[i * TN + j];
}
