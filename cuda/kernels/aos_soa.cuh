// One particle-update step in two layouts (d10.e3): array of structures (each warp load strides 32 bytes) vs
// structure of arrays (each field contiguous, fully coalesced).
#pragma once
struct Particle {
  float x, y, z, vx, vy, vz, m, pad;
};
__global__ void update_aos(Particle* p, size_t n, float dt) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  Particle q = p[i];
  q.x += q.vx * dt; q.y += q.vy * dt; q.z += q.vz * dt;
  p[i] = q;
}
__global__ void update_aos_pos_only(Particle* p, size_t n, float dt) {
  // touches 6 of 8 fields but AoS still pulls whole 32-byte structs through every sector
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  p[i].x += p[i].vx * dt; p[i].y += p[i].vy * dt; p[i].z += p[i].vz * dt;
}
__global__ void update_soa(float* x, float* y, float* z, const float* vx, const float* vy, const float* vz, size_t n,
                           float dt) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  x[i] += vx[i] * dt; y[i] += vy[i] * dt; z[i] += vz[i] * dt;
}
