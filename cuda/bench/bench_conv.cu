// d65 convolutions: direct, im2col + GEMM (cuBLAS SGEMM and our own batched SGEMM) and Winograd F(2x2,3x3) (16
// batched GEMMs, cuBLAS and ours) on ResNet-style 3x3 layers, NCHW fp32, stride 1, pad 1, TF32 off. cuDNN is timed
// on the same shapes from Python (workloads/kernels/cudnn.py), which reads the shapes from this program's rows.
// With --fp16 the program runs only the tensor-core implicit-GEMM convolution (NHWC fp16 in, fp32 accumulate, fp16
// out; case "conv_tc") on the same layers, in its own process so that a failure there cannot lose the fp32 rows;
// --fp16 --wgmma runs the wgmma (sm_90a) version of it instead (--wgmma --wg1: its one-warpgroup tiles), again in a
// process of its own.
#include <cublas_v2.h>

#include "../include/cublas_check.cuh"
#include "../include/harness.cuh"
#include "../kernels/conv_direct.cuh"
#include "../kernels/conv_im2col.cuh"
#include "../kernels/conv_implicit_gemm_tc.cuh"
#include "../kernels/conv_implicit_gemm_tc_splitk.cuh"
#include "../kernels/conv_implicit_gemm_wgmma.h"

// weak: a build that does not link the sm_90a object (conv_implicit_gemm_wgmma.cu) leaves them null
int conv_wgmma_configs() __attribute__((weak));
const char* conv_wgmma_name(int i) __attribute__((weak));
int conv_wgmma_bn(int i) __attribute__((weak));
int conv_wgmma_bm(int i) __attribute__((weak));
bool conv_wgmma_launch(int cfg, int N, int H, int W, int C, int K, const half* x, const half* w, void* out, int splits,
                       cudaStream_t st) __attribute__((weak));
#include "../kernels/conv_sgemm_batched.cuh"
#include "../kernels/conv_winograd.cuh"

static cublasHandle_t hb;

struct Layer {
  int N, C, K, H, W;
  const char* why;  // what the layer stands for (documentation only)
};

static std::string label(const Layer& l) {
  char b[96];
  std::snprintf(b, sizeof b, "N=%d C=%d K=%d %dx%d", l.N, l.C, l.K, l.H, l.W);
  return b;
}

// float64 direct convolution of image n of x (N x C x H x W) with w (K x C x 3 x 3): the reference, K x H x W.
static std::vector<double> cpu_conv(const std::vector<float>& x, const std::vector<float>& w, const Layer& l, int n) {
  const int C = l.C, H = l.H, W = l.W, K = l.K;
  std::vector<double> out((size_t)K * H * W, 0.0);
  const float* xn = x.data() + (size_t)n * C * H * W;
  for (int k = 0; k < K; ++k)
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < 3; ++r)
        for (int s = 0; s < 3; ++s) {
          double g = w[((size_t)k * C + c) * 9 + r * 3 + s];
          for (int p = 0; p < H; ++p) {
            int h = p + r - 1;
            if (h < 0 || h >= H) continue;
            double* o = &out[((size_t)k * H + p) * W];
            const float* xi = xn + ((size_t)c * H + h) * W;
            for (int q = std::max(0, 1 - s); q < std::min(W, W + 1 - s); ++q) o[q] += g * xi[q + s - 1];
          }
        }
  return out;
}

// Row-major y[n] (K x HW) = w (K x 9C) * col[n] (9C x HW) for all n, through column-major cuBLAS (y^T = col^T w^T).
static void cublas_im2col_gemm(const Layer& l, const float* w, const float* col, float* y) {
  const float one = 1, zero = 0;
  int HW = l.H * l.W, C9 = 9 * l.C;
  CB(cublasSgemmStridedBatched(hb, CUBLAS_OP_N, CUBLAS_OP_N, HW, l.K, C9, &one, col, HW, (long long)C9 * HW, w, C9, 0,
                               &zero, y, HW, (long long)l.K * HW, l.N));
}
// M[xi] (K x T) = U[xi] (K x C) * V[xi] (C x T), xi = 0..15
static void cublas_winograd_gemm(const WinogradShape& s, const float* U, const float* V, float* M) {
  const float one = 1, zero = 0;
  int T = s.tiles();
  CB(cublasSgemmStridedBatched(hb, CUBLAS_OP_N, CUBLAS_OP_N, T, s.K, s.C, &one, V, T, (long long)s.C * T, U, s.C,
                               (long long)s.K * s.C, &zero, M, T, (long long)s.K * T, 16));
}

static void run_layer(const Layer& l, bool conv_rows, bool stage_rows) {
  const size_t xe = (size_t)l.N * l.C * l.H * l.W, ye = (size_t)l.N * l.K * l.H * l.W, we = (size_t)l.K * l.C * 9;
  const int S = (int)std::min<size_t>(8, std::max<size_t>(1, ((200ull << 20) + xe * 4 - 1) / (xe * 4)));
  std::vector<float*> xs;
  for (int k = 0; k < S; ++k) xs.push_back(h::dev_random(xe, 700 + k));
  float* w = h::dev_random(we, 699);
  float *y, *col, *U, *V, *M;
  const WinogradShape ws{l.N, l.C, l.H, l.W, l.K};
  CK(cudaMalloc(&y, ye * 4));
  CK(cudaMalloc(&col, im2col_workspace_bytes(l.N, l.C, l.H, l.W)));
  CK(cudaMalloc(&U, ws.u_elems() * 4));
  CK(cudaMalloc(&V, ws.v_elems() * 4));
  CK(cudaMalloc(&M, ws.m_elems() * 4));

  // reference: the first and the last image of input set 0 (batch indexing errors show in the last one)
  const auto hx = h::to_host(xs[0], xe), hw = h::to_host(w, we);
  const size_t img = (size_t)l.K * l.H * l.W;
  std::vector<int> imgs = l.N > 1 ? std::vector<int>{0, l.N - 1} : std::vector<int>{0};
  std::vector<double> ref;
  for (int n : imgs) {
    auto r = cpu_conv(hx, hw, l, n);
    ref.insert(ref.end(), r.begin(), r.end());
  }
  const std::string refname = l.N > 1 ? "CPU float64 direct conv, images 0 and N-1" : "CPU float64 direct conv, image 0";
  const double flops = 2.0 * l.N * l.K * l.C * 9.0 * l.H * l.W;  // direct-conv FLOPs for every implementation

  auto check = [&]() {
    std::vector<float> got;
    for (int n : imgs) {
      auto v = h::to_host(y + (size_t)n * img, img);
      got.insert(got.end(), v.begin(), v.end());
    }
    return h::rel_err(got, ref);
  };
  auto run = [&](const char* impl, const char* gemm, size_t wsb, const std::function<void(const float*)>& go) {
    h::poison(y, ye * 4);
    go(xs[0]);
    CKL();
    double err = check();
    double ms = h::time_ms([&](int i) { go(xs[i % S]); });
    if (conv_rows)
      h::Row("conv", "3x3 convolution (stride 1, pad 1, NCHW fp32): direct vs im2col vs Winograd")
          .s("layer", label(l)).i("N", "", l.N).i("C", "", l.C).i("K", "", l.K).i("H", "", l.H).i("W", "", l.W)
          .s("implementation", impl).s("GEMM", gemm).f("time", "ms", ms).f("throughput", "TFLOP/s", flops / ms / 1e9)
          .f("workspace", "MiB", wsb / 1048576.0).f("rel. error", "", err).s("reference", refname).emit();
  };
  auto stage = [&](const char* impl, const char* name, const std::function<void(int)>& go) {
    double ms = h::time_ms(go);
    if (stage_rows)
      h::Row("stages", "convolution stages: where the time goes").s("layer", label(l)).s("implementation", impl)
          .s("stage", name).f("time", "ms", ms).emit();
  };

  const size_t colb = im2col_workspace_bytes(l.N, l.C, l.H, l.W), wgb = ws.workspace_bytes();
  const int HW = l.H * l.W, C9 = 9 * l.C;
  run("direct", "-", 0, [&](const float* x) { launch_conv_direct(l.N, l.C, l.H, l.W, l.K, x, w, y); });
  run("im2col + GEMM", "cuBLAS SGEMM (strided batched)", colb, [&](const float* x) {
    launch_im2col_3x3(l.N, l.C, l.H, l.W, x, col);
    cublas_im2col_gemm(l, w, col, y);
  });
  run("im2col + GEMM", "own (sgemm_batched_guarded)", colb, [&](const float* x) {
    launch_im2col_3x3(l.N, l.C, l.H, l.W, x, col);
    launch_sgemm_batched(l.K, HW, C9, w, 0, col, (long long)C9 * HW, y, (long long)l.K * HW, l.N);
  });
  // every call transforms the filters too (as an unprepared convolution call must); the stage rows show its share
  run("Winograd F(2x2,3x3)", "cuBLAS SGEMM (16 batched)", wgb, [&](const float* x) {
    launch_winograd_filter(ws, w, U);
    launch_winograd_input(ws, x, V);
    cublas_winograd_gemm(ws, U, V, M);
    launch_winograd_output(ws, M, y);
  });
  run("Winograd F(2x2,3x3)", "own (sgemm_batched_guarded)", wgb, [&](const float* x) {
    launch_winograd_filter(ws, w, U);
    launch_winograd_input(ws, x, V);
    launch_sgemm_batched(l.K, ws.tiles(), l.C, U, (long long)l.K * l.C, V, (long long)l.C * ws.tiles(), M,
                         (long long)l.K * ws.tiles(), 16);
    launch_winograd_output(ws, M, y);
  });

  if (stage_rows) {
    stage("im2col + GEMM", "im2col", [&](int i) { launch_im2col_3x3(l.N, l.C, l.H, l.W, xs[i % S], col); });
    stage("im2col + GEMM", "GEMM (cuBLAS)", [&](int) { cublas_im2col_gemm(l, w, col, y); });
    stage("im2col + GEMM", "GEMM (own)", [&](int) {
      launch_sgemm_batched(l.K, HW, C9, w, 0, col, (long long)C9 * HW, y, (long long)l.K * HW, l.N);
    });
    const char* wi = "Winograd F(2x2,3x3)";
    stage(wi, "filter transform", [&](int) { launch_winograd_filter(ws, w, U); });
    stage(wi, "input transform", [&](int i) { launch_winograd_input(ws, xs[i % S], V); });
    stage(wi, "16 GEMMs (cuBLAS)", [&](int) { cublas_winograd_gemm(ws, U, V, M); });
    stage(wi, "16 GEMMs (own)", [&](int) {
      launch_sgemm_batched(l.K, ws.tiles(), l.C, U, (long long)l.K * l.C, V, (long long)l.C * ws.tiles(), M,
                           (long long)l.K * ws.tiles(), 16);
    });
    stage(wi, "output transform", [&](int) { launch_winograd_output(ws, M, y); });
  }
  for (auto p : xs) CK(cudaFree(p));
  for (void* p : {(void*)w, (void*)y, (void*)col, (void*)U, (void*)V, (void*)M}) CK(cudaFree(p));
}

// x (N x C x H x W fp32) -> NHWC fp16; with N = K, H = W = 3 it turns KCRS filters into KRSC
__global__ void nchw_to_nhwc_half(const float* __restrict__ x, half* __restrict__ y, int N, int C, int H, int W) {
  const size_t HW = (size_t)H * W, total = (size_t)N * C * HW;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    const size_t c = i % C, pix = i / C, n = pix / HW, pq = pix % HW;
    y[i] = __float2half_rn(x[(n * C + c) * HW + pq]);
  }
}
static half* to_nhwc_half(const float* x, int N, int C, int H, int W) {
  half* y;
  const size_t n = (size_t)N * C * H * W;
  CK(cudaMalloc(&y, n * sizeof(half)));
  nchw_to_nhwc_half<<<(unsigned)std::min<size_t>((n + 255) / 256, 4096), 256>>>(x, y, N, C, H, W);
  CKL();
  CK(cudaDeviceSynchronize());
  return y;
}

// fp16 in, fp32 accumulation over 9C products, fp16 out: the output rounding alone is up to 2^-11 relative per element
// (about 3e-4 rms); a wrong tap, tile or padding pixel is O(0.1) or more
static constexpr double TC_TOLERANCE = 2e-3;
static constexpr int TC_BATCH = 10;  // calls per timed batch: back to back, so launch gaps do not count

// Like h::time_ms (3 warm-ups, median of 5..50 timed runs, about 200 ms in all), but every timed run of `batch` is
// queued behind a short GPU spin, so the start event fires with the whole batch already queued: no launch gap is
// timed (cuDNN's batches in workloads/kernels/cudnn.py are queued the same way, behind torch.cuda._sleep).
__global__ void gpu_spin(long long cycles) {
  const long long t0 = clock64();
  while (clock64() - t0 < cycles) {
  }
}
static double time_queued_ms(const std::function<void(int)>& batch) {
  if (std::getenv("AILAB_PROFILE")) {  // under ncu: one batch, the profiler does the timing
    batch(0);
    CKL();
    CK(cudaDeviceSynchronize());
    return NAN;
  }
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) batch(i);
  CKL();
  CK(cudaDeviceSynchronize());
  std::vector<float> t;
  float total = 0;
  for (int i = 0; i < 50 && (i < 5 || total < 200.f); ++i) {
    gpu_spin<<<1, 1>>>(1000000);  // ~0.5 ms at H200 clocks: far longer than queueing 10 launches takes
    CK(cudaEventRecord(a));
    batch(i);
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    CKL();
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
    total += ms;
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The tensor-core convolution's rows (case conv_tc): every tile configuration, checked against a float64 CPU
// convolution of the same fp16-rounded inputs, then timed as the median over queued batches of TC_BATCH calls / TC_BATCH.
// wgmma: 0 = the mma.sync kernel, 1 = wgmma with two warpgroups per block, 2 = wgmma with one (--wg1)
static void run_layer_tc(const Layer& l, int wgmma) {
  using C1 = igemm::Config<128, 128, 32, 64, 32, 4>;
  using C2 = igemm::Config<128, 64, 32, 64, 32, 4>;
  using C3 = igemm::Config<64, 64, 32, 32, 32, 4>;
  using C4 = igemm::Config<128, 128, 64, 64, 64, 3>;
  using C5 = igemm::Config<128, 128, 32, 64, 64, 4>;
  using C6 = igemm::Config<256, 64, 32, 64, 32, 4>;
  using C1g = igemm::Config<128, 128, 32, 64, 32, 4, false>;  // C1 with activations through L2 only (cp.async.cg)
  using C7 = igemm::Config<128, 64, 64, 64, 32, 4>;
  using C8 = igemm::Config<64, 128, 32, 32, 64, 4>;
  if (!igemm::supports(l.N, l.H, l.W, l.C, l.K)) {
    h::note("conv_tc", label(l) + ": not run: the tensor-core kernel needs C % 32 == 0 and K % 8 == 0");
    return;
  }
  if (wgmma && !igemm::supports(l.N, l.H, l.W, l.C, l.K, 64)) {
    h::note("conv_tc", label(l) + ": wgmma kernel not run: it needs C % 64 == 0 and K % 8 == 0");
    return;
  }
  const size_t xe = (size_t)l.N * l.C * l.H * l.W, ye = (size_t)l.N * l.K * l.H * l.W, we = (size_t)l.K * l.C * 9;
  const int S = (int)std::min<size_t>(8, std::max<size_t>(1, ((200ull << 20) + xe * 2 - 1) / (xe * 2)));
  std::vector<half*> xs;
  std::vector<float> hx;
  for (int k = 0; k < S; ++k) {
    float* xf = h::dev_random(xe, 700 + k);
    if (k == 0) hx = h::to_host(xf, xe);
    xs.push_back(to_nhwc_half(xf, l.N, l.C, l.H, l.W));
    CK(cudaFree(xf));
  }
  float* wf = h::dev_random(we, 699);
  std::vector<float> hw = h::to_host(wf, we);
  half* w = to_nhwc_half(wf, l.K, l.C, 3, 3);
  CK(cudaFree(wf));
  half* y;
  CK(cudaMalloc(&y, ye * sizeof(half)));

  // the reference sees exactly the kernel's inputs: the fp32 values rounded to fp16
  for (auto& v : hx) v = __half2float(__float2half_rn(v));
  for (auto& v : hw) v = __half2float(__float2half_rn(v));
  const size_t HW = (size_t)l.H * l.W;
  std::vector<int> imgs = l.N > 1 ? std::vector<int>{0, l.N - 1} : std::vector<int>{0};
  std::vector<double> ref;
  for (int n : imgs) {
    auto r = cpu_conv(hx, hw, l, n);  // K x H x W
    ref.insert(ref.end(), r.begin(), r.end());
  }
  const std::string refname =
      l.N > 1 ? "CPU float64 conv of the fp16 inputs, images 0 and N-1" : "CPU float64 conv of the fp16 inputs, image 0";
  const double flops = 2.0 * l.N * l.K * l.C * 9.0 * l.H * l.W;

  auto run = [&](const std::string& impl, const std::string& kernels, const std::function<void(const half*)>& go) {
    if (!h::only(impl)) return;  // AILAB_ONLY_KERNEL: one configuration (ncu)
    h::poison(y, ye * sizeof(half));
    go(xs[0]);
    CKL();
    CK(cudaDeviceSynchronize());
    std::vector<double> got;  // NHWC -> the reference's K x H x W order
    for (int n : imgs) {
      auto v = h::to_host(y + (size_t)n * HW * l.K, HW * l.K);
      for (int k = 0; k < l.K; ++k)
        for (size_t pq = 0; pq < HW; ++pq) got.push_back((double)__half2float(v[pq * l.K + k]));
    }
    const double err = h::rel_err(got, ref);
    const bool ok = std::isfinite(err) && err < TC_TOLERANCE;
    double ms = NAN;
    if (ok)  // a wrong kernel is not timed: its row says FAIL
      ms = time_queued_ms([&](int i) {
        for (int b = 0; b < TC_BATCH; ++b) go(xs[(i * TC_BATCH + b) % S]);
      }) / TC_BATCH;
    h::Row("conv_tc", "3x3 convolution on tensor cores (NHWC fp16 in, fp32 accumulate, fp16 out)")
        .s("layer", label(l)).i("N", "", l.N).i("C", "", l.C).i("K", "", l.K).i("H", "", l.H).i("W", "", l.W)
        .s("implementation", impl).s("kernels", kernels).f("time", "ms", ms)
        .f("throughput", "TFLOP/s", flops / ms / 1e9).f("rel. error", "", err).f("tolerance", "", TC_TOLERANCE)
        .s("check", ok ? "pass" : "FAIL").s("reference", refname).emit();
  };
  const int M = l.N * l.H * l.W, sms = h::device_sms();
  float* ws = nullptr;
  CK(cudaMalloc(&ws, igemm::splitk_workspace_bytes(l.N, l.H, l.W, l.K, 8)));
  auto cfg = [&](auto c) {
    using Cfg = decltype(c);
    run(Cfg::name(), "conv3x3_igemm_tc", [&](const half* x) { Cfg::launch(l.N, l.H, l.W, l.C, l.K, x, w, y); });
    // split-K where one tile per block leaves SMs idle (fewer than two blocks per SM)
    const long long tiles = (long long)((M + Cfg::BM_ - 1) / Cfg::BM_) * ((l.K + Cfg::BN_ - 1) / Cfg::BN_);
    if (tiles < 2ll * sms)
      for (int sp : {2, 4, 8})
        run(Cfg::name() + ", split-K " + std::to_string(sp), "conv3x3_igemm_tc (fp32 partials) + splitk_reduce_to_half",
            [&](const half* x) { igemm::launch_splitk<Cfg>(l.N, l.H, l.W, l.C, l.K, x, w, y, ws, sp); });
  };
  if (wgmma) {
    for (int i = 0; i < conv_wgmma_configs(); ++i) {
      if ((conv_wgmma_bm(i) == 64) != (wgmma == 2)) continue;
      const std::string name = conv_wgmma_name(i);
      auto go = [&, i](const half* x, void* out, int sp) {
        if (!conv_wgmma_launch(i, l.N, l.H, l.W, l.C, l.K, x, w, out, sp, 0)) {
          std::fprintf(stderr, "{\"error\":\"conv_wgmma_launch refused the shape\"}\n");
          std::exit(1);
        }
      };
      run(name, "conv3x3_igemm_wgmma", [&](const half* x) { go(x, y, 1); });
      const int bn = conv_wgmma_bn(i), bm = conv_wgmma_bm(i);
      if ((long long)((M + bm - 1) / bm) * ((l.K + bn - 1) / bn) < 2ll * sms)
        for (int sp : {2, 4, 8})
          run(name + ", split-K " + std::to_string(sp), "conv3x3_igemm_wgmma (fp32 partials) + splitk_reduce_to_half",
              [&](const half* x) {
                go(x, ws, sp);
                const size_t MK = (size_t)M * l.K;
                igemm::splitk_reduce_to_half<<<(unsigned)std::min<size_t>((MK / 4 + 255) / 256, 132 * 16), 256>>>(
                    ws, y, MK, sp);
              });
    }
    CK(cudaFree(ws));
    for (auto p : xs) CK(cudaFree(p));
    CK(cudaFree(w));
    CK(cudaFree(y));
    return;
  }
  cfg(C1{});
  cfg(C1g{});
  cfg(C2{});
  cfg(C3{});
  cfg(C5{});
  cfg(C6{});
  cfg(C8{});
  if (igemm::supports(l.N, l.H, l.W, l.C, l.K, 64)) {
    cfg(C4{});
    cfg(C7{});
  }
  CK(cudaFree(ws));
  for (auto p : xs) CK(cudaFree(p));
  CK(cudaFree(w));
  CK(cudaFree(y));
}

int main(int argc, char** argv) {
  const bool quick = h::has_flag(argc, argv, "--quick"), fp16 = h::has_flag(argc, argv, "--fp16");
  // ResNet-50/34-style 3x3 layers at batch 32, plus a small-C layer where Winograd's transforms outweigh its GEMMs;
  // --quick: small shapes, one with odd H/W (the partial last Winograd tile)
  std::vector<Layer> layers =
      quick ? std::vector<Layer>{{2, 32, 32, 14, 14, "resnet-like"}, {2, 64, 64, 7, 7, "resnet-like"}, {2, 3, 16, 15, 15, "small C, odd H/W"}}
            : std::vector<Layer>{{32, 64, 64, 56, 56, "resnet conv2_x"}, {32, 128, 128, 28, 28, "resnet conv3_x"},
                                 {32, 256, 256, 14, 14, "resnet conv4_x"}, {32, 512, 512, 7, 7, "resnet conv5_x (odd H/W)"},
                                 {32, 3, 64, 56, 56, "small C: transform-bound"}};
  bool conv = h::want(argc, argv, "conv"), stages = h::want(argc, argv, "stages");
  if (fp16) {  // the tensor-core convolution alone (the conv case's layers)
    const int wgmma = h::has_flag(argc, argv, "--wgmma") ? (h::has_flag(argc, argv, "--wg1") ? 2 : 1) : 0;
    if (wgmma && !conv_wgmma_configs) {
      h::note("conv_tc", "wgmma convolution not run: this build did not link conv_implicit_gemm_wgmma.cu (sm_90a)");
      return 0;
    }
    if (conv)  // AILAB_ONLY_LAYER=<layer label> keeps one layer (ncu), without the others' CPU references
      for (const Layer& l : layers)
        if (h::only(label(l), "AILAB_ONLY_LAYER")) run_layer_tc(l, wgmma);
    return 0;
  }
  CB(cublasCreate(&hb));
  CB(cublasSetMathMode(hb, CUBLAS_DEFAULT_MATH));  // plain FP32: no TF32 tensor-core shortcut
  for (const Layer& l : layers)
    if (conv || stages) run_layer(l, conv, stages);
  CB(cublasDestroy(hb));
  return 0;
}
