"""Day-83 deliverable `high_concurrency_demo.py`: open-loop QPS into a bounded queue + dynamic batcher + workers.

`python -m workloads.sched.high_concurrency_demo --qps 1000 5000 10000 --max-batch 32 --delay-us 1000` runs one
measured window per QPS (and per `--compare` mode) and prints achieved/served rate, P50/P95/P99, the latency split,
rejections and who limited the run; `--json` prints the same as JSON. `--max-batch 1` is "no batching".
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workloads.sched import qpsload
from workloads.sched.batching import BatchConfig
from workloads.sched.pool import WorkerPool


def _configs(a: argparse.Namespace) -> list[tuple[str, BatchConfig]]:
    """Validate every option before a worker starts; ValueError names the option, the value and what is allowed."""
    for name, vals, lo in (("--qps", a.qps, 1), ("--workers", [a.workers], 1), ("--capacity", [a.capacity], 1)):
        bad = [v for v in vals if v < lo]
        if bad:
            raise ValueError(f"{name} {bad[0]:g}: allowed a number >= {lo}")
    if a.duration <= 0:
        raise ValueError(f"--duration {a.duration:g}: allowed a number > 0 (seconds)")
    try:
        cfg = BatchConfig(a.max_batch, a.delay_us, tuple(a.preferred), a.capacity)
    except ValueError as exc:
        flag = {"max_batch_size": "--max-batch", "max_queue_delay_us": "--delay-us", "preferred_sizes": "--preferred"}
        field, rest = str(exc).split(" ", 1)  # BatchConfig's messages start with the field name
        raise ValueError(f"{flag.get(field, field)} {rest}") from None
    label = "no batching" if a.max_batch == 1 else f"max {a.max_batch} delay {a.delay_us} us"
    out = [(label, cfg)]
    if a.compare and a.max_batch != 1:
        out.insert(0, ("no batching", BatchConfig(1, 0, (), a.capacity)))
    return out


def _summary(r: qpsload.QpsRun) -> dict[str, Any]:
    run = r.run
    return {
        "mode": r.label,
        "target_qps": run.target_qps,
        "achieved_qps": round(run.achieved_qps, 1),
        "throughput_rps": round(run.throughput_rps, 1),
        "latency_ms": {k: round(v, 3) for k, v in run.latency_ms.items()},
        "queue_p50_ms": round(r.queue_ms.get("p50", float("nan")), 3),
        "formation_p50_ms": round(r.form_ms.get("p50", float("nan")), 3),
        "service_p50_ms": round(r.service_ms.get("p50", float("nan")), 3),
        "avg_batch": round(r.avg_batch, 2),
        "rejected": r.rejected,
        "unfinished": run.errors.get("unfinished", 0),
        "verdict": run.verdict,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Open-loop QPS against a request queue + dynamic batcher (CPU workers).")
    ap.add_argument("--qps", type=float, nargs="+", default=[1000.0, 5000.0, 10000.0], help="offered loads, req/s")
    ap.add_argument("--max-batch", type=int, default=32, help="max_batch_size (1 = no batching)")
    ap.add_argument("--delay-us", type=int, default=1000, help="max_queue_delay_us for batch-mates")
    ap.add_argument("--preferred", type=int, nargs="*", default=[8, 16, 32], help="preferred batch sizes")
    ap.add_argument("--capacity", type=int, default=2048, help="request queue capacity (then: rejected)")
    ap.add_argument("--workers", type=int, default=1, help="inference worker processes")
    ap.add_argument("--duration", type=float, default=3.0, help="measured window per run, s")
    ap.add_argument("--compare", action="store_true", help="also run without batching at each QPS")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    a = ap.parse_args(argv)
    try:
        configs = _configs(a)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = []
    with WorkerPool(a.workers) as pool:
        for q in a.qps:
            for label, cfg in configs:
                rows.append(_summary(qpsload.load_test(pool, cfg, q, label, duration_s=a.duration)))
                if not a.json:
                    r = rows[-1]
                    lat = r["latency_ms"]
                    print(
                        f"{r['mode']:<24} {q:>8.0f} req/s offered  sent {r['achieved_qps']:>8.0f}  served "
                        f"{r['throughput_rps']:>8.0f}  p50 {lat['p50']:>8.2f}  p95 {lat['p95']:>8.2f}  p99 "
                        f"{lat['p99']:>8.2f} ms  batch {r['avg_batch']:>5.1f}  rejected {r['rejected']:>6}  "
                        f"{r['verdict']}"
                    )
    if a.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
