// Host entry points of the wgmma (sm_90a) implicit-GEMM 3x3 convolution (conv_implicit_gemm_wgmma.cu), a separate
// object because wgmma exists only on sm_90a while bench_conv is built for sm_90. Declared weak in bench_conv.cu:
// a build that does not link the object leaves them null and bench_conv says so instead of failing to link.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

// number of tile configurations, and the name of configuration i
int conv_wgmma_configs();
const char* conv_wgmma_name(int i);
int conv_wgmma_bn(int i);  // its block tile's N (output channels)
int conv_wgmma_bm(int i);  // its block tile's M (output pixels): 64 per warpgroup
// x: N x H x W x C, w: K x 3 x 3 x C (fp16). splits == 1: fp16 y (N x H x W x K) into out; splits > 1: fp32 partial
// sums of `splits` k-ranges into out (splits x M x K floats; igemm::splitk_reduce_to_half finishes them).
// Returns false (launching nothing) where the configuration cannot take the shape (C % 64, K % 8).
bool conv_wgmma_launch(int cfg, int N, int H, int W, int C, int K, const half* x, const half* w, void* out, int splits,
                       cudaStream_t st);
