"""ONNX Runtime measurement helpers: sessions per optimisation level, latency sampling, node counts, peak RSS.

Run as a module to measure one setting in a fresh process (so peak RSS is that setting's alone):
`python -m workloads.models.ortbench --model m.onnx --level all --batch 32 --warmup 50 --iters 500` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

LEVELS = ("disabled", "basic", "extended", "all")  # ORT GraphOptimizationLevel, weakest first


def _level(name: str):
    import onnxruntime as ort

    table = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if name not in table:
        raise ValueError(f"error: level {name!r}: allowed {', '.join(LEVELS)}")
    return table[name]


def session(
    model: Path,
    level: str = "all",
    intra_threads: int = 1,
    inter_threads: int = 1,
    providers: tuple[str, ...] = ("CPUExecutionProvider",),
    optimized_path: Path | None = None,
):
    """An InferenceSession at one graph-optimisation level; optionally writes the optimised graph to disk."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = _level(level)
    so.intra_op_num_threads = intra_threads
    so.inter_op_num_threads = inter_threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
        so.log_severity_level = 3  # the "hardware specific optimizations" warning for level all is expected here
    return ort.InferenceSession(str(model), sess_options=so, providers=list(providers))


@dataclass(frozen=True)
class Stats:
    """Latency over all timed calls of one setting: percentiles in microseconds, throughput in samples/s."""

    batch: int
    calls: int
    p50_us: float
    p95_us: float
    p99_us: float
    mean_us: float
    samples_per_s: float  # batch / mean latency

    @classmethod
    def of(cls, samples_ns: list[int] | np.ndarray, batch: int) -> Stats:
        a = np.asarray(samples_ns, dtype=np.float64) / 1e3
        mean = float(a.mean())
        p50, p95, p99 = (float(v) for v in np.percentile(a, [50, 95, 99]))
        return cls(batch, int(a.size), p50, p95, p99, mean, batch / (mean / 1e6))


def time_calls(sess, feed: dict[str, np.ndarray], warmup: int, iters: int) -> list[int]:
    """Run `warmup` untimed calls, then `iters` calls each timed with perf_counter_ns; returns ns per call."""
    for _ in range(warmup):
        sess.run(None, feed)
    out = [0] * iters
    for i in range(iters):
        t0 = time.perf_counter_ns()
        sess.run(None, feed)
        out[i] = time.perf_counter_ns() - t0
    return out


def interleaved(sessions: dict[str, object], feeds: dict[str, dict], warmup: int, iters: int, rounds: int) -> dict:
    """Time several sessions round-robin (`rounds` slices of iters/rounds calls) so drift hits all alike."""
    samples: dict[str, list[int]] = {k: [] for k in sessions}
    for k, s in sessions.items():
        time_calls(s, feeds[k], warmup, 0)
    per_round = max(1, iters // rounds)
    for _ in range(rounds):
        for k, s in sessions.items():
            samples[k] += time_calls(s, feeds[k], 0, per_round)
    return samples


def op_counts(model_path: Path) -> Counter[str]:
    """Nodes of the main graph by op type (custom domains shown as domain:Op)."""
    import onnx

    proto = onnx.load(str(model_path), load_external_data=False)
    return Counter(
        f"{n.domain}:{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type for n in proto.graph.node
    )


def fmt_ops(counts: Counter[str]) -> str:
    """'Gemm×3, Relu×2' in descending count order (ties by name)."""
    return ", ".join(f"{op}×{n}" for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def optimized_counts(model: Path, level: str, out: Path) -> Counter[str]:
    """Let ORT optimise `model` at `level`, save the result to `out`, and count its nodes."""
    session(model, level, optimized_path=out)
    return op_counts(out)


@dataclass(frozen=True)
class IsolatedRun:
    """One setting measured in a fresh process: latency stats plus memory (MiB) and session start-up (ms)."""

    level: str
    stats: dict
    rss_before_session_mib: float  # after importing onnxruntime/numpy, before the session exists
    peak_rss_mib: float  # VmHWM of the whole process at the end
    session_create_ms: float


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM), MiB.

    Not ru_maxrss: Linux carries that across fork+exec, so a child started from a big parent (torch loaded)
    would report the parent's peak; VmHWM belongs to the process's own address space.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no procfs: best available


def _measure_here(model: Path, level: str, batch: int, warmup: int, iters: int, threads: int) -> IsolatedRun:
    import onnxruntime  # noqa: F401 - import before the baseline reading so it is part of the baseline

    before = peak_rss_mib()
    t0 = time.perf_counter_ns()
    sess = session(model, level, intra_threads=threads)
    create_ms = (time.perf_counter_ns() - t0) / 1e6
    x = np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32)
    name = sess.get_inputs()[0].name
    samples = time_calls(sess, {name: x}, warmup, iters)
    peak = peak_rss_mib()
    return IsolatedRun(level, asdict(Stats.of(samples, batch)), before, peak, create_ms)


def measure_isolated(model: Path, level: str, batch: int, warmup: int, iters: int, threads: int = 1) -> IsolatedRun:
    """Measure one optimisation level in a fresh Python process (peak RSS is then that setting's alone)."""
    cmd = [sys.executable, "-m", "workloads.models.ortbench", "--model", str(model), "--level", level]
    cmd += ["--batch", str(batch), "--warmup", str(warmup), "--iters", str(iters), "--threads", str(threads)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"isolated run {level} batch {batch} failed (rc {p.returncode}): {p.stderr.strip()[-500:]}")
    return IsolatedRun(**json.loads(p.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--level", choices=LEVELS, default="all")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--iters", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1, help="intra_op_num_threads")
    a = ap.parse_args(argv)
    print(json.dumps(asdict(_measure_here(a.model, a.level, a.batch, a.warmup, a.iters, a.threads))))


if __name__ == "__main__":
    main()
