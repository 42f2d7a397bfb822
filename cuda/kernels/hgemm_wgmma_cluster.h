// Host interface of the persistent wgmma GEMM in 2-CTA thread-block clusters with TMA multicast
// (hgemm_wgmma_cluster.cu, sm_90a only).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>

// C (M x N, row-major fp32) = A (M x K, row-major fp16) * Bt^T, Bt (N x K, row-major fp16); block tile 128 x 256,
// clusters of two blocks along M sharing the B tile. tma_store: the epilogue goes registers -> shared memory ->
// TMA store instead of direct global stores. Any M > 0, N % 256 == 0, K % 64 == 0.
bool hgemm_wgmma_cluster_shape_ok(int M, int N, int K);
void launch_hgemm_wgmma_cluster(bool tma_store, int M, int N, int K, const half* A, const half* Bt, float* C,
                                cudaStream_t st = 0);
// registers per thread at launch, dynamic shared memory, stages, clusters resident at once (occupancy query)
void hgemm_wgmma_cluster_info(bool tma_store, int* registers, size_t* smem_bytes, int* stages, int* max_clusters);
