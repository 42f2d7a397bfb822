// SGEMM vectorized plus double buffering: two shared-memory stages; the next tile's float4 loads are issued into
// registers before computing on the current stage, so global latency hides behind the FMAs; one barrier per tile.
// BK=16 halves the barriers per FLOP against the single-buffered version.
#pragma once
__global__ void __launch_bounds__(256) sgemm_double_buffer(int M, int N, int K, const float* A, const float* B,
                                                           float* C) {
  constexpr int BM = 128, BN = 128, BK = 16, TM = 8, TN = 8;
  __shared__ __align__(16) float As[2][BK * BM];
  __shared__ __align__(16) float Bs[2][BK * BN];
  const int tRow = threadIdx.x / (BN / TN), tCol = threadIdx.x % (BN / TN);
  A += (size_t)blockIdx.y * BM * K;
  B += (size_t)blockIdx.x * BN;
  C += (size_t)blockIdx.y * BM * N + (size_t)blockIdx.x * BN;
  // A tile 128x16 = 512 float4: 2 per thread; B tile 16x128 = 512 float4: 2 per thread
  const int iRowA = threadIdx.x / (BK / 4), iColA = threadIdx.x % (BK / 4);  // rows 0..63 (+64)
  const int iRowB = threadIdx.x / (BN / 4), iColB = threadIdx.x % (BN / 4);  // rows 0..7 (+8)
  float4 ra[2], rb[2];
  auto load = [&](int k0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      ra[h] = *reinterpret_cast<const float4*>(&A[(size_t)(iRowA + 64 * h) * K + k0 + iColA * 4]);
      rb[h] = *reinterpret_cast<const float4*>(&B[(size_t)(k0 + iRowB + 8 * h) * N + iColB * 4]);
    }
  };
  auto store = [&](int s) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      int r = iRowA + 64 * h;
      As[s][(iColA * 4 + 0) * BM + r] = ra[h].x;
      As[s][(iColA * 4 + 1) * BM + r] = ra[h].y;
      As[s][(iColA * 4 + 2) * BM + r] = ra[h].z;
      As[s][(iColA * 4 + 3) * BM + r] = ra[h].w;
      *reinterpret_cast<float4*>(&Bs[s][(iRowB + 8 * h) * BN + iColB * 4]) = rb[h];
    }
  };
  float acc[TM * TN] = {};
  float rM[TM], rN[TN];
  load(0);
  store(0);
  __syncthreads();
  int s = 0;
  for (int k0 = 0; k0 < K; k0 += BK) {
    bool more = k0 + BK < K;
    if (more) load(k0 + BK);
#pragma unroll
    for (int d = 0; d < BK; ++d) {
#pragma unroll
      for (int i = 0; i < TM; i += 4)
        *reinterpret_cast<float4*>(&rM[i]) = *reinterpret_cast<const float4*>(&As[s][d * BM + tRow * TM + i]);
#pragma unroll
      for (int j = 0; j < TN; j += 4)
        *reinterpret_cast<float4*>(&rN[j]) = *reinterpret_cast<const float4*>(&Bs[s][d * BN + tCol * TN + j]);
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i * TN + j] += rM[i] * rN[j];
    }
    if (more) store(s ^ 1);  // the other stage: nobody reads it during this tile
    __syncthreads();
    s ^= 1;
  }
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; j += 4)
      *reinterpret_cast<float4*>(&C[(size_t)(tRow * TM + i) * N + tCol * TN + j]) =
          make_float4(acc[i * TN + j], acc[i * TN + j + 1], acc[i * TN + j + 2], acc[i * TN + j + 3]);
}
