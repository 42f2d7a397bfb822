// d08.e2: a vector_add whose grid overruns n and whose kernel has no bounds check. Run plain it usually "works"
// (exit 0: the overrun lands in the allocation's slack); compute-sanitizer reports each invalid write.
// --fixed launches the guarded kernel instead. Prints one JSON line.
#include "../include/harness.cuh"
#include "../kernels/vector_add_oneshot.cuh"
#include "../kernels/vector_add_unguarded.cuh"

int main(int argc, char** argv) {
  bool fixed = h::has_flag(argc, argv, "--fixed");
  size_t n = 1000;  // not a multiple of the block: the last block has 24 threads past the end
  float *a = h::dev_random(n, 1), *b = h::dev_random(n, 2), *c;
  CK(cudaMalloc(&c, n * sizeof(float)));
  unsigned g = (unsigned)((n + 255) / 256);
  if (fixed) vector_add_oneshot<<<g, 256>>>(a, b, c, n);
  else vector_add_unguarded<<<g, 256>>>(a, b, c, n);
  cudaError_t launch = cudaGetLastError(), sync = cudaDeviceSynchronize();
  std::printf("{\"case\":\"oob\",\"kernel\":\"%s\",\"threads\":%u,\"n\":%zu,\"launch\":\"%s\",\"sync\":\"%s\"}\n",
              fixed ? "guarded" : "unguarded", g * 256, n, cudaGetErrorString(launch), cudaGetErrorString(sync));
  return sync == cudaSuccess ? 0 : 1;
}
