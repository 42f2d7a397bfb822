// CUDA graphs: a chain of small kernels (a stand-in "inference pass") launched one by one vs captured once into a
// graph and replayed. Cases: plain_launches (the baseline's latency), graph_vs_plain (the same pass as a graph, batch
// 1), graph_batches (both at batch 1/16/64), graph_reuse (capture once, replay R times), graph_trace (for CUPTI).
#include <chrono>

#include "../include/harness.cuh"
#include "../kernels/graph_step.cuh"

static const float A = 0.99f, B = 0.01f;

static std::vector<double> cpu_chain(const std::vector<float>& x0, int steps) {
  std::vector<double> r(x0.size());
  for (size_t i = 0; i < x0.size(); ++i) {
    float v = x0[i];
    for (int s = 0; s < steps; ++s) v = std::fmax(std::fma(A, v, B), 0.0f);
    r[i] = v;
  }
  return r;
}

// Latency of `passes` single passes, each timed by its own pair of events: the distribution a request would see.
struct Latency {
  std::vector<double> us;
  double pct(double p) const { return us[std::min(us.size() - 1, (size_t)(p / 100.0 * us.size()))]; }
  double mean() const {
    double s = 0;
    for (double v : us) s += v;
    return s / us.size();
  }
};
static Latency latency(const std::function<void()>& pass, cudaStream_t st, int passes) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < 10; ++i) pass();  // warm-up
  CK(cudaStreamSynchronize(st));
  Latency l;
  for (int i = 0; i < passes; ++i) {
    CK(cudaEventRecord(a, st));
    pass();
    CK(cudaEventRecord(b, st));
    CK(cudaEventSynchronize(b));
    CKL();
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    l.us.push_back(1000.0 * ms);
  }
  std::sort(l.us.begin(), l.us.end());
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  return l;
}

int main(int argc, char** argv) {
  const int steps = 128, width = 1024;  // >= 100 small kernels per forward pass, as the target asks
  const int passes = h::has_flag(argc, argv, "--quick") ? 50 : 500;
  // --case graph_trace: one plain pass and one graph replay at batch 1, each after a marker kernel, for the timeline
  const bool traced = h::named(argc, argv, "graph_trace");
  const bool plain_case = h::want(argc, argv, "plain_launches"), vs_case = h::want(argc, argv, "graph_vs_plain");
  const bool batch_case = h::want(argc, argv, "graph_batches"), reuse_case = h::want(argc, argv, "graph_reuse");
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  for (int batch : traced ? std::vector<int>{1} : std::vector<int>{1, 16, 64}) {
    size_t n = (size_t)batch * width;
    float *x0 = h::dev_random(n, batch), *x;
    CK(cudaMalloc(&x, n * 4));
    unsigned g = (unsigned)((n + 255) / 256);
    auto chain = [&]() {
      for (int s = 0; s < steps; ++s) graph_step<<<g, 256, 0, st>>>(x, n, A, B);
    };
    auto t0 = std::chrono::steady_clock::now();
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    chain();
    CK(cudaStreamEndCapture(st, &graph));
    CK(cudaGraphInstantiate(&exec, graph, 0));
    double capture_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    auto ref = cpu_chain(h::to_host(x0, n), steps);
    auto checked = [&](const std::function<void()>& go) {
      CK(cudaMemcpyAsync(x, x0, n * 4, cudaMemcpyDeviceToDevice, st));
      go();
      CK(cudaStreamSynchronize(st));
      CKL();
      return h::rel_err(h::to_host(x, n), ref);
    };
    double e_plain = checked(chain), e_graph = checked([&]() { CK(cudaGraphLaunch(exec, st)); });
    if (traced) {  // marker 1: plain launches; marker 2: graph replay (both warmed up by the checks above)
      h::mark_timeline(1);
      e_plain = checked(chain);
      h::mark_timeline(0);
      h::mark_timeline(2);
      e_graph = checked([&]() { CK(cudaGraphLaunch(exec, st)); });
      h::mark_timeline(0);
      h::Row("graph_trace", "traced program: 128-kernel chain, plain then graph").i("batch", "", batch)
          .i("kernels per pass", "", steps).f("rel. error plain", "", e_plain).f("rel. error graph", "", e_graph).emit();
      CK(cudaGraphExecDestroy(exec)); CK(cudaGraphDestroy(graph)); CK(cudaFree(x0)); CK(cudaFree(x));
      break;
    }
    // one forward pass (128 kernels) per sample; x evolves but stays bounded (relu of a contraction)
    if (plain_case) {
      Latency l = latency(chain, st, passes);
      h::Row("plain_launches", "inference baseline: 128 kernels launched one by one, latency per pass")
          .i("batch", "", batch).i("kernels per pass", "", steps).i("passes", "", passes).f("p50", "us", l.pct(50))
          .f("p90", "us", l.pct(90)).f("p99", "us", l.pct(99)).f("mean", "us", l.mean())
          .f("per kernel (p50)", "us", l.pct(50) / steps).f("rel. error", "", e_plain).emit();
    }
    if (vs_case && batch == 1) {
      Latency lp = latency(chain, st, passes), lg = latency([&]() { CK(cudaGraphLaunch(exec, st)); }, st, passes);
      for (auto [name, l, e] : {std::make_tuple("plain launches", &lp, e_plain), std::make_tuple("graph replay", &lg, e_graph)})
        h::Row("graph_vs_plain", "the same pass as a CUDA graph: latency per pass (batch 1)").s("launch", name)
            .i("passes", "", passes).f("p50", "us", l->pct(50)).f("p90", "us", l->pct(90)).f("p99", "us", l->pct(99))
            .f("mean", "us", l->mean()).f("p50 speedup over plain", "x", lp.pct(50) / l->pct(50)).f("rel. error", "", e).emit();
    }
    if (!batch_case && !reuse_case) {
      CK(cudaGraphExecDestroy(exec)); CK(cudaGraphDestroy(graph)); CK(cudaFree(x0)); CK(cudaFree(x));
      continue;
    }
    double plain = h::time_ms([&](int) { chain(); }, 5, 50, 200, 100.0, st);
    double graphed = h::time_ms([&](int) { CK(cudaGraphLaunch(exec, st)); }, 5, 50, 200, 100.0, st);
    if (batch_case)
      h::Row("graph_batches", "128-kernel chain: plain launches vs graph replay").i("batch", "", batch)
        .i("kernels per pass", "", steps).f("plain launches", "us", 1000 * plain).f("graph replay", "us", 1000 * graphed)
        .f("speedup", "x", plain / graphed).f("per kernel, plain", "us", 1000 * plain / steps)
        .f("per kernel, graph", "us", 1000 * graphed / steps).f("rel. error plain", "", e_plain)
        .f("rel. error graph", "", e_graph).emit();
    if (batch == 1 && reuse_case) {
      // capture once, replay R times: when does capturing pay for itself?
      for (int R : {1, 10, 100, 1000}) {
        auto wall = [&](const std::function<void()>& go) {
          CK(cudaStreamSynchronize(st));
          auto t = std::chrono::steady_clock::now();
          go();
          CK(cudaStreamSynchronize(st));
          return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
        };
        double p = wall([&]() { for (int r = 0; r < R; ++r) chain(); });
        double gr = wall([&]() { for (int r = 0; r < R; ++r) CK(cudaGraphLaunch(exec, st)); });
        h::Row("graph_reuse", "capture once, replay R times (batch 1)").i("replays R", "", R).f("plain launches", "ms", p)
            .f("graph replays", "ms", gr).f("capture + instantiate", "ms", capture_ms)
            .f("speedup incl. capture", "x", p / (gr + capture_ms)).f("speedup replay only", "x", p / gr).emit();
      }
    }
    CK(cudaGraphExecDestroy(exec));
    CK(cudaGraphDestroy(graph));
    CK(cudaFree(x0));
    CK(cudaFree(x));
  }
  CK(cudaStreamDestroy(st));
  return 0;
}
