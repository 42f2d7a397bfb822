// SGEMM register blocking plus 16-byte loads: A and B tiles come in as float4, A is stored transposed in shared
// memory so the inner loop reads it as float4 too; C is written as float4. 128x128 tile, BK=8, 8x8 per thread.
#pragma once
__global__ void __launch_bounds__(256) sgemm_vectorized(int M, int N, int K, const float* A, const float* B, float* C) {
  constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8;
  __shared__ __align__(16) float As[BK * BM];  // transposed: As[k][m]
  __shared__ __align__(16) float Bs[BK * BN];
  const int tRow = threadIdx.x / (BN / TN), tCol = threadIdx.x % (BN / TN);
  A += (size_t)blockIdx.y * BM * K;
  B += (size_t)blockIdx.x * BN;
  C += (size_t)blockIdx.y * BM * N + (size_t)blockIdx.x * BN;
  const int iRowA = threadIdx.x / (BK / 4), iColA = threadIdx.x % (BK / 4);  // 128 rows x 2 float4
  const int iRowB = threadIdx.x / (BN / 4), iColB = threadIdx.x % (BN / 4);  // 8 rows x 32 float4
  float acc[TM * TN] = {};
  float rM[TM], rN[TN];
  for (int k0 = 0; k0 < K; k0 += BK) {
    float4 a = *reinterpret_cast<const float4*>(&A[(size_t)iRowA * K + iColA * 4]);
    As[(iColA * 4 + 0) * BM + iRowA] = a.x;
    As[(iColA * 4 + 1) * BM + iRowA] = a.y;
    As[(iColA * 4 + 2) * BM + iRowA] = a.z;
    As[(iColA * 4 + 3) * BM + iRowA] = a.w;
    *reinterpret_cast<float4*>(&Bs[iRowB * BN + iColB * 4]) =
        *reinterpret_cast<const float4*>(&B[(size_t)iRowB * N + iColB * 4]);
    __syncthreads();
    A += BK;
    B += (size_t)BK * N;
#pragma unroll
    for (int d = 0; d < BK; ++d) {
#pragma unroll
      for (int i = 0; i < TM; i += 4)
        *reinterpret_cast<float4*>(&rM[i]) = *reinterpret_cast<const float4*>(&As[d * BM + tRow * TM + i]);
#pragma unroll
      for (int j = 0; j < TN; j += 4)
        *reinterpret_cast<float4*>(&rN[j]) = *reinterpret_cast<const float4*>(&Bs[d * BN + tCol * TN + j]);
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
    for (int j = 0; j < TN; j += 4)
      *reinterpret_cast<float4*>(&C[(size_t)(tRow * TM + i) * N + tCol * TN + j]) =
          make_float4(acc[i * TN + j], acc[i * TN + j + 1], acc[i * TN + j + 2], acc[i * TN + j + 3]);
}
