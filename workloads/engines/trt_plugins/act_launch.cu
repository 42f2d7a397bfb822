// Launches the shared Swish/Mish kernels for the TensorRT plugins (see act_kernels.cuh, act_launch.h).
#include "act_kernels.cuh"
#include "act_launch.h"

namespace ailab {

cudaError_t launchAct(Act act, ActType type, void const* x, void* y, int64_t n, cudaStream_t stream) noexcept {
  if (n <= 0) return cudaSuccess;
  constexpr int kThreads = 256;
  int64_t want = (n + kThreads - 1) / kThreads;
  unsigned blocks = static_cast<unsigned>(want < 65535 ? want : 65535);  // grid-stride loop covers the rest
  auto nn = static_cast<long long>(n);
  if (type == ActType::kFloat32) {
    auto xi = static_cast<float const*>(x);
    auto yo = static_cast<float*>(y);
    if (act == Act::kSwish) swish_f32<<<blocks, kThreads, 0, stream>>>(xi, yo, nn);
    else mish_f32<<<blocks, kThreads, 0, stream>>>(xi, yo, nn);
  } else {
    auto xi = static_cast<__half const*>(x);
    auto yo = static_cast<__half*>(y);
    if (act == Act::kSwish) swish_f16<<<blocks, kThreads, 0, stream>>>(xi, yo, nn);
    else mish_f16<<<blocks, kThreads, 0, stream>>>(xi, yo, nn);
  }
  return cudaGetLastError();
}

}  // namespace ailab
