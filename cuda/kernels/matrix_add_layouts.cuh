// matrix_add over a row-major rows x cols matrix with three thread mappings (d08.e4 / d09.e1):
// 1D flat (coalesced), 1D thread-per-row (each warp strides by a row: uncoalesced), 2D blocks (coalesced).
#pragma once
__global__ void matrix_add_flat1d(const float* a, const float* b, float* c, int rows, int cols) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < (size_t)rows * cols) c[i] = a[i] + b[i];
}
__global__ void matrix_add_row_per_thread(const float* a, const float* b, float* c, int rows, int cols) {
  int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  for (int j = 0; j < cols; ++j) c[(size_t)r * cols + j] = a[(size_t)r * cols + j] + b[(size_t)r * cols + j];
}
__global__ void matrix_add_2d(const float* a, const float* b, float* c, int rows, int cols) {
  int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < cols && y < rows) c[(size_t)y * cols + x] = a[(size_t)y * cols + x] + b[(size_t)y * cols + x];
}
