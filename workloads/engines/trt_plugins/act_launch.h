// Host-side launcher of the Swish/Mish kernels (act_kernels.cuh), without any TensorRT dependency: the plugin
// (act_plugin.cpp) calls it from enqueue(); the kernels compile and can be tested where TensorRT is absent.
#pragma once
#include <cstdint>
#include <cuda_runtime_api.h>

namespace ailab {

enum class Act : int32_t { kSwish = 0, kMish = 1 };
enum class ActType : int32_t { kFloat32 = 0, kFloat16 = 1 };

// y = act(x) over n elements of `type`, on `stream`; returns the launch's cudaError_t (cudaSuccess for n == 0).
cudaError_t launchAct(Act act, ActType type, void const* x, void* y, int64_t n, cudaStream_t stream) noexcept;

}  // namespace ailab
