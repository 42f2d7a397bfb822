// Our own batched SGEMM for the convolutions: C[b] = A[b] * B[b] (row-major, M x K times K x N), blockIdx.z = b,
// with per-batch strides (0 shares a matrix). Register blocking as sgemm_regblock (TM x TN outputs per thread, A
// stored transposed in shared memory and read as float4), but every load and store is bounds-checked: the conv
// GEMMs have sizes like 64 x 3136 x 576 or 512 x 49 x 4608 that the 128-multiple SGEMM kernels cannot take.
#pragma once
template <int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
    sgemm_batched_guarded(int M, int N, int K, const float* __restrict__ A, long long sA, const float* __restrict__ B,
                          long long sB, float* __restrict__ C, long long sC) {
  constexpr int NT = (BM / TM) * (BN / TN);
  __shared__ __align__(16) float As[BK][BM];  // transposed: As[k][m]
  __shared__ __align__(16) float Bs[BK][BN];
  A += blockIdx.z * sA;
  B += blockIdx.z * sB;
  C += blockIdx.z * sC;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int tr = threadIdx.x / (BN / TN), tc = threadIdx.x % (BN / TN);
  float acc[TM][TN] = {};
  float rM[TM], rN[TN];
  for (int k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
    for (int i = threadIdx.x; i < BM * BK; i += NT) {  // consecutive threads walk k: 32-byte row pieces of A
      int m = i / BK, k = i % BK;
      As[k][m] = (m0 + m < M && k0 + k < K) ? A[(size_t)(m0 + m) * K + k0 + k] : 0.f;
    }
#pragma unroll
    for (int i = threadIdx.x; i < BK * BN; i += NT) {  // consecutive threads walk n: coalesced rows of B
      int k = i / BN, n = i % BN;
      Bs[k][n] = (k0 + k < K && n0 + n < N) ? B[(size_t)(k0 + k) * N + n0 + n] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int d = 0; d < BK; ++d) {
#pragma unroll
      for (int i = 0; i < TM; i += 4) *reinterpret_cast<float4*>(&rM[i]) = *reinterpret_cast<const float4*>(&As[d][tr * TM + i]);
#pragma unroll
      for (int j = 0; j < TN; j += 4) *reinterpret_cast<float4*>(&rN[j]) = *reinterpret_cast<const float4*>(&Bs[d][tc * TN + j]);
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += rM[i] * rN[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    int m = m0 + tr * TM + i;
    if (m >= M) break;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      int n = n0 + tc * TN + j;
      if (n < N) C[(size_t)m * N + n] = acc[i][j];
    }
  }
}

// 128 x 128 tiles (8 x 8 per thread) when M fills them, else 64 x 64 (4 x 4 per thread); 256 threads either way.
inline void launch_sgemm_batched(int M, int N, int K, const float* A, long long sA, const float* B, long long sB,
                                 float* C, long long sC, int batch, cudaStream_t st = 0) {
  if (M >= 128) {
    dim3 g((N + 127) / 128, (M + 127) / 128, batch);
    sgemm_batched_guarded<128, 128, 8, 8, 8><<<g, 256, 0, st>>>(M, N, K, A, sA, B, sB, C, sC);
  } else {
    dim3 g((N + 63) / 64, (M + 63) / 64, batch);
    sgemm_batched_guarded<64, 64, 8, 4, 4><<<g, 256, 0, st>>>(M, N, K, A, sA, B, sB, C, sC);
  }
}
