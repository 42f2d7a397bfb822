// Streams (d09.e4, d09.e5, d23): copy/compute overlap, 1 vs N streams, event synchronisation, too many streams,
// and unified-memory migration measured within free memory.
#include <chrono>

#include "../include/harness.cuh"
#include "../kernels/busy_map.cuh"

static bool quick = false;

// host wall time of a whole stream program: sync, start clock, run, sync; median of reps after a warm-up
static double wall_ms(const std::function<void()>& prog, int reps = 7) {
  prog();
  CK(cudaDeviceSynchronize());
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    prog();
    CK(cudaDeviceSynchronize());
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

static double map_ref(float v, int iters) {
  for (int k = 0; k < iters; ++k) v = v * 0.9999f + 0.0001f;
  return v;
}

static double check(const float* hy, const std::vector<float>& hx, size_t n, int iters) {
  std::vector<double> ref(n);
  std::vector<float> got(hy, hy + n);
  for (size_t k = 0; k < n; ++k) ref[k] = map_ref(hx[k], iters);
  return h::rel_err(got, ref);
}

// pinned host buffers, device buffers and a reference for the copy/compute/copy program
struct Overlap {
  size_t n;
  int iters = 200;
  float *hx, *hy, *dx, *dy;
  std::vector<float> vx;
  explicit Overlap(size_t n_) : n(n_), vx(n_) {
    CK(cudaMallocHost(&hx, n * 4));
    CK(cudaMallocHost(&hy, n * 4));
    CK(cudaMalloc(&dx, n * 4));
    CK(cudaMalloc(&dy, n * 4));
    h::fill_random(vx, 3);
    std::memcpy(hx, vx.data(), n * 4);
  }
  ~Overlap() { CK(cudaFreeHost(hx)); CK(cudaFreeHost(hy)); CK(cudaFree(dx)); CK(cudaFree(dy)); }
  static int chunks_for(int ns) { return ns == 1 ? 1 : 4 * ns; }
  // H2D copy, kernel, D2H copy per chunk, chunks round-robin over the streams
  void run(const std::vector<cudaStream_t>& st) {
    int ns = (int)st.size(), chunks = chunks_for(ns), sms = h::device_sms();
    size_t per = n / chunks;
    for (int c = 0; c < chunks; ++c) {
      cudaStream_t s = st[c % ns];
      size_t o = c * per;
      CK(cudaMemcpyAsync(dx + o, hx + o, per * 4, cudaMemcpyHostToDevice, s));
      busy_map<<<sms * 4 / (ns == 1 ? 1 : 2), 256, 0, s>>>(dx + o, dy + o, per, iters);
      CK(cudaMemcpyAsync(hy + o, dy + o, per * 4, cudaMemcpyDeviceToHost, s));
    }
  }
  double error() const { return check(hy, vx, std::min<size_t>(n, 1 << 20), iters); }
};

static std::vector<cudaStream_t> make_streams(int ns) {
  std::vector<cudaStream_t> st(ns);
  for (auto& s : st) CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return st;
}

static void overlap(const char* cs, const std::vector<int>& stream_counts) {
  Overlap o(quick ? (1 << 22) : (1 << 26));  // 256 MiB each way
  for (int ns : stream_counts) {
    auto st = make_streams(ns);
    std::memset(o.hy, 0xFF, o.n * 4);
    double ms = wall_ms([&]() { o.run(st); });
    h::Row(cs, "H2D copy + kernel + D2H: chunks over streams").i("streams", "", ns).i("chunks", "", Overlap::chunks_for(ns))
        .f("time", "ms", ms).f("effective H2D+D2H bandwidth", "GB/s", 8.0 * o.n / ms / 1e6).f("rel. error", "", o.error()).emit();
    for (auto& s : st) CK(cudaStreamDestroy(s));
  }
}

// overlap_trace: the same program once per stream count, for a timeline. Run it under the CUPTI tracer
// (workloads/kernels/timeline.py); each traced pass follows a warm-up pass and sits between the marker kernels
// timeline_marker<ns> and timeline_marker<0>, on which the trace is split.
static void timeline(const char* cs, const std::vector<int>& stream_counts) {
  Overlap o(quick ? (1 << 22) : (1 << 24));  // 64 MiB each way: a readable timeline, still long kernels
  for (int ns : stream_counts) {
    auto st = make_streams(ns);
    o.run(st);
    CK(cudaDeviceSynchronize());
    std::memset(o.hy, 0xFF, o.n * 4);
    h::mark_timeline(ns);
    o.run(st);
    h::mark_timeline(0);
    h::Row(cs, "traced program: H2D copy + kernel + D2H over streams").i("streams", "", ns)
        .i("chunks", "", Overlap::chunks_for(ns)).f("rel. error", "", o.error()).emit();
    for (auto& s : st) CK(cudaStreamDestroy(s));
  }
}

// many small kernels (1 block each, too small to fill the GPU) spread round-robin over S streams
static void small_kernels(const char* cs, const char* table, const std::vector<int>& stream_counts, int kernels) {
  size_t per = 256 * 64;
  int iters = 2000;
  float *x = h::dev_random(per * kernels, 4), *y;
  CK(cudaMalloc(&y, per * kernels * 4));
  auto hx = h::to_host(x, per);
  for (int ns : stream_counts) {
    std::vector<cudaStream_t> st(ns);
    for (auto& s : st) CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    auto prog = [&]() {
      for (int k = 0; k < kernels; ++k) busy_map<<<1, 256, 0, st[k % ns]>>>(x + k * per, y + k * per, per, iters);
    };
    h::poison(y, per * kernels * 4);
    CK(cudaDeviceSynchronize());
    double ms = wall_ms(prog, 5);
    auto hy = h::to_host(y, per);
    double err = check(hy.data(), hx, per, iters);
    h::Row(cs, table).i("streams", "", ns).i("kernels", "", kernels).f("time", "ms", ms)
        .f("kernels per ms", "1/ms", kernels / ms).f("rel. error", "", err).emit();
    for (auto& s : st) CK(cudaStreamDestroy(s));
  }
  CK(cudaFree(x)); CK(cudaFree(y));
}

// producer on stream A, consumer on stream B: ordered by an event (GPU-side wait) vs by a host-side device sync
static void event_sync(const char* cs) {
  size_t n = 1 << 22;
  int iters = 100, rounds = 50, sms = h::device_sms();
  float *x = h::dev_random(n, 8), *mid, *y;
  CK(cudaMalloc(&mid, n * 4));
  CK(cudaMalloc(&y, n * 4));
  auto hx = h::to_host(x, 1 << 16);
  cudaStream_t a, b;
  CK(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking));
  CK(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking));
  cudaEvent_t ev;
  CK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  auto row = [&](const char* how, const std::function<void()>& prog) {
    h::poison(y, n * 4);
    double ms = wall_ms(prog, 5);
    auto hy = h::to_host(y, 1 << 16);
    std::vector<double> ref(1 << 16);
    for (size_t k = 0; k < ref.size(); ++k) ref[k] = map_ref((float)map_ref(hx[k], iters), iters);
    h::Row(cs, "producer/consumer on two streams: how the consumer waits").s("ordering", how).i("rounds", "", rounds)
        .f("time", "ms", ms).f("per round", "us", 1000 * ms / rounds).f("rel. error", "", h::rel_err(hy, ref)).emit();
  };
  row("cudaEventRecord + cudaStreamWaitEvent (GPU-side)", [&]() {
    for (int r = 0; r < rounds; ++r) {
      busy_map<<<sms * 4, 256, 0, a>>>(x, mid, n, iters);
      CK(cudaEventRecord(ev, a));
      CK(cudaStreamWaitEvent(b, ev, 0));
      busy_map<<<sms * 4, 256, 0, b>>>(mid, y, n, iters);
      CK(cudaEventRecord(ev, b));
      CK(cudaStreamWaitEvent(a, ev, 0));  // next producer must not overwrite mid while it is read
    }
  });
  row("cudaDeviceSynchronize between (host-side)", [&]() {
    for (int r = 0; r < rounds; ++r) {
      busy_map<<<sms * 4, 256, 0, a>>>(x, mid, n, iters);
      CK(cudaDeviceSynchronize());
      busy_map<<<sms * 4, 256, 0, b>>>(mid, y, n, iters);
      CK(cudaDeviceSynchronize());
    }
  });
  CK(cudaEventDestroy(ev)); CK(cudaStreamDestroy(a)); CK(cudaStreamDestroy(b));
  CK(cudaFree(x)); CK(cudaFree(mid)); CK(cudaFree(y));
}

// Unified memory within free memory only: first GPU touch of host-resident pages (fault-driven migration) vs the
// same after cudaMemPrefetchAsync vs resident. Oversubscription is NOT run: on a shared GPU it evicts others' work.
static void unified_memory(const char* cs) {
  size_t freeb, total;
  CK(cudaMemGetInfo(&freeb, &total));
  size_t bytes = std::min<size_t>(quick ? (256ull << 20) : (4ull << 30), freeb / 4);
  size_t n = bytes / 4;
  int sms = h::device_sms(), dev;
  CK(cudaGetDevice(&dev));
  float *x, *y;
  CK(cudaMallocManaged(&x, bytes));
  CK(cudaMalloc(&y, bytes));
  auto host_touch = [&]() { for (size_t k = 0; k < n; k += 1024) x[k] = 1.0f; };
  auto gpu_pass = [&]() {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
    CK(cudaEventRecord(a));
    busy_map<<<sms * 8, 256>>>(x, y, n, 1);
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    CKL();
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    CK(cudaEventDestroy(a)); CK(cudaEventDestroy(b));
    return (double)ms;
  };
  for (size_t k = 0; k < n; ++k) x[k] = 0.5f;  // first touch on the host: pages live in host memory
  double fault_ms = gpu_pass();
  double resident_ms = gpu_pass();
  host_touch();  // move (part of) the pages back to the host
  for (size_t k = 0; k < n; ++k) x[k] = 0.5f;
  cudaMemLocation loc{};
  loc.type = cudaMemLocationTypeDevice;
  loc.id = dev;
  auto t0 = std::chrono::steady_clock::now();
  CK(cudaMemPrefetchAsync(x, bytes, loc, 0, 0));
  CK(cudaDeviceSynchronize());
  double pf_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  double after_pf = gpu_pass();
  auto row = [&](const char* how, double ms) {
    h::Row(cs, "unified memory: migration within free GPU memory").s("access", how).f("size", "GiB", bytes / 1073741824.0)
        .f("time", "ms", ms).f("bandwidth", "GB/s", bytes / ms / 1e6).emit();
  };
  row("kernel on host-resident pages (page-fault migration)", fault_ms);
  row("cudaMemPrefetchAsync to the GPU", pf_ms);
  row("kernel after prefetch", after_pf);
  row("kernel on GPU-resident pages (second pass)", resident_ms);
  h::note(cs, "Oversubscription (allocating more managed memory than the GPU has) was not run: the GPU is shared, "
              "and evicting beyond free memory would page out other tenants' allocations. Migration was measured on "
              "a buffer of at most a quarter of the free memory.");
  CK(cudaFree(x)); CK(cudaFree(y));
}

int main(int argc, char** argv) {
  quick = h::has_flag(argc, argv, "--quick");
  if (h::want(argc, argv, "overlap_two_streams")) overlap("overlap_two_streams", {1, 2});
  if (h::want(argc, argv, "overlap")) overlap("overlap", {1, 2, 4, 8});
  if (h::want(argc, argv, "concurrent_streams"))
    small_kernels("concurrent_streams", "small kernels (1 block each): 1 vs N streams", {1, 2, 4, 8, 16, 32}, 128);
  if (h::want(argc, argv, "event_sync")) event_sync("event_sync");
  if (h::want(argc, argv, "too_many_streams"))
    small_kernels("too_many_streams", "too many streams: the same 1024 small kernels over S streams",
                  {1, 4, 16, 32, 64, 128, 256, 512, 1024}, 1024);
  if (h::want(argc, argv, "unified_memory")) unified_memory("unified_memory");
  if (h::named(argc, argv, "overlap_trace")) timeline("overlap_trace", {1, 4});
  return 0;
}
