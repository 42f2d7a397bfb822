// Swish and Mish CUDA kernels: the one source of both custom-op paths.
//  - workloads/engines/custom_ops.py reads this file and compiles it at first use with NVRTC (through CuPy) for the
//    torch.library ops ailab::swish / ailab::mish (impl="cuda");
//  - act_launch.cu includes it for the TensorRT plugins (act_plugin.cpp), compiled by nvcc.
// Elementwise, any shape (the caller passes the element count), FP32 and FP16 storage with FP32 math; grid-stride
// loops so any grid size covers any n. Kernel names are extern "C" so NVRTC callers can look them up by name.
#pragma once
#include <cuda_fp16.h>

__device__ __forceinline__ float ailab_swish(float v) { return v / (1.f + __expf(-v)); }

__device__ __forceinline__ float ailab_mish(float v) {
  float sp = v > 20.f ? v : log1pf(__expf(v));  // softplus; above 20 it equals v in FP32
  return v * tanhf(sp);
}

#define AILAB_GRID_STRIDE(i, n) \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

#define AILAB_ACT_KERNELS(NAME, FN)                                                  \
  extern "C" __global__ void NAME##_f32(const float* x, float* y, long long n) {     \
    AILAB_GRID_STRIDE(i, n) y[i] = FN(x[i]);                                         \
  }                                                                                  \
  extern "C" __global__ void NAME##_f16(const __half* x, __half* y, long long n) {   \
    AILAB_GRID_STRIDE(i, n) y[i] = __float2half(FN(__half2float(x[i])));             \
  }

AILAB_ACT_KERNELS(swish, ailab_swish)
AILAB_ACT_KERNELS(mish, ailab_mish)
