// 32x32 tile transpose through shared memory (d09.e2): reading a column of tile[32][32] hits one bank 32 times;
// padding each row to 33 words puts the column in 32 different banks.
#pragma once
template <int PAD>
__global__ void smem_transpose_pad(const float* __restrict__ in, float* __restrict__ out, int n) {
  __shared__ float tile[32][32 + PAD];
  int x = blockIdx.x * 32 + threadIdx.x, y = blockIdx.y * 32 + threadIdx.y;
  for (int j = 0; j < 32; j += blockDim.y) tile[threadIdx.y + j][threadIdx.x] = in[(size_t)(y + j) * n + x];
  __syncthreads();
  x = blockIdx.y * 32 + threadIdx.x;
  y = blockIdx.x * 32 + threadIdx.y;
  for (int j = 0; j < 32; j += blockDim.y) out[(size_t)(y + j) * n + x] = tile[threadIdx.x][threadIdx.y + j];
}
