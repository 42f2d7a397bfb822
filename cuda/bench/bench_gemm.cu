// GEMM progression: CPU baseline, CUDA-core SGEMM kernels (up to warp tiling with an autotuner over tile shapes),
// WMMA and wgmma tensor-core kernels, cuBLAS. Cases (--case NAME, none = all): sweep (every kernel at every N),
// sgemm_autotune (the autotuner's candidates, run inside the sweep), tile_sizes, wmma_vs_tiling, double_buffering,
// tiled_vs_naive, tensor_core_gemm (the same sweep restricted to the kernels one question compares, measured
// separately), gemm_shapes (non-square LLM shapes on the wgmma kernels, both B layouts), fp8_gemm (the FP8 wgmma
// GEMM vs cuBLASLt FP8, errors against a float64 reference), tiles, fp16, cpu, profile (for ncu).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <chrono>
#include <map>
#include <set>

#include "../include/cublas_check.cuh"
#include "../include/harness.cuh"
#include "../kernels/fma_peak.cuh"
#include "../kernels/hgemm_wmma_naive.cuh"
#include "../kernels/hgemm_wmma_multistage.cuh"
#include "../kernels/hgemm_wmma_pipelined.cuh"
#include "../kernels/fp8_gemm_wgmma.h"
#include "../kernels/hgemm_wgmma_cluster.h"
#include "../kernels/hgemm_wgmma_m64.h"
#include "../kernels/hgemm_wgmma_nn.h"
#include "../kernels/hgemm_wgmma_persistent.h"
#include "../kernels/hgemm_wgmma_tma.h"
#include "../kernels/sgemm_coalesced.cuh"
#include "../kernels/sgemm_cp_async.cuh"
#include "../kernels/sgemm_double_buffer.cuh"
#include "../kernels/sgemm_kmajor.cuh"
#include "../kernels/sgemm_kmajor_xtile.cuh"
#include "../kernels/sgemm_naive.cuh"
#include "../kernels/sgemm_regblock.cuh"
#include "../kernels/sgemm_smem_tiled.cuh"
#include "../kernels/sgemm_vectorized.cuh"
#include "../kernels/sgemm_warptile.cuh"

static bool quick = false, profiling = false;
// AILAB_SKIP_PERSISTENT=1 leaves the persistent wgmma kernel out (gpu_suite.sh sets it when its smoke run failed)
static bool skip_persistent() { return std::getenv("AILAB_SKIP_PERSISTENT") != nullptr; }
// the same for the issue-22 wgmma/FP8 kernels, one flag per kernel file (gpu_suite.sh smoke-runs each alone)
static bool skip(const char* family) {
  const std::string v = std::string("AILAB_SKIP_") + family;  // CLUSTER, NN, M64, M64NN, FP8
  return std::getenv(v.c_str()) != nullptr;
}
// a kernel's result must pass its check before it is timed: a wrong kernel is a row with its error and no time
static bool check_ok(double err) { return std::isfinite(err) && err < 1e-2; }
static cublasHandle_t hb;

__global__ void to_half(const float* x, half* y, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = __float2half_rn(x[i]);
}
// Bt = B^T for the K-major ("TN") kernels; setup only, never timed
__global__ void transpose_half(const half* B, half* Bt, int n) {
  __shared__ half t[32][33];
  int x = blockIdx.x * 32 + threadIdx.x, y = blockIdx.y * 32 + threadIdx.y;
  for (int j = 0; j < 32; j += 8) t[threadIdx.y + j][threadIdx.x] = B[(size_t)(y + j) * n + x];
  __syncthreads();
  x = blockIdx.y * 32 + threadIdx.x;
  y = blockIdx.x * 32 + threadIdx.y;
  for (int j = 0; j < 32; j += 8) Bt[(size_t)(y + j) * n + x] = t[threadIdx.x][threadIdx.y + j];
}
__global__ void half_to_float(const half* x, float* y, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = __half2float(x[i]);
}

// Row-major C = A*B through column-major cuBLAS: C^T = B^T A^T, so pass B first.
static void cublas_sgemm(int n, const float* A, const float* B, float* C) {
  const float one = 1, zero = 0;
  CB(cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, B, n, A, n, &zero, C, n));
}
static void cublas_hgemm_f32acc(int n, const half* A, const half* B, float* C) {
  const float one = 1, zero = 0;
  CB(cublasGemmEx(hb, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, B, CUDA_R_16F, n, A, CUDA_R_16F, n, &zero, C,
                  CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
// The same product with B supplied transposed (Bt = B^T, row-major): column-major cuBLAS sees Bt as B, so op T
// on it gives C^T = B^T A^T. This is the layout the wgmma kernels read; it is timed for their ratio.
static void cublas_hgemm_tn(int n, const half* A, const half* Bt, float* C) {
  const float one = 1, zero = 0;
  CB(cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, Bt, CUDA_R_16F, n, A, CUDA_R_16F, n, &zero, C,
                  CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
static void cublas_hgemm_f16acc(int n, const half* A, const half* B, half* C) {
  const half one = __float2half(1.f), zero = __float2half(0.f);
  CB(cublasGemmEx(hb, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, B, CUDA_R_16F, n, A, CUDA_R_16F, n, &zero, C,
                  CUDA_R_16F, n, CUBLAS_COMPUTE_16F, CUBLAS_GEMM_DEFAULT));
}

static std::vector<double> cpu_ref(const std::vector<float>& A, const std::vector<float>& B, int n) {
  std::vector<double> C((size_t)n * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) {
      double a = A[(size_t)i * n + k];
      for (int j = 0; j < n; ++j) C[(size_t)i * n + j] += a * B[(size_t)k * n + j];
    }
  return C;
}

struct Set {
  float *A, *B, *Ar, *Br;  // fp32 inputs and fp32 copies of their fp16 roundings
  half *Ah, *Bh, *Bth;  // Bth = Bh transposed, for the K-major kernels
};

static double fp32_peak_tflops() {
  int sms = h::device_sms(), nb = sms * 16, iters = quick ? 1024 : 16384;
  float* out;
  CK(cudaMalloc(&out, (size_t)nb * 256 * sizeof(float)));
  double ms = h::time_ms([&](int) { fma_peak<<<nb, 256>>>(out, iters, 0.999f); });
  CK(cudaFree(out));
  return 2.0 * 8 * iters * (double)nb * 256 / ms / 1e9;
}

static double copy_bw_gbs() { return h::copy_bandwidth_gbs(quick ? (64ull << 20) : (1ull << 30)); }

// cuBLAS HGEMM (fp16 in, fp32 acc) at the largest N: the tensor-core ceiling reached on this card. Measured once
// per size and process: every case that sweeps up to that N shares the one row.
static double tensor_ceiling(int n) {
  static std::map<int, double> done;
  if (done.count(n)) return done[n];
  size_t nn = (size_t)n * n;
  half *A, *B;
  float *C, *x = h::dev_random(nn, 99);
  CK(cudaMalloc(&A, nn * 2)); CK(cudaMalloc(&B, nn * 2)); CK(cudaMalloc(&C, nn * 4));
  to_half<<<(unsigned)((nn + 255) / 256), 256>>>(x, A, nn);
  to_half<<<(unsigned)((nn + 255) / 256), 256>>>(x, B, nn);
  CKL();
  double ms = h::time_ms([&](int) { cublas_hgemm_f32acc(n, A, B, C); });
  for (void* p : {(void*)A, (void*)B, (void*)C, (void*)x}) CK(cudaFree(p));
  double t = 2.0 * n * n * (double)n / ms / 1e9;
  h::Row("ceiling", "tensor-core ceiling (cuBLAS HGEMM fp16 in / fp32 acc, largest N)").i("N", "", n)
      .f("throughput", "TFLOP/s", t).emit();
  return done[n] = t;
}

// Every SGEMM autotuner candidate: the register-prefetch warp-tile kernel's configurations, then the cp.async
// pipelines (transposed A, sgemm_cp_async.cuh; K-major A, sgemm_kmajor.cuh; K-major A with the next tile's
// fragments loaded before the current tile's last FFMAs, sgemm_kmajor_xtile.cuh). One row-major interface.
static std::vector<const SgemmWarptileConfig*> sgemm_candidates() {
  std::vector<const SgemmWarptileConfig*> v;
  for (const auto& c : kSgemmWarptileConfigs) v.push_back(&c);
  for (const auto& c : kSgemmCpAsyncConfigs) v.push_back(&c);
  for (const auto& c : kSgemmKmajorConfigs) v.push_back(&c);
  for (const auto& c : kSgemmKmajorXtileConfigs) v.push_back(&c);
  return v;
}

// Pick the fastest correct warp-tiling configuration for N x N x N (each candidate checked, then timed briefly);
// every candidate's time is a row (case sgemm_autotune for the full sweep, else the calling case `cs`, so each case
// shows the choice its own run made). Under ncu (profiling) the first candidate is taken (see AILAB_SGEMM_ONLY).
static const SgemmWarptileConfig* autotune_sgemm(const char* cs, int n, const float* A, const float* B, float* C,
                                                  const std::vector<double>& ref) {
  const SgemmWarptileConfig* best = nullptr;
  double best_ms = INFINITY;
  std::vector<std::pair<const SgemmWarptileConfig*, std::pair<double, double>>> tried;
  // AILAB_SGEMM_ONLY=<part of a name> keeps the candidates whose name holds it (to profile one under ncu)
  // (a name equal to it is taken before one that merely holds it: a name can be the prefix of another's)
  const char* only = std::getenv("AILAB_SGEMM_ONLY");
  if (profiling && only)
    for (const SgemmWarptileConfig* cp : sgemm_candidates())
      if (sgemm_warptile_fits(*cp, n, n, n) && !std::strcmp(cp->name, only)) return cp;
  for (const SgemmWarptileConfig* cp : sgemm_candidates()) {
    const SgemmWarptileConfig& c = *cp;
    if (!sgemm_warptile_fits(c, n, n, n)) continue;
    if (only && !std::strstr(c.name, only)) continue;
    if (profiling) return &c;
    h::poison(C, (size_t)n * n * sizeof(float));
    c.launch(n, n, n, A, B, C, 0);
    CKL();
    double err = h::rel_err(h::to_host(C, (size_t)n * n), ref);
    double ms = h::time_ms([&](int) { c.launch(n, n, n, A, B, C, 0); }, 1, 3, 10, 60.0);
    tried.push_back({&c, {ms, err}});
    if (err < 1e-4 && ms < best_ms) best_ms = ms, best = &c;
  }
  for (auto& [c, r] : tried)
    h::Row(std::string(cs) == "sweep" ? "sgemm_autotune" : cs, "SGEMM warp tiling: autotuner candidates per size").s("configuration", c->name)
        .i("N", "", n).f("time", "ms", r.first).f("throughput", "TFLOP/s", 2.0 * n * n * (double)n / r.first / 1e9)
        .f("rel. error", "", r.second).s("chosen", c == best ? "yes" : "").emit();
  return best;
}

// `only` (empty: every kernel) restricts the kernels a case times; the cuBLAS baselines always run, so each case's
// ratios come from its own run. Rows carry the case name `cs`.
static void sweep(const char* cs, double peak32, double bw, std::vector<int> ns, const std::set<std::string>& only = {}) {
  double tc_ceiling = tensor_ceiling(quick ? 512 : 8192);  // one ceiling for every case of the run
  auto wanted = [&](const std::string& name) { return only.empty() || only.count(name) > 0; };
  for (int n : ns) {
    size_t nn = (size_t)n * n;
    int S = (int)std::min<size_t>(8, std::max<size_t>(1, (200ull << 20) / (nn * 12)));
    std::vector<Set> sets(S);
    for (int k = 0; k < S; ++k) {
      Set& s = sets[k];
      s.A = h::dev_random(nn, 10 * k + 1);
      s.B = h::dev_random(nn, 10 * k + 2);
      CK(cudaMalloc(&s.Ah, nn * sizeof(half)));
      CK(cudaMalloc(&s.Bh, nn * sizeof(half)));
      CK(cudaMalloc(&s.Bth, nn * sizeof(half)));
      CK(cudaMalloc(&s.Ar, nn * sizeof(float)));
      CK(cudaMalloc(&s.Br, nn * sizeof(float)));
      unsigned g = (unsigned)((nn + 255) / 256);
      to_half<<<g, 256>>>(s.A, s.Ah, nn);
      to_half<<<g, 256>>>(s.B, s.Bh, nn);
      half_to_float<<<g, 256>>>(s.Ah, s.Ar, nn);
      half_to_float<<<g, 256>>>(s.Bh, s.Br, nn);
      transpose_half<<<dim3(n / 32, n / 32), dim3(32, 8)>>>(s.Bh, s.Bth, n);
      CKL();
    }
    float *C, *ref32, *ref16;
    CK(cudaMalloc(&C, nn * sizeof(float)));
    CK(cudaMalloc(&ref32, nn * sizeof(float)));
    CK(cudaMalloc(&ref16, nn * sizeof(float)));
    // references for set 0: CPU double at small n, else cuBLAS SGEMM (itself checked against the CPU at small n)
    std::vector<double> r32, r16;
    const char* refname;
    if (n <= 512) {
      r32 = cpu_ref(h::to_host(sets[0].A, nn), h::to_host(sets[0].B, nn), n);
      r16 = cpu_ref(h::to_host(sets[0].Ar, nn), h::to_host(sets[0].Br, nn), n);
      refname = "CPU float64";
    } else {
      cublas_sgemm(n, sets[0].A, sets[0].B, ref32);
      cublas_sgemm(n, sets[0].Ar, sets[0].Br, ref16);
      auto a = h::to_host(ref32, nn), b = h::to_host(ref16, nn);
      r32.assign(a.begin(), a.end());
      r16.assign(b.begin(), b.end());
      refname = "cuBLAS SGEMM";
    }
    std::map<std::string, double> tf;
    const char* HGEMM_NN = "cuBLAS HGEMM (fp16 in, fp32 acc)";
    const char* HGEMM_TN = "cuBLAS HGEMM, B transposed (TN)";
    // `base`: the cuBLAS row with the same memory layout, so each ratio compares the same problem
    auto run = [&](const char* name, bool tensor, const std::function<void(const Set&)>& go,
                   const char* base_name = nullptr) {
      if (!wanted(name) && std::string(name).rfind("cuBLAS", 0) != 0) return;
      if (!h::only(name)) return;  // AILAB_ONLY_KERNEL: one kernel, no baseline (ncu)
      h::poison(C, nn * sizeof(float));
      go(sets[0]);
      CKL();
      double err = h::rel_err(h::to_host(C, nn), tensor ? r16 : r32);
      double ms = check_ok(err) ? h::time_ms([&](int i) { go(sets[i % S]); }, 2, 5, 30, 300.0) : NAN;
      double tflops = 2.0 * n * n * (double)n / ms / 1e9;
      tf[name] = tflops;
      double peak = tensor ? tc_ceiling : peak32;
      double bytes = (tensor ? 2.0 * 2 : 2.0 * 4) * nn + 4.0 * nn;  // inputs once + output once
      double floor_ms = std::max(peak > 0 ? 2.0 * n * n * (double)n / peak / 1e9 : 0.0, bytes / bw / 1e6);
      const char* bname = base_name ? base_name : tensor ? HGEMM_NN : "cuBLAS SGEMM";
      double base = tf.count(bname) ? tf[bname] : NAN;
      h::Row(cs, "GEMM kernels vs cuBLAS").s("kernel", name).s("unit", tensor ? "tensor core" : "CUDA core")
          .s("B layout", base_name == HGEMM_TN ? "transposed (TN)" : "row-major (NN)").i("N", "", n).f("time", "ms", ms).f("throughput", "TFLOP/s", tflops)
          .f("of cuBLAS", "%", base > 0 ? 100 * tflops / base : NAN)
          .f("of roofline", "%", peak > 0 ? 100 * floor_ms / ms : NAN).f("rel. error", "", err)
          .s("reference", refname).emit();
    };
    // baselines first so every kernel's ratio uses the same run's cuBLAS
    run("cuBLAS SGEMM", false, [&](const Set& s) { cublas_sgemm(n, s.A, s.B, C); });
    run(HGEMM_NN, true, [&](const Set& s) { cublas_hgemm_f32acc(n, s.Ah, s.Bh, C); });
    run(HGEMM_TN, true, [&](const Set& s) { cublas_hgemm_tn(n, s.Ah, s.Bth, C); }, HGEMM_TN);
    dim3 b16(16, 16), b32x32(32, 32), g16(n / 16, n / 16), g32(n / 32, n / 32);
    if (n <= 4096) {
      run("naive (threads along rows)", false, [&](const Set& s) { sgemm_naive<<<dim3(n / 32, n / 32), b32x32>>>(n, n, n, s.A, s.B, C); });
      run("coalesced (threads along columns)", false, [&](const Set& s) { sgemm_coalesced<<<g32, b32x32>>>(n, n, n, s.A, s.B, C); });
    }
    run("shared tiling TILE=16", false, [&](const Set& s) { sgemm_smem_tiled<16><<<g16, b16>>>(n, n, n, s.A, s.B, C); });
    run("shared tiling TILE=32", false, [&](const Set& s) { sgemm_smem_tiled<32><<<g32, b32x32>>>(n, n, n, s.A, s.B, C); });
    run("shared tiling TILE=64", false, [&](const Set& s) { sgemm_smem_tiled<64><<<dim3(n / 64, n / 64), dim3(64, 16)>>>(n, n, n, s.A, s.B, C); });
    dim3 g128(n / 128, n / 128);
    run("register blocking 8x8", false, [&](const Set& s) { sgemm_regblock<><<<g128, 256>>>(n, n, n, s.A, s.B, C); });
    run("vectorized float4", false, [&](const Set& s) { sgemm_vectorized<<<g128, 256>>>(n, n, n, s.A, s.B, C); });
    run("double buffering", false, [&](const Set& s) { sgemm_double_buffer<<<g128, 256>>>(n, n, n, s.A, s.B, C); });
    if (wanted("warp tiling (autotuned)") && h::only("warp tiling (autotuned)"))
      if (const SgemmWarptileConfig* wt = autotune_sgemm(cs, n, sets[0].A, sets[0].B, C, r32))
        run("warp tiling (autotuned)", false, [&](const Set& s) { wt->launch(n, n, n, s.A, s.B, C, 0); });
    run("WMMA naive (warp per 16x16)", true, [&](const Set& s) {
      hgemm_wmma_naive<<<(unsigned)(nn / 256 / 8), 256>>>(n, n, n, s.Ah, s.Bh, C);
    });
    run("WMMA + cp.async pipeline", true, [&](const Set& s) { hgemm_wmma_pipelined<<<g128, 256>>>(n, n, n, s.Ah, s.Bh, C); });
    run("WMMA 4-stage, 128x128 tile", true, [&](const Set& s) { launch_hgemm_wmma_multistage<128, 128, 64, 32, 4>(n, s.Ah, s.Bh, C); });
    run("WMMA 3-stage, 128x256 tile, 64x64 warps", true, [&](const Set& s) {
      launch_hgemm_wmma_multistage<128, 256, 64, 64, 3>(n, s.Ah, s.Bh, C);
    });
    if (hgemm_wgmma_shape_ok(128, n, n, n))
      run("wgmma + TMA, 128x128 tile, 6 stages", true, [&](const Set& s) { launch_hgemm_wgmma(128, n, n, n, s.Ah, s.Bth, C); },
          HGEMM_TN);
    if (hgemm_wgmma_shape_ok(256, n, n, n))
      run("wgmma + TMA, 128x256 tile, 4 stages", true, [&](const Set& s) { launch_hgemm_wgmma(256, n, n, n, s.Ah, s.Bth, C); },
          HGEMM_TN);
    if (!skip_persistent() && hgemm_wgmma_persistent_shape_ok(128, n, n, n))
      run("wgmma persistent, 128x128 tile, setmaxnreg", true,
          [&](const Set& s) { launch_hgemm_wgmma_persistent(128, n, n, n, s.Ah, s.Bth, C); }, HGEMM_TN);
    if (!skip_persistent() && hgemm_wgmma_persistent_shape_ok(256, n, n, n))
      run("wgmma persistent, 128x256 tile, setmaxnreg", true,
          [&](const Set& s) { launch_hgemm_wgmma_persistent(256, n, n, n, s.Ah, s.Bth, C); }, HGEMM_TN);
    // issue 22: B row-major read by wgmma's transpose bit (ratio against cuBLAS row-major NN), and 2x1 clusters
    // with the B tile multicast, with direct and TMA-store epilogues (ratio against cuBLAS TN)
    if (!skip("NN") && hgemm_wgmma_nn_shape_ok(n, n, n))
      run("wgmma persistent NN (B row-major), 128x256 tile", true,
          [&](const Set& s) { launch_hgemm_wgmma_nn(n, n, n, s.Ah, s.Bh, C); });
    if (!skip("CLUSTER") && hgemm_wgmma_cluster_shape_ok(n, n, n)) {
      run("wgmma cluster 2x1, B multicast, 128x256 tile", true,
          [&](const Set& s) { launch_hgemm_wgmma_cluster(false, n, n, n, s.Ah, s.Bth, C); }, HGEMM_TN);
      run("wgmma cluster 2x1, B multicast, TMA-store epilogue", true,
          [&](const Set& s) { launch_hgemm_wgmma_cluster(true, n, n, n, s.Ah, s.Bth, C); }, HGEMM_TN);
    }
    for (auto& s : sets) {
      CK(cudaFree(s.A)); CK(cudaFree(s.B)); CK(cudaFree(s.Ah)); CK(cudaFree(s.Bh)); CK(cudaFree(s.Bth)); CK(cudaFree(s.Ar)); CK(cudaFree(s.Br));
    }
    CK(cudaFree(C)); CK(cudaFree(ref32)); CK(cudaFree(ref16));
  }
}

static void cpu_baseline() {
  for (int n : quick ? std::vector<int>{128, 256} : std::vector<int>{256, 512, 1024}) {
    std::vector<float> A((size_t)n * n), B((size_t)n * n), C((size_t)n * n);
    h::fill_random(A, 1);
    h::fill_random(B, 2);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {  // i-k-j order: streams rows of B and C (the cache-friendly CPU loop)
      float* c = &C[(size_t)i * n];
      for (int j = 0; j < n; ++j) c[j] = 0;
      for (int k = 0; k < n; ++k) {
        float a = A[(size_t)i * n + k];
        const float* b = &B[(size_t)k * n];
        for (int j = 0; j < n; ++j) c[j] += a * b[j];
      }
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    double err = n <= 512 ? h::rel_err(C, cpu_ref(A, B, n)) : NAN;
    h::Row("cpu", "CPU single-thread SGEMM (i-k-j loop, -O3)").i("N", "", n).f("time", "ms", ms)
        .f("throughput", "TFLOP/s", 2.0 * n * n * (double)n / ms / 1e9).f("rel. error", "", err).emit();
  }
}

// d11.e4: where the error of fp16 inputs comes from: rounding the inputs vs accumulating in fp16.
static void fp16_error() {
  int n = quick ? 256 : 1024;
  size_t nn = (size_t)n * n;
  float *A = h::dev_random(nn, 5), *B = h::dev_random(nn, 6), *C, *Ar, *Br;
  half *Ah, *Bh, *Ch;
  CK(cudaMalloc(&C, nn * 4)); CK(cudaMalloc(&Ar, nn * 4)); CK(cudaMalloc(&Br, nn * 4));
  CK(cudaMalloc(&Ah, nn * 2)); CK(cudaMalloc(&Bh, nn * 2)); CK(cudaMalloc(&Ch, nn * 2));
  unsigned g = (unsigned)((nn + 255) / 256);
  to_half<<<g, 256>>>(A, Ah, nn); to_half<<<g, 256>>>(B, Bh, nn);
  half_to_float<<<g, 256>>>(Ah, Ar, nn); half_to_float<<<g, 256>>>(Bh, Br, nn);
  CKL();
  auto exact = cpu_ref(h::to_host(A, nn), h::to_host(B, nn), n);
  auto rounded = cpu_ref(h::to_host(Ar, nn), h::to_host(Br, nn), n);
  auto row = [&](const char* name, const std::vector<float>& out, double ms) {
    h::Row("fp16", "FP16 inputs: error against float64 references").s("variant", name).i("N", "", n)
        .f("time", "ms", ms).f("rel. error vs exact fp32 inputs", "", h::rel_err(out, exact))
        .f("rel. error vs fp16-rounded inputs", "", h::rel_err(out, rounded)).emit();
  };
  auto timed = [&](const std::function<void(int)>& go, float* out) {
    h::poison(out, nn * 4);
    go(0);
    CKL();
    auto v = h::to_host(out, nn);
    return std::make_pair(v, h::time_ms(go));
  };
  auto r1 = timed([&](int) { cublas_sgemm(n, A, B, C); }, C);
  row("cuBLAS SGEMM (fp32 in, fp32 acc)", r1.first, r1.second);
  auto r2 = timed([&](int) { hgemm_wmma_pipelined<<<dim3(n / 128, n / 128), 256>>>(n, n, n, Ah, Bh, C); }, C);
  row("WMMA kernel (fp16 in, fp32 acc)", r2.first, r2.second);
  auto r3 = timed([&](int) { cublas_hgemm_f32acc(n, Ah, Bh, C); }, C);
  row("cuBLAS (fp16 in, fp32 acc)", r3.first, r3.second);
  h::poison(Ch, nn * 2);
  cublas_hgemm_f16acc(n, Ah, Bh, Ch);
  CKL();
  double ms = h::time_ms([&](int) { cublas_hgemm_f16acc(n, Ah, Bh, Ch); });
  half_to_float<<<g, 256>>>(Ch, C, nn);
  CKL();
  row("cuBLAS HGEMM (fp16 in, fp16 acc)", h::to_host(C, nn), ms);
  for (void* p : {(void*)A, (void*)B, (void*)C, (void*)Ar, (void*)Br, (void*)Ah, (void*)Bh, (void*)Ch}) CK(cudaFree(p));
}

// d11.e2: what each TILE costs in resources, from the runtime (the compiler's report is read by the Python side).
static void tile_occupancy() {
  int dev, maxt;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&maxt, cudaDevAttrMaxThreadsPerMultiProcessor, dev));
  auto one = [&](const char* name, const void* f, int threads, size_t dyn = 0) {
    cudaFuncAttributes a;
    CK(cudaFuncGetAttributes(&a, f));
    int per_sm;
    if (dyn) CK(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)dyn));
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, f, threads, dyn));
    h::Row("tiles", "tiled GEMM resources and occupancy").s("kernel", name).i("threads per block", "", threads)
        .i("registers per thread", "", a.numRegs).i("shared memory per block", "B", (long long)(a.sharedSizeBytes + dyn))
        .i("blocks per SM", "", per_sm).f("theoretical occupancy", "%", 100.0 * per_sm * threads / maxt).emit();
  };
  one("shared tiling TILE=16", (const void*)sgemm_smem_tiled<16>, 256);
  one("shared tiling TILE=32", (const void*)sgemm_smem_tiled<32>, 1024);
  one("shared tiling TILE=64", (const void*)sgemm_smem_tiled<64>, 1024);
  one("register blocking 8x8", (const void*)sgemm_regblock<>, 256);
  one("vectorized float4", (const void*)sgemm_vectorized, 256);
  one("double buffering", (const void*)sgemm_double_buffer, 256);
  one("WMMA + cp.async pipeline", (const void*)hgemm_wmma_pipelined, 256);
  one("WMMA 4-stage, 128x128 tile", (const void*)hgemm_wmma_multistage<128, 128, 64, 32, 4>, 256,
      WmmaCfg<128, 128, 64, 32, 4>::smem_bytes);
  one("WMMA 3-stage, 128x256 tile, 64x64 warps", (const void*)hgemm_wmma_multistage<128, 256, 64, 64, 3>, 256,
      WmmaCfg<128, 256, 64, 64, 3>::smem_bytes);
  for (const SgemmWarptileConfig* c : sgemm_candidates())
    one((std::string("warp tiling ") + c->name).c_str(), c->kernel(), c->threads, c->smem);
  for (int bn : {128, 256}) {
    int regs, stages;
    size_t smem;
    hgemm_wgmma_persistent_info(bn, &regs, &smem, &stages);
    h::Row("tiles", "tiled GEMM resources and occupancy")
        .s("kernel", "wgmma persistent, 128x" + std::to_string(bn) + " tile, " + std::to_string(stages) + " stages")
        .i("threads per block", "", 384).i("registers per thread", "", regs).i("shared memory per block", "B", (long long)smem)
        .i("blocks per SM", "", 1).f("theoretical occupancy", "%", 100.0 * 384 / maxt).emit();
  }
  for (int bn : {128, 256}) {
    WgmmaInfo w = hgemm_wgmma_info(bn);
    std::string name = "wgmma + TMA, 128x" + std::to_string(bn) + " tile, " + std::to_string(w.stages) + " stages";
    h::Row("tiles", "tiled GEMM resources and occupancy").s("kernel", name).i("threads per block", "", w.threads)
        .i("registers per thread", "", w.registers).i("shared memory per block", "B", (long long)w.smem_bytes)
        .i("blocks per SM", "", w.blocks_per_sm).f("theoretical occupancy", "%", 100.0 * w.blocks_per_sm * w.threads / maxt)
        .emit();
  }
  // issue 22's wgmma/FP8 kernels (registers at launch, before setmaxnreg; one block per SM unless queried)
  auto wg_row = [&](const std::string& name, int threads, int regs, size_t smem, int per_sm) {
    h::Row("tiles", "tiled GEMM resources and occupancy").s("kernel", name).i("threads per block", "", threads)
        .i("registers per thread", "", regs).i("shared memory per block", "B", (long long)smem)
        .i("blocks per SM", "", per_sm).f("theoretical occupancy", "%", 100.0 * per_sm * threads / maxt).emit();
  };
  int regs, stages, threads, per_sm, clusters;
  size_t smem;
  if (!skip("M64"))
    for (int bn : {64, 128}) {
      hgemm_wgmma_m64_info(bn, &regs, &smem, &stages, &threads, &per_sm);
      wg_row("wgmma 64-row tile (decode), 64x" + std::to_string(bn) + ", " + std::to_string(stages) + " stages", threads,
             regs, smem, per_sm);
    }
  if (!skip("NN")) {
    hgemm_wgmma_nn_info(&regs, &smem, &stages);
    wg_row("wgmma persistent NN (B row-major), 128x256 tile, " + std::to_string(stages) + " stages", 384, regs, smem, 1);
  }
  if (!skip("CLUSTER"))
    for (bool st : {false, true}) {
      hgemm_wgmma_cluster_info(st, &regs, &smem, &stages, &clusters);
      wg_row(std::string("wgmma cluster 2x1, B multicast, ") + (st ? "TMA-store epilogue" : "128x256 tile") + ", " +
                 std::to_string(stages) + " stages (" + std::to_string(clusters) + " clusters resident)",
             384, regs, smem, 1);
    }
  if (!skip("FP8"))
    for (bool promote : {false, true}) {
      fp8_gemm_wgmma_info(promote, &regs, &smem, &stages);
      wg_row(std::string("wgmma FP8 persistent, ") + (promote ? "128x128 tile, promoted per K=128, " : "128x256 tile, ") +
                 std::to_string(stages) + " stages",
             384, regs, smem, 1);
    }
}

// in (rows x cols, row-major) -> out (cols x rows, row-major); setup only, never timed
__global__ void transpose_half_rect(const half* in, half* out, int rows, int cols) {
  __shared__ half t[32][33];
  int x = blockIdx.x * 32 + threadIdx.x, y = blockIdx.y * 32 + threadIdx.y;
  for (int j = 0; j < 32; j += 8)
    if (y + j < rows && x < cols) t[threadIdx.y + j][threadIdx.x] = in[(size_t)(y + j) * cols + x];
  __syncthreads();
  x = blockIdx.y * 32 + threadIdx.x;
  y = blockIdx.x * 32 + threadIdx.y;
  for (int j = 0; j < 32; j += 8)
    if (y + j < cols && x < rows) out[(size_t)(y + j) * rows + x] = t[threadIdx.x][threadIdx.y + j];
}

// Non-square shapes of LLM layers (M tokens x N outputs x K inputs): A M x K row-major fp16, C fp32, B either
// transposed ("TN": Bt N x K row-major, the layout wgmma reads K-major) or row-major ("NN": B K x N). Each wgmma
// kernel against cuBLAS on the same layout, timed in the same run, after a check against cuBLAS SGEMM on the
// fp16-rounded inputs (a kernel failing it is a row with its error and no time).
static void gemm_shapes() {
  struct Shape { int M, N, K; const char* what; };
  std::vector<Shape> shapes = quick ? std::vector<Shape>{{256, 512, 256, "small"}, {64, 512, 256, "decode-like"}}
                                    : std::vector<Shape>{{4096, 14336, 4096, "MLP up-projection, 4096 tokens"},
                                                         {64, 14336, 4096, "MLP up-projection, decode batch 64"},
                                                         {8192, 8192, 8192, "square 8192"}};
  for (const Shape& sh : shapes) {
    const int M = sh.M, N = sh.N, K = sh.K;
    size_t na = (size_t)M * K, nb = (size_t)N * K, nc = (size_t)M * N;
    float *Af = h::dev_random(na, 41), *Bf = h::dev_random(nb, 42), *Ar, *Br, *C, *ref;
    half *Ah, *Bh, *Bn;  // Bh: Bt (N x K), Bn: B (K x N)
    CK(cudaMalloc(&Ah, na * 2)); CK(cudaMalloc(&Bh, nb * 2)); CK(cudaMalloc(&Bn, nb * 2));
    CK(cudaMalloc(&Ar, na * 4)); CK(cudaMalloc(&Br, nb * 4));
    CK(cudaMalloc(&C, nc * 4)); CK(cudaMalloc(&ref, nc * 4));
    to_half<<<(unsigned)((na + 255) / 256), 256>>>(Af, Ah, na);
    to_half<<<(unsigned)((nb + 255) / 256), 256>>>(Bf, Bh, nb);
    half_to_float<<<(unsigned)((na + 255) / 256), 256>>>(Ah, Ar, na);
    half_to_float<<<(unsigned)((nb + 255) / 256), 256>>>(Bh, Br, nb);
    transpose_half_rect<<<dim3((K + 31) / 32, (N + 31) / 32), dim3(32, 8)>>>(Bh, Bn, N, K);
    CKL();
    const float one = 1, zero = 0;
    CB(cublasSgemm(hb, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, Br, K, Ar, K, &zero, ref, N));
    auto hr = h::to_host(ref, nc);
    std::vector<double> r(hr.begin(), hr.end());
    std::map<std::string, double> base;  // cuBLAS throughput per B layout, from this run
    auto run = [&](const std::string& name, const std::string& layout, const std::function<void()>& go) {
      if (!h::only(name)) return;  // AILAB_ONLY_KERNEL (ncu)
      h::poison(C, nc * 4);
      go();
      CKL();
      double err = h::rel_err(h::to_host(C, nc), r);
      double ms = check_ok(err) ? h::time_ms([&](int) { go(); }, 2, 5, 30, 300.0) : NAN;
      double tf = 2.0 * M * (double)N * K / ms / 1e9;
      if (name.rfind("cuBLAS", 0) == 0) base[layout] = tf;
      double b = base.count(layout) ? base[layout] : NAN;
      h::Row("gemm_shapes", "wgmma kernels on LLM shapes vs cuBLAS (same B layout)").s("kernel", name).s("shape", sh.what)
          .s("B layout", layout).i("M", "", M).i("N", "", N).i("K", "", K).f("time", "ms", ms).f("throughput", "TFLOP/s", tf)
          .f("of cuBLAS", "%", 100 * tf / b).f("rel. error", "", err).s("reference", "cuBLAS SGEMM").emit();
    };
    const std::string TN = "transposed (TN)", NN = "row-major (NN)";
    run("cuBLAS HGEMM, B transposed (TN)", TN, [&]() {
      CB(cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, Bh, CUDA_R_16F, K, Ah, CUDA_R_16F, K, &zero, C,
                      CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    });
    if (hgemm_wgmma_shape_ok(256, M, N, K))
      run("wgmma + TMA, 128x256 tile, 4 stages", TN, [&]() { launch_hgemm_wgmma(256, M, N, K, Ah, Bh, C); });
    for (int bn : {128, 256})
      if (!skip_persistent() && hgemm_wgmma_persistent_shape_ok(bn, M, N, K))
        run("wgmma persistent, 128x" + std::to_string(bn) + " tile, setmaxnreg", TN,
            [&]() { launch_hgemm_wgmma_persistent(bn, M, N, K, Ah, Bh, C); });
    if (!skip("CLUSTER") && M >= 256 && hgemm_wgmma_cluster_shape_ok(M, N, K)) {  // a pair of 128-row tiles
      run("wgmma cluster 2x1, B multicast, 128x256 tile", TN,
          [&]() { launch_hgemm_wgmma_cluster(false, M, N, K, Ah, Bh, C); });
      run("wgmma cluster 2x1, B multicast, TMA-store epilogue", TN,
          [&]() { launch_hgemm_wgmma_cluster(true, M, N, K, Ah, Bh, C); });
    }
    if (!skip("M64") && M <= 256)  // the 64-row tile is for decode-like M only
      for (int bn : {64, 128})
        if (hgemm_wgmma_m64_shape_ok(bn, M, N, K))
          run("wgmma 64-row tile (decode), 64x" + std::to_string(bn), TN,
              [&]() { launch_hgemm_wgmma_m64(bn, M, N, K, Ah, Bh, C); });
    run("cuBLAS HGEMM (fp16 in, fp32 acc)", NN, [&]() {
      CB(cublasGemmEx(hb, CUBLAS_OP_N, CUBLAS_OP_N, N, M, K, &one, Bn, CUDA_R_16F, N, Ah, CUDA_R_16F, K, &zero, C,
                      CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    });
    if (!skip("NN") && hgemm_wgmma_nn_shape_ok(M, N, K))
      run("wgmma persistent NN (B row-major), 128x256 tile", NN, [&]() { launch_hgemm_wgmma_nn(M, N, K, Ah, Bn, C); });
    if (!skip("M64NN") && M <= 256)  // the 64-row decode tile with B row-major (its own smoke family)
      for (int bn : {64, 128})
        if (hgemm_wgmma_m64_shape_ok(bn, M, N, K))
          run("wgmma 64-row tile (decode) NN, 64x" + std::to_string(bn), NN,
              [&]() { launch_hgemm_wgmma_m64(bn, M, N, K, Ah, Bn, C, 0, true); });
    for (void* p : {(void*)Af, (void*)Bf, (void*)Ar, (void*)Br, (void*)C, (void*)ref, (void*)Ah, (void*)Bh, (void*)Bn})
      CK(cudaFree(p));
  }
}

// ---- FP8 (issue 22): e4m3 inputs with per-tensor scales, fp32 accumulation, bf16 output
__global__ void to_e4m3(const float* x, __nv_fp8_e4m3* q, float inv_scale, size_t n) {
  size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) q[i] = __nv_fp8_e4m3(x[i] * inv_scale);  // round to nearest, saturating at +-448
}
// float64 reference from the dequantised inputs: R = sa * sb * A Bt^T (products of e4m3 values are exact in
// float64, and K <= 8192 sums lose nothing that matters next to a bf16 output). 64 x 64 outputs per block.
__global__ void ref_fp8_f64(int M, int N, int K, const __nv_fp8_e4m3* A, const __nv_fp8_e4m3* Bt, const float* sa,
                            const float* sb, double* R) {
  __shared__ double As[64][17], Bs[64][17];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16, m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
  double acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += 16) {
    for (int e = threadIdx.x; e < 64 * 16; e += 256) {
      const int rr = e / 16, kk = e % 16;
      As[rr][kk] = m0 + rr < M ? (double)(float)A[(size_t)(m0 + rr) * K + k0 + kk] : 0.0;
      Bs[rr][kk] = n0 + rr < N ? (double)(float)Bt[(size_t)(n0 + rr) * K + k0 + kk] : 0.0;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 16; ++kk)
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += As[ty + 16 * i][kk] * Bs[tx + 16 * j][kk];
    __syncthreads();
  }
  const double s = (double)sa[0] * (double)sb[0];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const int r = m0 + ty + 16 * i, c = n0 + tx + 16 * j;
      if (r < M && c < N) R[(size_t)r * N + c] = acc[i][j] * s;
    }
}
// error sums of a bf16 output against the float64 reference: [0] sum d^2, [1] sum r^2, [2] sum |d|, [3] sum |r|;
// mx[0] max |d|, mx[1] max |r| (as the bits of non-negative doubles, which order like the values); bad: non-finite
__global__ void err_fp8(const __nv_bfloat16* out, const double* ref, size_t n, double* sums, unsigned long long* mx,
                        unsigned* bad) {
  double s[4] = {0, 0, 0, 0}, md = 0, mr = 0;
  unsigned nb = 0;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const double o = (double)__bfloat162float(out[i]), r = ref[i];
    if (!isfinite(o)) { ++nb; continue; }
    const double d = fabs(o - r);
    s[0] += d * d; s[1] += r * r; s[2] += d; s[3] += fabs(r);
    md = fmax(md, d); mr = fmax(mr, fabs(r));
  }
  for (int k = 0; k < 4; ++k) atomicAdd(&sums[k], s[k]);
  atomicMax(&mx[0], (unsigned long long)__double_as_longlong(md));
  atomicMax(&mx[1], (unsigned long long)__double_as_longlong(mr));
  if (nb) atomicAdd(bad, nb);
}

struct Fp8Err { double rel, max_rel, mean_rel; };
static Fp8Err fp8_errors(const __nv_bfloat16* out, const double* ref, size_t n) {
  double* sums;
  unsigned long long* mx;
  unsigned* bad;
  CK(cudaMalloc(&sums, 4 * sizeof(double))); CK(cudaMalloc(&mx, 2 * 8)); CK(cudaMalloc(&bad, 4));
  CK(cudaMemset(sums, 0, 4 * sizeof(double))); CK(cudaMemset(mx, 0, 16)); CK(cudaMemset(bad, 0, 4));
  err_fp8<<<1024, 256>>>(out, ref, n, sums, mx, bad);
  CKL();
  double hs[4];
  unsigned long long hm[2];
  unsigned hb = 0;
  CK(cudaMemcpy(hs, sums, sizeof hs, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hm, mx, sizeof hm, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(&hb, bad, 4, cudaMemcpyDeviceToHost));
  for (void* p : {(void*)sums, (void*)mx, (void*)bad}) CK(cudaFree(p));
  if (hb) return {INFINITY, INFINITY, INFINITY};
  double md, mr;
  std::memcpy(&md, &hm[0], 8);
  std::memcpy(&mr, &hm[1], 8);
  return {std::sqrt(hs[0] / (hs[1] > 0 ? hs[1] : 1)), mr > 0 ? md / mr : NAN, hs[3] > 0 ? hs[2] / hs[3] : NAN};
}

// cuBLASLt FP8 GEMM in the TN layout FP8 requires (what torch._scaled_mm calls): column-major D^T (N x M) =
// op_T(Bt as K x N) * (A as K x M), scales through A/B_SCALE_POINTER, bf16 output. fast = FAST_ACCUM.
struct LtFp8 {
  cublasLtHandle_t lt = nullptr;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulHeuristicResult_t heur[8]{};  // candidates in cuBLASLt's order; the first one that runs is kept
  int n_heur = 0;
  void* ws = nullptr;
  size_t ws_bytes = 32u << 20;
  std::string error;  // why it is not usable
  bool ready = false;
};
#define LTC(call)                                                                       \
  do {                                                                                  \
    cublasStatus_t s_ = (call);                                                         \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                  \
      L.error = std::string(#call).substr(0, 60) + ": status " + std::to_string((int)s_); \
      return L;                                                                         \
    }                                                                                   \
  } while (0)
static LtFp8 lt_fp8_setup(int M, int N, int K, bool fast, const float* sa, const float* sb) {
  LtFp8 L;
  LTC(cublasLtCreate(&L.lt));
  LTC(cublasLtMatmulDescCreate(&L.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  LTC(cublasLtMatmulDescSetAttribute(L.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  LTC(cublasLtMatmulDescSetAttribute(L.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  const void* pa = sb;  // Lt's A is our Bt, Lt's B is our A
  const void* pb = sa;
  LTC(cublasLtMatmulDescSetAttribute(L.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &pa, sizeof pa));
  LTC(cublasLtMatmulDescSetAttribute(L.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &pb, sizeof pb));
  int8_t fa = fast ? 1 : 0;
  LTC(cublasLtMatmulDescSetAttribute(L.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fa, sizeof fa));
  LTC(cublasLtMatrixLayoutCreate(&L.a, CUDA_R_8F_E4M3, K, N, K));
  LTC(cublasLtMatrixLayoutCreate(&L.b, CUDA_R_8F_E4M3, K, M, K));
  LTC(cublasLtMatrixLayoutCreate(&L.c, CUDA_R_16BF, N, M, N));
  cublasLtMatmulPreference_t pref;
  LTC(cublasLtMatmulPreferenceCreate(&pref));
  LTC(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &L.ws_bytes,
                                           sizeof L.ws_bytes));
  int found = 0;
  LTC(cublasLtMatmulAlgoGetHeuristic(L.lt, L.op, L.a, L.b, L.c, L.c, pref, 8, L.heur, &found));
  cublasLtMatmulPreferenceDestroy(pref);
  L.n_heur = found;
  if (found < 1) {
    L.error = "cublasLtMatmulAlgoGetHeuristic: no algorithm";
    return L;
  }
  CK(cudaMalloc(&L.ws, L.ws_bytes));
  L.ready = true;
  return L;
}
// one call, its status kept (a refused call is a note, never an exit that would take the other cases with it)
static cublasStatus_t lt_fp8_run(LtFp8& L, const __nv_fp8_e4m3* A, const __nv_fp8_e4m3* Bt, __nv_bfloat16* D) {
  const float one = 1, zero = 0;
  return cublasLtMatmul(L.lt, L.op, &one, Bt, L.a, A, L.b, &zero, D, L.c, D, L.c, &L.heur[0].algo, L.ws, L.ws_bytes, 0);
}
static void lt_fp8_free(LtFp8& L) {
  if (L.ws) CK(cudaFree(L.ws));
  if (L.a) cublasLtMatrixLayoutDestroy(L.a);
  if (L.b) cublasLtMatrixLayoutDestroy(L.b);
  if (L.c) cublasLtMatrixLayoutDestroy(L.c);
  if (L.op) cublasLtMatmulDescDestroy(L.op);
  if (L.lt) cublasLtDestroy(L.lt);
}

// fp8_gemm: the FP8 wgmma GEMMs against cuBLASLt FP8 with default accumulation (torch._scaled_mm's default) and
// with FAST_ACCUM, N x N x N, TN. The kernel's two accumulations pair with them: "fast accum" (every MMA into the
// same fp32 registers) with FAST_ACCUM, "promoted" (each K = 128 partial sum added into fp32 registers) with the
// default.
// Errors of every row against the float64 reference of the dequantised inputs: "rel. error" = ||D - R|| / ||R||,
// "max |err| / max |ref|" and "mean |err| / mean |ref|" over all elements. The check before timing allows a
// relative error below 5e-2 (the inputs are exact in the reference: what remains is the FP8 MMA's accumulation
// and the bf16 output's rounding; a wrong kernel is off by order 1). AILAB_SKIP_FP8 leaves the whole case out.
static void fp8_gemm() {
  if (skip("FP8")) {
    h::note("fp8_gemm", "left out: AILAB_SKIP_FP8 is set (its smoke run failed)");
    return;
  }
  for (int n : quick ? std::vector<int>{256, 512} : std::vector<int>{4096, 8192}) {
    const int M = n, N = n, K = n;
    const size_t na = (size_t)M * K, nb = (size_t)N * K, nc = (size_t)M * N;
    float *Af = h::dev_random(na, 61), *Bf = h::dev_random(nb, 62), *sa, *sb;
    __nv_fp8_e4m3 *A, *Bt;
    __nv_bfloat16* D;
    double* R;
    CK(cudaMalloc(&A, na)); CK(cudaMalloc(&Bt, nb)); CK(cudaMalloc(&D, nc * 2)); CK(cudaMalloc(&R, nc * 8));
    // each scale its own allocation: cuBLASLt refused (status 15, NOT_SUPPORTED) a B scale at a 4-byte offset
    CK(cudaMalloc(&sa, sizeof(float))); CK(cudaMalloc(&sb, sizeof(float)));
    const float scale = 1.0f / 448.0f;  // inputs in [-1, 1) quantised onto e4m3's full range [-448, 448]
    CK(cudaMemcpy(sa, &scale, sizeof scale, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(sb, &scale, sizeof scale, cudaMemcpyHostToDevice));
    to_e4m3<<<(unsigned)((na + 255) / 256), 256>>>(Af, A, 448.0f, na);
    to_e4m3<<<(unsigned)((nb + 255) / 256), 256>>>(Bf, Bt, 448.0f, nb);
    ref_fp8_f64<<<dim3((N + 63) / 64, (M + 63) / 64), 256>>>(M, N, K, A, Bt, sa, sb, R);
    CKL();
    CK(cudaDeviceSynchronize());
    std::map<std::string, double> base;
    auto run = [&](const std::string& name, const std::string& accum, const std::function<void()>& go) {
      if (!h::only(name)) return;  // AILAB_ONLY_KERNEL (ncu)
      h::poison(D, nc * 2);
      go();
      CKL();
      CK(cudaDeviceSynchronize());
      Fp8Err e = fp8_errors(D, R, nc);
      double ms = std::isfinite(e.rel) && e.rel < 5e-2 ? h::time_ms([&](int) { go(); }, 2, 5, 30, 300.0) : NAN;
      double tf = 2.0 * M * (double)N * K / ms / 1e9;
      if (name.rfind("cuBLASLt", 0) == 0) base[accum] = tf;
      auto pct = [&](const char* a) { return base.count(a) ? 100 * tf / base[a] : NAN; };
      h::Row("fp8_gemm", "FP8 GEMM (e4m3 in, fp32 acc, per-tensor scales, bf16 out, TN) vs cuBLASLt FP8")
          .s("kernel", name).s("accumulation", accum).i("N", "", n).f("time", "ms", ms).f("throughput", "TFLOP/s", tf)
          .f("of cuBLASLt fast-accum", "%", pct("fast accum")).f("of cuBLASLt default", "%", pct("default"))
          .f("rel. error", "", e.rel).f("max |err| / max |ref|", "", e.max_rel).f("mean |err| / mean |ref|", "", e.mean_rel)
          .s("reference", "float64 of the dequantised e4m3 inputs").emit();
    };
    for (bool fast : {false, true}) {
      const char* accum = fast ? "fast accum" : "default";
      const char* lt_name = fast ? "cuBLASLt FP8, FAST_ACCUM" : "cuBLASLt FP8 (as torch._scaled_mm)";
      if (!h::only(lt_name)) continue;  // AILAB_ONLY_KERNEL names another kernel: no cuBLASLt calls at all
      LtFp8 L = lt_fp8_setup(M, N, K, fast, sa, sb);
      if (L.ready) {  // trial calls down cuBLASLt's candidate list: the first that runs is timed, none is a note
        cublasStatus_t st = CUBLAS_STATUS_NOT_SUPPORTED;
        for (int k = 0; k < L.n_heur; ++k) {
          std::swap(L.heur[0], L.heur[k]);
          if ((st = lt_fp8_run(L, A, Bt, D)) == CUBLAS_STATUS_SUCCESS) break;
          std::swap(L.heur[0], L.heur[k]);
        }
        if (st != CUBLAS_STATUS_SUCCESS)
          L.error = "cublasLtMatmul: status " + std::to_string((int)st) + " for all " + std::to_string(L.n_heur) +
                    " candidate algorithms",
          L.ready = false;
      }
      if (!L.ready)
        h::note("fp8_gemm", "cuBLASLt FP8 (" + std::string(accum) + ") at N=" + std::to_string(n) + ": " + L.error);
      else
        run(lt_name, accum, [&]() { CB(lt_fp8_run(L, A, Bt, D)); });
      lt_fp8_free(L);
    }
    if (fp8_gemm_wgmma_shape_ok(M, N, K)) {
      run("wgmma FP8 persistent, 128x256 tile, setmaxnreg", "fast accum",
          [&]() { launch_fp8_gemm_wgmma(false, M, N, K, A, Bt, sa, sb, D); });
      run("wgmma FP8 persistent, 128x128 tile, promoted per K=128", "promoted",
          [&]() { launch_fp8_gemm_wgmma(true, M, N, K, A, Bt, sa, sb, D); });
    }
    for (void* p : {(void*)Af, (void*)Bf, (void*)A, (void*)Bt, (void*)D, (void*)R, (void*)sa, (void*)sb}) CK(cudaFree(p));
  }
}

int main(int argc, char** argv) {
  quick = h::has_flag(argc, argv, "--quick");
  CB(cublasCreate(&hb));
  CB(cublasSetMathMode(hb, CUBLAS_DEFAULT_MATH));  // plain FP32 SGEMM: no TF32 tensor-core shortcut
  double peak = fp32_peak_tflops(), bw = copy_bw_gbs();
  h::Row("ceiling", "FP32 FMA ceiling (fma_peak kernel)").f("throughput", "TFLOP/s", peak).emit();
  h::Row("ceiling", "device-to-device copy (cudaMemcpy, read+write bytes)").f("bandwidth", "GB/s", bw).emit();
  if (h::want(argc, argv, "tiles")) tile_occupancy();
  if (h::want(argc, argv, "fp16")) fp16_error();
  if (h::want(argc, argv, "cpu")) cpu_baseline();
  std::vector<int> ns = h::sizes(argc, argv, quick ? std::vector<int>{256, 512} : std::vector<int>{256, 512, 1024, 2048, 4096, 8192});
  // the autotuner's rows come from the sweep's run: --case sgemm_autotune runs the sweep with only that kernel
  if (h::want(argc, argv, "sweep")) sweep("sweep", peak, bw, ns);
  else if (h::named(argc, argv, "sgemm_autotune")) sweep("sweep", peak, bw, ns, {"warp tiling (autotuned)"});
  auto sizes = [&](std::vector<int> full) { return quick ? std::vector<int>{256, 512} : full; };
  if (h::want(argc, argv, "wmma_vs_tiling"))
    sweep("wmma_vs_tiling", peak, bw, sizes({256, 512, 1024, 2048}),
          {"shared tiling TILE=32", "WMMA naive (warp per 16x16)", "WMMA + cp.async pipeline"});
  if (h::want(argc, argv, "tile_sizes"))
    sweep("tile_sizes", peak, bw, sizes({512, 1024, 2048, 4096}),
          {"shared tiling TILE=16", "shared tiling TILE=32", "shared tiling TILE=64"});
  if (h::want(argc, argv, "double_buffering"))
    sweep("double_buffering", peak, bw, sizes({1024, 2048, 4096, 8192}), {"vectorized float4", "double buffering"});
  if (h::want(argc, argv, "tiled_vs_naive"))
    sweep("tiled_vs_naive", peak, bw, sizes({256, 512, 1024, 2048, 4096}),
          {"naive (threads along rows)", "coalesced (threads along columns)", "shared tiling TILE=32"});
  if (h::want(argc, argv, "tensor_core_gemm"))
    sweep("tensor_core_gemm", peak, bw, sizes({1024, 2048, 4096, 8192}),
          {"double buffering", "warp tiling (autotuned)", "WMMA + cp.async pipeline", "WMMA 4-stage, 128x128 tile",
           "wgmma + TMA, 128x256 tile, 4 stages", "wgmma persistent, 128x256 tile, setmaxnreg",
           "wgmma persistent NN (B row-major), 128x256 tile", "wgmma cluster 2x1, B multicast, 128x256 tile",
           "wgmma cluster 2x1, B multicast, TMA-store epilogue"});
  if (h::want(argc, argv, "gemm_shapes")) gemm_shapes();
  if (h::want(argc, argv, "fp8_gemm")) fp8_gemm();
  // --case profile: every kernel once at one size (--n replaces it), for ncu (run with AILAB_PROFILE=1)
  profiling = h::named(argc, argv, "profile");
  if (profiling) sweep("profile", peak, bw, h::sizes(argc, argv, {quick ? 256 : 2048}));
  CB(cublasDestroy(hb));
  return 0;
}
