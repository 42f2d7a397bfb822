// d65 convolutions: direct, im2col + GEMM (cuBLAS SGEMM and our own batched SGEMM) and Winograd F(2x2,3x3) (16
// batched GEMMs, cuBLAS and ours) on ResNet-style 3x3 layers, NCHW fp32, stride 1, pad 1, TF32 off. cuDNN is timed
// on the same shapes from Python (workloads/kernels/cudnn.py), which reads the shapes from this program's rows.
#include <cublas_v2.h>

#include "../include/cublas_check.cuh"
#include "../include/harness.cuh"
#include "../kernels/conv_direct.cuh"
#include "../kernels/conv_im2col.cuh"
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

int main(int argc, char** argv) {
  const bool quick = h::has_flag(argc, argv, "--quick");
  CB(cublasCreate(&hb));
  CB(cublasSetMathMode(hb, CUBLAS_DEFAULT_MATH));  // plain FP32: no TF32 tensor-core shortcut
  // ResNet-50/34-style 3x3 layers at batch 32, plus a small-C layer where Winograd's transforms outweigh its GEMMs;
  // --quick: small shapes, one with odd H/W (the partial last Winograd tile)
  std::vector<Layer> layers =
      quick ? std::vector<Layer>{{2, 32, 32, 14, 14, "resnet-like"}, {2, 64, 64, 7, 7, "resnet-like"}, {2, 3, 16, 15, 15, "small C, odd H/W"}}
            : std::vector<Layer>{{32, 64, 64, 56, 56, "resnet conv2_x"}, {32, 128, 128, 28, 28, "resnet conv3_x"},
                                 {32, 256, 256, 14, 14, "resnet conv4_x"}, {32, 512, 512, 7, 7, "resnet conv5_x (odd H/W)"},
                                 {32, 3, 64, 56, 56, "small C: transform-bound"}};
  bool conv = h::want(argc, argv, "conv"), stages = h::want(argc, argv, "stages");
  for (const Layer& l : layers)
    if (conv || stages) run_layer(l, conv, stages);
  CB(cublasDestroy(hb));
  return 0;
}
