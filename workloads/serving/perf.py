"""perf_analyzer (tritonclient[all]==2.51.0) as a second load driver, run on the same model and concurrency.

The 2.51 binary needs libb64.so.0d and libcudart.so.12 that only nvidia_pytriton.libs carries under hashed
names: a shim directory of symlinks goes first on LD_LIBRARY_PATH (see ENVIRONMENT.md).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ailab.contract import paths
from ailab.contract import probes as host

# On 2 cores the default time windows never stabilise; a fixed request count per window does.
# --stability-percentage 50 (default 10): a loaded 2-core box rarely keeps 3 windows within 10 %.
DEFAULT_ARGS = (
    "--stability-percentage",
    "50",
    "--measurement-mode",
    "count_windows",
    "--measurement-request-count",
    "200",
)


# In count_windows mode a window starts at 1 s and grows until --measurement-request-count requests completed
# (perf_analyzer's docs/measurements_metrics.md, "Count Windows"); timed here: 3 windows of 100, 300 or 1,000
# requests at ~3,500 req/s each run about 3.1 s.
COUNT_WINDOW_MIN_S = 1.0


class PerfAnalyzerError(RuntimeError):
    """perf_analyzer missing or failed; the message carries its last output lines."""


def binary() -> str:
    exe = host.venv_bin("perf_analyzer")
    if exe is None:
        raise PerfAnalyzerError("perf_analyzer not found (pip install 'tritonclient[all]==2.51.0')")
    return exe


def shim_dir() -> Path:
    """A directory of symlinks giving nvidia_pytriton.libs' hashed libraries the names perf_analyzer asks for."""
    import pytriton

    libs = Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"
    shim = paths.work_dir() / "perf_analyzer_shim"
    shim.mkdir(parents=True, exist_ok=True)
    for want, pattern in (("libb64.so.0d", "libb64-*.so.0d"), ("libcudart.so.12", "libcudart-*.so.12*")):
        found = sorted(libs.glob(pattern))
        if not found:
            raise PerfAnalyzerError(f"{pattern} not found in {libs} (nvidia-pytriton==0.7.0 expected)")
        link = shim / want
        if not link.exists():
            link.symlink_to(found[0])
    return shim


def env() -> dict[str, str]:
    old = os.environ.get("LD_LIBRARY_PATH")
    import pytriton

    libs = Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"
    parts = [str(shim_dir()), str(libs), sysconfig.get_config_var("LIBDIR"), *([old] if old else [])]
    return {**os.environ, "LD_LIBRARY_PATH": ":".join(parts)}


@dataclass
class PerfResult:
    """One perf_analyzer measurement; latencies in ms (its CSV gives µs), throughput in inferences/s."""

    concurrency: int
    batch: int
    throughput_ips: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    avg_ms: float
    server_queue_ms: float
    server_compute_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run(
    address: str,
    model: str,
    protocol: str = "grpc",
    concurrency: int = 8,
    batch: int = 1,
    request_count: int = 200,
    request_rate: float | None = None,
    extra: tuple[str, ...] = (),
    timeout_s: float = 300,
    workdir: Path | None = None,
) -> PerfResult:
    """Run perf_analyzer at one concurrency (or a Poisson request rate, req/s) and parse its CSV."""
    workdir = workdir or paths.work_dir() / "perf_analyzer"
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{model}-{protocol}-c{concurrency}-b{batch}.csv"
    args = list(DEFAULT_ARGS)
    args[-1] = str(request_count)
    cmd = [
        binary(),
        "-m",
        model,
        "-u",
        address,
        "-i",
        protocol,
        "-b",
        str(batch),
        *(
            ["--request-rate-range", f"{request_rate:g}", "--request-distribution", "poisson"]
            if request_rate
            else ["--concurrency-range", f"{concurrency}:{concurrency}"]
        ),
        *args,
        "-f",
        str(out),
        *extra,
    ]
    count_at = cmd.index("--measurement-request-count") + 1
    for attempt in range(2):  # an unstable run is retried once with windows twice as long
        out.unlink(missing_ok=True)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PerfAnalyzerError(f"perf_analyzer on {model} timed out after {timeout_s:.0f} s") from exc
        if p.returncode == 0 or "stable measurement" not in p.stdout + p.stderr or attempt:
            break
        cmd[count_at] = str(2 * request_count)
    if p.returncode != 0 or not out.exists():
        tail = "\n".join((p.stdout + p.stderr).splitlines()[-15:])
        raise PerfAnalyzerError(f"perf_analyzer on {model} ({protocol}://{address}) exited {p.returncode}:\n{tail}")
    with open(out) as f:
        row = next(csv.DictReader(f))
    us = lambda k: float(row.get(k) or 0.0) / 1e3  # noqa: E731 - µs -> ms
    ips = float(row["Inferences/Second"])
    avg = sum(
        us(k)
        for k in (
            "Client Send",
            "Network+Server Send/Recv",
            "Server Queue",
            "Server Compute Input",
            "Server Compute Infer",
            "Server Compute Output",
            "Client Recv",
        )
    )
    return PerfResult(
        concurrency=concurrency,
        batch=batch,
        throughput_ips=ips,
        throughput_rps=ips / batch,
        p50_ms=us("p50 latency"),
        p90_ms=us("p90 latency"),
        p95_ms=us("p95 latency"),
        p99_ms=us("p99 latency"),
        avg_ms=avg,
        server_queue_ms=us("Server Queue"),
        server_compute_ms=us("Server Compute Input") + us("Server Compute Infer") + us("Server Compute Output"),
    )
