// Shared benchmark harness: checked CUDA calls, event timing (warm-up, median), input rotation,
// output poisoning, relative error against a reference, and results printed as JSON lines.
#pragma once
#include <cuda_runtime.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#define CK(call)                                                                                         \
  do {                                                                                                   \
    cudaError_t e_ = (call);                                                                             \
    if (e_ != cudaSuccess) {                                                                             \
      std::fprintf(stderr, "{\"error\":\"%s\",\"call\":\"%s\",\"at\":\"%s:%d\"}\n", cudaGetErrorString(e_), \
                   #call, __FILE__, __LINE__);                                                           \
      std::exit(1);                                                                                      \
    }                                                                                                    \
  } while (0)
// after every launch: launch-configuration errors appear here, execution errors at the next sync
#define CKL() CK(cudaGetLastError())

namespace h {

// JSON string escaping for the few strings we print (names, notes)
inline std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (c == '\n') { o += "\\n"; continue; }
    o += c;
  }
  return o;
}

inline std::string num(double v) {
  if (!std::isfinite(v)) return "null";  // JSON has no NaN/inf; the parser maps null to NaN
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

// One table row: columns carry units, so the Python side builds tables without knowing the case.
struct Row {
  std::string case_, table;
  std::vector<std::pair<std::string, std::string>> cols;
  std::vector<std::string> vals;
  Row(std::string c, std::string t) : case_(std::move(c)), table(std::move(t)) {}
  Row& s(const std::string& n, const std::string& v) { cols.push_back({n, ""}); vals.push_back("\"" + esc(v) + "\""); return *this; }
  Row& f(const std::string& n, const std::string& unit, double v) { cols.push_back({n, unit}); vals.push_back(num(v)); return *this; }
  Row& i(const std::string& n, const std::string& unit, long long v) { cols.push_back({n, unit}); vals.push_back(std::to_string(v)); return *this; }
  void emit() const {
    std::string o = "{\"case\":\"" + case_ + "\",\"table\":\"" + esc(table) + "\",\"columns\":[";
    for (size_t k = 0; k < cols.size(); ++k)
      o += (k ? "," : "") + std::string("[\"") + esc(cols[k].first) + "\",\"" + esc(cols[k].second) + "\"]";
    o += "],\"row\":[";
    for (size_t k = 0; k < vals.size(); ++k) o += (k ? "," : "") + vals[k];
    o += "]}";
    std::printf("%s\n", o.c_str());
    std::fflush(stdout);
  }
};

inline void note(const std::string& c, const std::string& text) {
  std::printf("{\"case\":\"%s\",\"note\":\"%s\"}\n", c.c_str(), esc(text).c_str());
  std::fflush(stdout);
}

// Median of event-timed runs after warm-up; `launch(i)` gets the run index so callers rotate inputs.
// Reps adapt to the kernel's length (at least min_reps, about target_ms in all) so big sizes stay affordable.
inline double time_ms(const std::function<void(int)>& launch, int warmup = 3, int min_reps = 5, int max_reps = 50,
                      double target_ms = 200.0, cudaStream_t st = 0) {
  if (std::getenv("AILAB_PROFILE")) {  // under ncu: one launch per kernel, the profiler does the timing
    launch(0);
    CKL();
    CK(cudaStreamSynchronize(st));
    return NAN;
  }
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < warmup; ++i) launch(i);
  CKL();
  CK(cudaStreamSynchronize(st));
  std::vector<float> t;
  float total = 0;
  for (int i = 0; i < max_reps && (i < min_reps || total < target_ms); ++i) {
    CK(cudaEventRecord(a, st));
    launch(i);
    CK(cudaEventRecord(b, st));
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

// Poison with 0xFF bytes: a NaN for float/half, so any element a kernel forgot to write fails the check.
// Device-to-device copy bandwidth in GB/s, counting bytes read + bytes written: the memory ceiling of a run.
inline double copy_bandwidth_gbs(size_t bytes) {
  void *a, *b;
  CK(cudaMalloc(&a, bytes));
  CK(cudaMalloc(&b, bytes));
  CK(cudaMemset(a, 1, bytes));
  double ms = time_ms([&](int) { CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); });
  CK(cudaFree(a));
  CK(cudaFree(b));
  return 2.0 * bytes / ms / 1e6;
}

inline void poison(void* p, size_t bytes, cudaStream_t st = 0) { CK(cudaMemsetAsync(p, 0xFF, bytes, st)); }

// ||out - ref|| / ||ref||; any non-finite output makes it infinite (NaN never passes).
template <class T>
inline double rel_err(const std::vector<T>& out, const std::vector<double>& ref) {
  double num2 = 0, den2 = 0;
  for (size_t k = 0; k < ref.size(); ++k) {
    double o = (double)out[k];
    if (!std::isfinite(o)) return INFINITY;
    num2 += (o - ref[k]) * (o - ref[k]);
    den2 += ref[k] * ref[k];
  }
  return std::sqrt(num2 / (den2 > 0 ? den2 : 1));
}

template <class T>
inline std::vector<T> to_host(const T* d, size_t n) {
  std::vector<T> v(n);
  CK(cudaMemcpy(v.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

// Deterministic uniform [-1, 1) values: never zeros, which hide unwritten outputs and can run faster.
inline void fill_random(std::vector<float>& v, unsigned seed) {
  unsigned long long s = 0x9E3779B97F4A7C15ull ^ seed;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = (float)((s >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0);
  }
}

// uniform [-1, 1) from a hash of (seed, index), generated on the GPU: no multi-GB host buffers to fault in
__global__ void fill_hash(float* p, size_t n, unsigned seed) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned long long z = i * 0x9E3779B97F4A7C15ull + seed * 0xBF58476D1CE4E5B9ull + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    p[i] = (float)((z >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0);
  }
}

inline float* dev_random(size_t n, unsigned seed) {
  float* d;
  CK(cudaMalloc(&d, n * sizeof(float)));
  fill_hash<<<1024, 256>>>(d, n, seed);
  CKL();
  CK(cudaDeviceSynchronize());
  return d;
}

// Relative error of y = f(x) over n elements against ref(x[k], k) in float64, streamed in chunks through
// reused host buffers (multi-GB host allocations fault in slowly on the GPU machine).
inline double map_err(const float* dx, const float* dy, size_t n, const std::function<double(float, size_t)>& ref) {
  const size_t C = std::min<size_t>(n, 1 << 24);
  std::vector<float> hx(C), hy(C);
  double num2 = 0, den2 = 0;
  for (size_t o = 0; o < n; o += C) {
    size_t m = std::min(C, n - o);
    if (dx) CK(cudaMemcpy(hx.data(), dx + o, m * sizeof(float), cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hy.data(), dy + o, m * sizeof(float), cudaMemcpyDeviceToHost));
    for (size_t k = 0; k < m; ++k) {
      double r = ref(dx ? hx[k] : 0.0f, o + k), v = hy[k];
      if (!std::isfinite(v)) return INFINITY;
      num2 += (v - r) * (v - r);
      den2 += r * r;
    }
  }
  return std::sqrt(num2 / (den2 > 0 ? den2 : 1));
}

inline bool has_flag(int argc, char** argv, const char* f) {
  for (int k = 1; k < argc; ++k)
    if (!std::strcmp(argv[k], f)) return true;
  return false;
}

// --case NAME selects one case; none runs all. --quick shrinks sizes (smoke runs, tests).
inline bool want(int argc, char** argv, const char* name) {
  for (int k = 1; k + 1 < argc; ++k)
    if (!std::strcmp(argv[k], "--case")) return !std::strcmp(argv[k + 1], name);
  return true;
}

// true only when --case NAME is given explicitly (cases that run only on request, e.g. profiling)
inline bool named(int argc, char** argv, const char* name) {
  for (int k = 1; k + 1 < argc; ++k)
    if (!std::strcmp(argv[k], "--case")) return !std::strcmp(argv[k + 1], name);
  return false;
}

// AILAB_ONLY_KERNEL=<row name> keeps only the kernel whose row is named exactly that (its reference checks still run,
// the cuBLAS/cuDNN baselines do not): one family's kernel per process, for ncu (d11.e5, ncu_profile.py's
// gemm_bottlenecks). Unset: every kernel runs. `var` names another such filter (bench_conv's AILAB_ONLY_LAYER).
inline bool only(const std::string& name, const char* var = "AILAB_ONLY_KERNEL") {
  const char* v = std::getenv(var);
  return v == nullptr || name == v;
}

// --n 4096 (repeatable) replaces a sweep's sizes: one size without the whole sweep while developing a kernel
inline std::vector<int> sizes(int argc, char** argv, std::vector<int> dflt) {
  std::vector<int> v;
  for (int k = 1; k + 1 < argc; ++k)
    if (!std::strcmp(argv[k], "--n")) v.push_back(std::atoi(argv[k + 1]));
  return v.empty() ? dflt : v;
}

// An empty kernel whose (mangled) name carries `id`: a traced program calls mark_timeline(id) before each traced
// part and mark_timeline(0) after it; the timeline analysis (workloads/kernels/timeline.py) keeps what lies between
// a marker id > 0 and the next marker. Synchronises before and after.
template <int ID>
__global__ void timeline_marker() {}
inline void mark_timeline(int id) {
  CK(cudaDeviceSynchronize());
  switch (id) {
    case 0: timeline_marker<0><<<1, 1>>>(); break;
    case 1: timeline_marker<1><<<1, 1>>>(); break;
    case 2: timeline_marker<2><<<1, 1>>>(); break;
    case 4: timeline_marker<4><<<1, 1>>>(); break;
    case 8: timeline_marker<8><<<1, 1>>>(); break;
    default: std::fprintf(stderr, "{\"error\":\"mark_timeline: id %d: allowed 0, 1, 2, 4, 8\"}\n", id); std::exit(1);
  }
  CKL();
  CK(cudaDeviceSynchronize());
}

inline int device_sms() {
  int dev, sms;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  return sms;
}

}  // namespace h
