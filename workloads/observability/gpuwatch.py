"""GPU readings through the lab exporter (NVML) under a GPU load: what the day-46 runners share.

The exporter runs in this process (so tests can hand it a stand-in NVML); the load runs in a thread and counts its
steps, so a phase's GPU readings sit beside the work done in it.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from ailab.contract import Skip, Substitute
from ailab.contract.ports import free_port
from workloads.exporters.collector import LabCollector
from workloads.exporters.server import serve

# lab exporter metric -> the DCGM exporter field the GPU dashboard reads first (the lab metric is its fallback)
DCGM_FIELD = {
    "lab_gpu_utilization_ratio": "DCGM_FI_DEV_GPU_UTIL",
    "lab_gpu_memory_utilization_ratio": "DCGM_FI_DEV_MEM_COPY_UTIL",
    "lab_gpu_memory_used_bytes": "DCGM_FI_DEV_FB_USED",
    "lab_gpu_power_watts": "DCGM_FI_DEV_POWER_USAGE",
    "lab_gpu_temperature_celsius": "DCGM_FI_DEV_GPU_TEMP",
    "lab_gpu_sm_clock_hertz": "DCGM_FI_DEV_SM_CLOCK",
    "lab_gpu_memory_clock_hertz": "DCGM_FI_DEV_MEM_CLOCK",
    "lab_gpu_energy_joules_total": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
}
PHASE_METRICS = ["lab_gpu_utilization_ratio", "lab_gpu_memory_used_bytes", "lab_gpu_power_watts",
                 "lab_gpu_temperature_celsius", "lab_gpu_sm_clock_hertz"]  # fmt: skip

NVML_EXPORTER = Substitute(
    instead_of="NVIDIA DCGM exporter",
    used="the lab's NVML exporter (workloads/exporters, lab_gpu_* metrics)",
    why="DCGM and dcgm-exporter cannot be installed on the GPU machine (NVIDIA's repositories are unreachable); "
    "the GPU dashboard and alert rules read DCGM fields first and these lab_gpu_* metrics as their fallback",
)


def collector() -> LabCollector:
    """The exporter's collector (reads NVML); a module function so tests can hand in a stand-in NVML."""
    return LabCollector()


def start_exporter(c: LabCollector) -> str:
    """Serve `c` on a free port in this process; its /metrics URL. Skip when NVML sees no GPU."""
    if not c.nvml.available:
        raise Skip(f"NVML sees no GPU ({c.nvml.error or 'count 0'})")
    port = free_port()
    serve(port, collector=c)
    return f"http://127.0.0.1:{port}/metrics"


def scrape(url: str) -> tuple[dict[str, dict[str, float]], int]:
    """metric sample name -> {gpu index: value} from one scrape, and the response size in bytes."""
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read()
    out: dict[str, dict[str, float]] = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[s.labels.get("gpu", "")] = s.value
    return out, len(body)


def matmul_step(size: int, device_index: int) -> Callable[[], int]:
    """A step of bf16 matmuls (size x size) on the GPU; returns how many matmuls one call ran."""
    import torch  # imported late: runner modules import cheaply

    dev = torch.device(f"cuda:{device_index}")
    a = torch.randn(size, size, device=dev, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=dev, dtype=torch.bfloat16)

    def step() -> int:
        nonlocal a
        for _ in range(20):
            a = (a @ b).clamp_(-1, 1)
        torch.cuda.synchronize(dev)
        return 20

    step()  # CUDA context, operands and kernels exist before the load phase starts
    return step


def mlp_inference_step(batch: int, hidden: int, layers: int, device_index: int) -> Callable[[], int]:
    """One batched forward pass of an MLP (bf16, no grad) on the GPU; returns the requests (rows) it served."""
    import torch

    dev = torch.device(f"cuda:{device_index}")
    blocks: list[torch.nn.Module] = []
    for _ in range(layers):
        blocks += [torch.nn.Linear(hidden, 4 * hidden), torch.nn.GELU(), torch.nn.Linear(4 * hidden, hidden)]
    model = torch.nn.Sequential(*blocks).to(dev, torch.bfloat16).eval()
    x = torch.randn(batch, hidden, device=dev, dtype=torch.bfloat16)

    def step() -> int:
        with torch.inference_mode():
            model(x)
        torch.cuda.synchronize(dev)
        return batch

    step()
    return step


@dataclass
class Load:
    """Runs `step` in a loop in a thread between start() and stop(); counts work and times each step."""

    step: Callable[[], int]
    done: int = 0
    step_s: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            self.done += self.step()
            self.step_s.append(time.perf_counter() - t0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)


@dataclass
class Watch:
    """Readings of one GPU per phase, scraped from the exporter every `interval_s`."""

    url: str
    gpu: int = 0
    interval_s: float = 1.0
    t0: float = field(default_factory=time.time)
    points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    phases: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    last: dict[str, dict[str, float]] = field(default_factory=dict)

    def run(self, phase: str, seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            self.last, _ = scrape(self.url)
            now = time.time() - self.t0
            for m in PHASE_METRICS:
                v = self.last.get(m, {}).get(str(self.gpu))
                if v is not None:
                    self.points.setdefault(m, []).append((now, v))
                    self.phases.setdefault(phase, {}).setdefault(m, []).append(v)
            time.sleep(self.interval_s)

    def max(self, metric: str) -> float:
        return max((v for _, v in self.points.get(metric, [])), default=float("nan"))


def longest_over(points: list[tuple[float, float]], threshold: float) -> float:
    """The longest run of consecutive readings above `threshold`, s (0 when none is above)."""
    longest, start = 0.0, None
    for t, v in points:
        if v > threshold:
            start = t if start is None else start
            longest = max(longest, t - start)
        else:
            start = None
    return longest


def panel_expr(expr: str) -> str:
    """A Grafana panel query with its template variables replaced so Prometheus runs it (all instances)."""
    return re.sub(r'=~"\$\w+"', '=~".*"', expr.replace("$__rate_interval", "1m"))
