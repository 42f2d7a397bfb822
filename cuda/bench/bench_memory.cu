// Memory-bound cases, named by idea (workloads/kernels bindings map experiment ids to them): each prints JSON-line
// table rows (see include/harness.cuh).
#include <vector>

#include "../include/harness.cuh"
#include "../kernels/aos_soa.cuh"
#include "../kernels/branch_divergence.cuh"
#include "../kernels/constant_broadcast.cuh"
#include "../kernels/matrix_add_layouts.cuh"
#include "../kernels/matrix_add_shared.cuh"
#include "../kernels/smem_bank_stride.cuh"
#include "../kernels/smem_transpose_pad.cuh"
#include "../kernels/strided_read.cuh"
#include "../kernels/unroll_factor.cuh"
#include "../kernels/vector_add_gridstride.cuh"
#include "../kernels/vector_add_oneshot.cuh"
#include "../kernels/vector_add_vec4.cuh"

namespace precise { void launch_math_heavy(const float*, float*, size_t, cudaStream_t); }
namespace fast { void launch_math_heavy(const float*, float*, size_t, cudaStream_t); }
namespace rr24 { void launch_reg_pressure(const float*, float*, size_t, cudaStream_t); }
namespace rr32 { void launch_reg_pressure(const float*, float*, size_t, cudaStream_t); }
namespace rr64 { void launch_reg_pressure(const float*, float*, size_t, cudaStream_t); }
namespace rrdef { void launch_reg_pressure(const float*, float*, size_t, cudaStream_t); }

static bool quick = false;
static unsigned blocks(size_t n, int bs) { return (unsigned)((n + bs - 1) / bs); }

// How many input sets to rotate so that one pass over all of them is about 4x the L2 cache (50 MB on H100).
static int nsets(size_t set_bytes) {
  size_t want = 200ull << 20;
  return (int)std::min<size_t>(16, std::max<size_t>(1, (want + set_bytes - 1) / set_bytes));
}

static double copy_bw_gbs() { return h::copy_bandwidth_gbs(quick ? (64ull << 20) : (1ull << 30)); }

// References are computed once per input and shared by the variants that read it. Above kFullRef elements only
// every stride-th element is checked, stride odd so the samples fall on every lane and block position.
static const size_t kFullRef = 1 << 22;
static size_t ref_stride(size_t n) { return n <= kFullRef ? 1 : (n / kFullRef) | 1; }
static std::string ref_name(size_t n) {
  size_t s = ref_stride(n);
  return s == 1 ? "CPU float64, every element" : "CPU float64, every " + std::to_string(s) + "th element";
}

__global__ void gather_stride(const float* in, float* out, size_t m, size_t stride) {
  for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < m; j += (size_t)gridDim.x * blockDim.x)
    out[j] = in[j * stride];
}

// the sampled elements of a device array (all of them when the stride is 1), on the host
static std::vector<float> sampled(const float* d, size_t n) {
  size_t s = ref_stride(n), m = (n + s - 1) / s;
  if (s == 1) return h::to_host(d, n);
  float* g;
  CK(cudaMalloc(&g, m * sizeof(float)));
  gather_stride<<<1024, 256>>>(d, g, m, s);
  CKL();
  auto v = h::to_host(g, m);
  CK(cudaFree(g));
  return v;
}

struct VA {
  std::vector<float*> a, b;
  float* c;
  size_t n;
  VA(size_t n_) : n(n_) {
    int s = nsets(3 * n * sizeof(float));
    for (int k = 0; k < s; ++k) { a.push_back(h::dev_random(n, 2 * k + 1)); b.push_back(h::dev_random(n, 2 * k + 2)); }
    CK(cudaMalloc(&c, n * sizeof(float)));
  }
  ~VA() { for (auto p : a) cudaFree(p); for (auto p : b) cudaFree(p); cudaFree(c); }
  std::vector<double> ref;  // a[0] + b[0] in double at the sampled elements, computed on the first check
  // c == a[0] + b[0] exactly (one float add); returns the relative error against double sums
  double check() {
    if (ref.empty()) {
      auto ha = sampled(a[0], n), hb = sampled(b[0], n);
      ref.resize(ha.size());
      for (size_t j = 0; j < ha.size(); ++j) ref[j] = (double)ha[j] + hb[j];
    }
    return h::rel_err(sampled(c, n), ref);
  }
};

static void vector_add_cases(int argc, char** argv, double copy_gbs) {
  int sms = h::device_sms();
  if (h::want(argc, argv, "vector_add_variants")) {
    std::vector<size_t> ns;
    for (int p = 16; p <= (quick ? 22 : 28); p += 2) ns.push_back(1ull << p);
    for (size_t n : ns) {
      VA v(n);
      auto run = [&](const char* name, const std::function<void(int)>& go) {
        h::poison(v.c, n * sizeof(float));
        go(0);
        CKL();
        double err = v.check();
        double ms = h::time_ms(go);
        double gbs = 12.0 * n / ms / 1e6;
        h::Row("vector_add_variants", "vector_add: one-shot grid vs grid-stride")
            .s("kernel", name).i("N", "elements", (long long)n).f("time", "ms", ms).f("bandwidth", "GB/s", gbs)
            .f("of D2D copy", "%", 100 * gbs / copy_gbs).f("roofline floor", "ms", 12.0 * n / copy_gbs / 1e6)
            .f("rel. error", "", err).s("reference", ref_name(n)).emit();
      };
      int S = (int)v.a.size();
      run("one-shot grid", [&](int i) { vector_add_oneshot<<<blocks(n, 256), 256>>>(v.a[i % S], v.b[i % S], v.c, n); });
      run("grid-stride (8 blocks/SM)", [&](int i) {
        vector_add_gridstride<<<sms * 8, 256>>>(v.a[i % S], v.b[i % S], v.c, n);
      });
      run("grid-stride float4", [&](int i) {
        vector_add_vec4<<<sms * 8, 256>>>((const float4*)v.a[i % S], (const float4*)v.b[i % S], (float4*)v.c, n / 4);
      });
    }
  }
  if (h::want(argc, argv, "block_size_occupancy")) {
    size_t n = quick ? (1 << 22) : (1 << 26);
    VA v(n);
    int dev, maxt;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&maxt, cudaDevAttrMaxThreadsPerMultiProcessor, dev));
    for (int bs = 32; bs <= 1024; bs *= 2) {
      int S = (int)v.a.size();
      auto go = [&](int i) { vector_add_oneshot<<<blocks(n, bs), bs>>>(v.a[i % S], v.b[i % S], v.c, n); };
      h::poison(v.c, n * sizeof(float));
      go(0);
      CKL();
      double err = v.check();
      double ms = h::time_ms(go);
      int per_sm;
      CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, vector_add_oneshot, bs, 0));
      h::Row("block_size_occupancy", "vector_add: blockDim vs theoretical occupancy")
          .i("blockDim", "threads", bs).f("time", "ms", ms).f("bandwidth", "GB/s", 12.0 * n / ms / 1e6)
          .i("blocks per SM", "", per_sm).f("theoretical occupancy", "%", 100.0 * per_sm * bs / maxt)
          .f("rel. error", "", err).s("reference", ref_name(n)).emit();
    }
  }
}

static void matrix_cases(int argc, char** argv, double copy_gbs) {
  int R = quick ? 1024 : 8192, C = R;
  size_t n = (size_t)R * C;
  VA v(n);
  int S = (int)v.a.size();
  auto run = [&](const char* cs, const char* table, const char* name, const std::function<void(int)>& go) {
    h::poison(v.c, n * sizeof(float));
    go(0);
    CKL();
    double err = v.check();
    double ms = h::time_ms(go);
    double gbs = 12.0 * n / ms / 1e6;
    h::Row(cs, table).s("kernel", name).i("matrix", "rows=cols", R).f("time", "ms", ms).f("bandwidth", "GB/s", gbs)
        .f("of D2D copy", "%", 100 * gbs / copy_gbs).f("rel. error", "", err).s("reference", ref_name(n)).emit();
  };
  dim3 b2(32, 8), g2(C / 32, R / 8);
  if (h::want(argc, argv, "thread_block_shape")) {
    const char* t = "matrix_add: 1D vs 2D thread blocks";
    run("thread_block_shape", t, "1D flat index", [&](int i) { matrix_add_flat1d<<<blocks(n, 256), 256>>>(v.a[i % S], v.b[i % S], v.c, R, C); });
    run("thread_block_shape", t, "1D thread per row", [&](int i) {
      matrix_add_row_per_thread<<<blocks(R, 128), 128>>>(v.a[i % S], v.b[i % S], v.c, R, C);
    });
    run("thread_block_shape", t, "2D blocks 32x8", [&](int i) { matrix_add_2d<<<g2, b2>>>(v.a[i % S], v.b[i % S], v.c, R, C); });
  }
  if (h::want(argc, argv, "shared_staging")) {
    const char* t = "matrix_add: global vs shared memory";
    run("shared_staging", t, "global (2D 32x8)", [&](int i) { matrix_add_2d<<<g2, b2>>>(v.a[i % S], v.b[i % S], v.c, R, C); });
    run("shared_staging", t, "staged through shared", [&](int i) {
      matrix_add_shared<<<g2, b2>>>(v.a[i % S], v.b[i % S], v.c, R, C);
    });
  }
}

static void shared_cases(int argc, char** argv) {
  if (!h::want(argc, argv, "bank_conflicts")) return;
  int sms = h::device_sms(), iters = 4096, nb = sms * 8;
  float* out;
  CK(cudaMalloc(&out, (size_t)nb * 256 * sizeof(float)));
  for (int stride : {1, 2, 4, 8, 16, 17, 32}) {
    auto go = [&](int) { smem_bank_stride<<<nb, 256>>>(out, stride, iters); };
    h::poison(out, (size_t)nb * 256 * sizeof(float));
    go(0);
    CKL();
    // every lane sums iters consecutive words of s[k]=k starting at (lane*stride)%1024: check thread 0..31 of block 0
    auto ho = h::to_host(out, 32);
    std::vector<double> ref(32);
    for (int l = 0; l < 32; ++l) {
      double s = 0;
      int idx = (l * stride) & 1023;
      float acc = 0;
      for (int it = 0; it < iters; ++it) { acc += (float)idx; idx = (idx + 1) & 1023; }
      s = acc;
      ref[l] = s;
    }
    double ms = h::time_ms(go);
    int g = 1;
    for (int d = 1; d <= 32; ++d)
      if (stride % d == 0 && 32 % d == 0) g = d;
    h::Row("bank_conflicts", "shared-memory bank conflicts: word stride")
        .i("stride", "words", stride).i("conflict degree gcd(stride,32)", "way", g).f("time", "ms", ms)
        .f("shared loads", "G/s", (double)nb * 256 * iters / ms / 1e6).f("rel. error", "", h::rel_err(ho, ref)).emit();
  }
  CK(cudaFree(out));
  int n = quick ? 1024 : 8192;
  float* in = h::dev_random((size_t)n * n, 7);
  float* t;
  CK(cudaMalloc(&t, (size_t)n * n * sizeof(float)));
  auto hin = h::to_host(in, (size_t)n * n);
  std::vector<double> ref((size_t)n * n);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) ref[(size_t)c * n + r] = hin[(size_t)r * n + c];
  auto tr = [&](const char* name, const std::function<void(int)>& go) {
    h::poison(t, (size_t)n * n * sizeof(float));
    go(0);
    CKL();
    double err = h::rel_err(h::to_host(t, (size_t)n * n), ref);
    double ms = h::time_ms(go);
    h::Row("bank_conflicts", "transpose through a shared tile: padding").s("kernel", name).i("matrix", "rows=cols", n)
        .f("time", "ms", ms).f("bandwidth", "GB/s", 8.0 * n * n / ms / 1e6).f("rel. error", "", err).emit();
  };
  dim3 g(n / 32, n / 32), b(32, 8);
  tr("tile[32][32] (32-way conflicts)", [&](int) { smem_transpose_pad<0><<<g, b>>>(in, t, n); });
  tr("tile[32][33] (padded)", [&](int) { smem_transpose_pad<1><<<g, b>>>(in, t, n); });
  CK(cudaFree(in));
  CK(cudaFree(t));
}

// The float64 reference of an elementwise case at its sampled elements: the input is map_case's set 0 (seed 100),
// so one reference serves every variant of the case.
static std::vector<double> map_ref(size_t n, const std::function<double(double)>& ref_fn) {
  float* x0 = h::dev_random(n, 100);
  auto hx = sampled(x0, n);
  CK(cudaFree(x0));
  std::vector<double> r(hx.size());
  for (size_t j = 0; j < hx.size(); ++j) r[j] = ref_fn(hx[j]);
  return r;
}

// Generic elementwise case: y = f(x) over n elements; the check compares with the case's CPU double reference.
static void map_case(const char* cs, const char* table, const char* name, size_t n, const std::function<void(const float*, float*)>& launch,
                     const std::vector<double>& ref, double bytes_per_elem) {
  int S = nsets(2 * n * sizeof(float));
  std::vector<float*> xs;
  for (int k = 0; k < S; ++k) xs.push_back(h::dev_random(n, 100 + k));
  float* y;
  CK(cudaMalloc(&y, n * sizeof(float)));
  h::poison(y, n * sizeof(float));
  launch(xs[0], y);
  CKL();
  double err = h::rel_err(sampled(y, n), ref);
  double ms = h::time_ms([&](int i) { launch(xs[i % S], y); });
  h::Row(cs, table).s("kernel", name).i("N", "elements", (long long)n).f("time", "ms", ms)
      .f("bandwidth", "GB/s", bytes_per_elem * n / ms / 1e6).f("rel. error", "", err).s("reference", ref_name(n)).emit();
  for (auto p : xs) CK(cudaFree(p));
  CK(cudaFree(y));
}

static double poly_ref(double v, const float* c) {
  double acc = 0;
  for (int k = 0; k < 16; ++k) acc = acc * v + c[k];
  return acc;
}
static double path_ref(double v, double m, double a) {
  float f = (float)v;
  for (int k = 0; k < 32; ++k) f = f * (float)m + (float)a;
  return f;
}

static void compute_cases(int argc, char** argv) {
  size_t n = quick ? (1 << 20) : (1 << 26);
  if (h::want(argc, argv, "fast_math")) {
    auto ref = [](double v) {
      double acc = 0;
      for (int k = 1; k <= 8; ++k) acc += std::sin(v * k) * std::exp(-0.1 * k * v * v) + std::log(1.0 + k * v * v) / k;
      return acc;
    };
    const char* t = "--use_fast_math: error and speed (8 sin/exp/log per element)";
    auto r = map_ref(n, ref);
    map_case("fast_math", t, "precise (default flags)", n, [&](const float* x, float* y) { precise::launch_math_heavy(x, y, n, 0); }, r, 8);
    map_case("fast_math", t, "--use_fast_math", n, [&](const float* x, float* y) { fast::launch_math_heavy(x, y, n, 0); }, r, 8);
  }
  if (h::want(argc, argv, "constant_memory")) {
    float hc[16];
    for (int k = 0; k < 16; ++k) hc[k] = 1.0f / (k + 1);
    CK(cudaMemcpyToSymbol(c_coef, hc, sizeof hc));
    float* gc;
    CK(cudaMalloc(&gc, sizeof hc));
    CK(cudaMemcpy(gc, hc, sizeof hc, cudaMemcpyHostToDevice));
    auto ref = map_ref(n, [&](double v) { return poly_ref(v, hc); });
    const char* t = "broadcast parameters: __constant__ vs global";
    map_case("constant_memory", t, "__constant__ coefficients", n, [&](const float* x, float* y) { poly_constant<<<blocks(n, 256), 256>>>(x, y, n); }, ref, 8);
    map_case("constant_memory", t, "global coefficients", n, [&](const float* x, float* y) { poly_global<<<blocks(n, 256), 256>>>(x, y, gc, n); }, ref, 8);
    CK(cudaFree(gc));
  }
  if (h::want(argc, argv, "branch_divergence")) {
    // expected: element i takes path_a where its lane parity (divergent/select) or warp parity (uniform) is odd
    const char* t = "branch vs select (32 dependent FMAs per path)";
    auto a = [](double v) { return path_ref(v, 0.999, 0.5); };
    auto b = [](double v) { return path_ref(v, 1.001, -0.25); };
    auto run3 = [&](const char* name, int mode) {
      float* x = h::dev_random(n, 55);
      float* y;
      CK(cudaMalloc(&y, n * sizeof(float)));
      auto go = [&](int) {
        if (mode == 0) branch_divergent<<<blocks(n, 256), 256>>>(x, y, n);
        if (mode == 1) branch_uniform<<<blocks(n, 256), 256>>>(x, y, n);
        if (mode == 2) branch_select<<<blocks(n, 256), 256>>>(x, y, n);
      };
      h::poison(y, n * sizeof(float));
      go(0);
      CKL();
      size_t m = std::min<size_t>(n, 1 << 20);
      auto hx = h::to_host(x, m), hy = h::to_host(y, m);
      std::vector<double> ref(m);
      for (size_t k = 0; k < m; ++k) {
        int tid = (int)(k % 256);
        bool pa = mode == 1 ? ((tid >> 5) & 1) : (tid & 1);
        ref[k] = pa ? a(hx[k]) : b(hx[k]);
      }
      double err = h::rel_err(std::vector<float>(hy.begin(), hy.end()), ref);
      double ms = h::time_ms(go);
      h::Row("branch_divergence", t).s("kernel", name).i("N", "elements", (long long)n).f("time", "ms", ms)
          .f("rel. error", "", err).emit();
      CK(cudaFree(x));
      CK(cudaFree(y));
    };
    run3("branch on lane parity (divergent)", 0);
    run3("branch on warp parity (uniform)", 1);
    run3("select: both paths, ternary", 2);
  }
  if (h::want(argc, argv, "register_cap")) {
    auto ref = map_ref(n, [](double v) {
      float r[32];
      for (int k = 0; k < 32; ++k) r[k] = (float)v * (k + 1);
      for (int it = 0; it < 16; ++it)
        for (int k = 0; k < 32; ++k) r[k] = r[k] * 0.5f + r[(k + 7) & 31] * 0.25f;
      double s = 0;
      for (int k = 0; k < 32; ++k) s += r[k];
      return s;
    });
    const char* t = "--maxrregcount: register cap vs time";
    map_case("register_cap", t, "-maxrregcount=24", n, [&](const float* x, float* y) { rr24::launch_reg_pressure(x, y, n, 0); }, ref, 8);
    map_case("register_cap", t, "-maxrregcount=32", n, [&](const float* x, float* y) { rr32::launch_reg_pressure(x, y, n, 0); }, ref, 8);
    map_case("register_cap", t, "-maxrregcount=64", n, [&](const float* x, float* y) { rr64::launch_reg_pressure(x, y, n, 0); }, ref, 8);
    map_case("register_cap", t, "no cap", n, [&](const float* x, float* y) { rrdef::launch_reg_pressure(x, y, n, 0); }, ref, 8);
  }
}

template <int U>
static void unroll_one(size_t n, const std::vector<float*>& xs, float* part, int nthreads, double ref) {
  int S = (int)xs.size(), sms = h::device_sms();
  auto go = [&](int i) { sumsq_unroll<U><<<sms * 8, 256>>>(xs[i % S], part, n); };
  h::poison(part, nthreads * sizeof(float));
  go(0);
  CKL();
  auto hp = h::to_host(part, nthreads);
  double s = 0;
  for (float v : hp) s += v;
  double ms = h::time_ms(go);
  h::Row("unroll", "unroll factor (independent accumulators) vs time").i("unroll", "", U).f("time", "ms", ms)
      .f("bandwidth", "GB/s", 4.0 * n / ms / 1e6).f("rel. error", "", std::fabs(s - ref) / ref).emit();
}

static void layout_cases(int argc, char** argv, double copy_gbs) {
  size_t n = quick ? (1 << 20) : (1 << 26);
  if (h::want(argc, argv, "unroll")) {
    int S = nsets(n * sizeof(float)), sms = h::device_sms(), nt = sms * 8 * 256;
    std::vector<float*> xs;
    for (int k = 0; k < S; ++k) xs.push_back(h::dev_random(n, 300 + k));
    auto hx = h::to_host(xs[0], n);
    double ref = 0;
    for (float v : hx) ref += (double)v * v;
    float* part;
    CK(cudaMalloc(&part, nt * sizeof(float)));
    unroll_one<1>(n, xs, part, nt, ref);
    unroll_one<2>(n, xs, part, nt, ref);
    unroll_one<4>(n, xs, part, nt, ref);
    unroll_one<8>(n, xs, part, nt, ref);
    unroll_one<16>(n, xs, part, nt, ref);
    for (auto p : xs) CK(cudaFree(p));
    CK(cudaFree(part));
  }
  if (h::want(argc, argv, "aos_soa")) {
    size_t m = n / 2;
    std::vector<float> hp(m * 8);
    h::fill_random(hp, 9);
    Particle* p;
    CK(cudaMalloc(&p, m * sizeof(Particle)));
    float* soa;
    CK(cudaMalloc(&soa, m * 6 * sizeof(float)));
    std::vector<float> hs(m * 6);
    for (size_t k = 0; k < m; ++k)
      for (int f = 0; f < 6; ++f) hs[f * m + k] = hp[k * 8 + f];
    const float dt = 1e-3f;
    // correctness after one step from the same start, then timing (repeated steps keep the data finite: dt small)
    auto emit = [&](const char* name, double ms, double err, double bytes) {
      h::Row("aos_soa", "AoS vs SoA particle update (x += v*dt)").s("layout", name).i("particles", "", (long long)m)
          .f("time", "ms", ms).f("useful bandwidth", "GB/s", bytes / ms / 1e6).f("of D2D copy", "%", 100 * bytes / ms / 1e6 / copy_gbs)
          .f("rel. error", "", err).emit();
    };
    std::vector<double> ref(m * 3);
    for (size_t k = 0; k < m; ++k)
      for (int f = 0; f < 3; ++f) ref[f * m + k] = hp[k * 8 + f] + hp[k * 8 + 3 + f] * dt;
    double useful = 36.0 * m;  // 6 floats read + 3 written per particle
    CK(cudaMemcpy(p, hp.data(), m * sizeof(Particle), cudaMemcpyHostToDevice));
    update_aos<<<blocks(m, 256), 256>>>(p, m, dt);
    CKL();
    auto ha = h::to_host((float*)p, m * 8);
    std::vector<float> got(m * 3);
    for (size_t k = 0; k < m; ++k)
      for (int f = 0; f < 3; ++f) got[f * m + k] = ha[k * 8 + f];
    double ea = h::rel_err(got, ref);
    emit("AoS (32-byte struct)", h::time_ms([&](int) { update_aos<<<blocks(m, 256), 256>>>(p, m, dt); }), ea, useful);
    CK(cudaMemcpy(soa, hs.data(), m * 6 * sizeof(float), cudaMemcpyHostToDevice));
    auto go = [&](int) { update_soa<<<blocks(m, 256), 256>>>(soa, soa + m, soa + 2 * m, soa + 3 * m, soa + 4 * m, soa + 5 * m, m, dt); };
    go(0);
    CKL();
    auto hsoa = h::to_host(soa, m * 3);
    emit("SoA (6 float arrays)", h::time_ms(go), h::rel_err(hsoa, ref), useful);
    CK(cudaFree(p));
    CK(cudaFree(soa));
  }
  if (h::want(argc, argv, "coalescing")) {
    size_t m = quick ? (1 << 20) : (1 << 26);
    float* in = h::dev_random(m, 77);
    float* out;
    CK(cudaMalloc(&out, m * sizeof(float)));
    auto hin = h::to_host(in, m);
    for (int s : {1, 2, 4, 8, 16, 32}) {
      auto go = [&](int) { strided_read<<<blocks(m, 256), 256>>>(in, out, m, s); };
      h::poison(out, m * sizeof(float));
      go(0);
      CKL();
      double err = h::map_err(nullptr, out, m, [&](float, size_t i) { return (double)hin[(i * s) % m]; });
      double ms = h::time_ms(go);
      h::Row("coalescing", "coalesced vs strided reads").i("read stride", "floats", s).f("time", "ms", ms)
          .f("useful bandwidth", "GB/s", 8.0 * m / ms / 1e6).f("rel. error", "", err).emit();
    }
    CK(cudaFree(in));
    CK(cudaFree(out));
  }
}

int main(int argc, char** argv) {
  quick = h::has_flag(argc, argv, "--quick");
  double copy_gbs = copy_bw_gbs();
  h::Row("ceiling", "device-to-device copy (cudaMemcpy, read+write bytes)").f("bandwidth", "GB/s", copy_gbs).emit();
  vector_add_cases(argc, argv, copy_gbs);
  matrix_cases(argc, argv, copy_gbs);
  shared_cases(argc, argv);
  compute_cases(argc, argv);
  layout_cases(argc, argv, copy_gbs);
  CK(cudaDeviceSynchronize());
  return 0;
}
