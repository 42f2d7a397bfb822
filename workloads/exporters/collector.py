"""The lab exporter's collector: GPU metrics from NVML when there is a GPU, host metrics (lab_host_*) always.

Host metrics are named `lab_host_*` and `lab_exporter_info{mode="host"}` says when no GPU was found, so a
dashboard never mistakes host CPU load for a GPU reading. Labels are bounded: `node` (one per exporter),
`gpu` (index), `process` (top processes by memory, the rest summed as "other").
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import psutil
from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from workloads.exporters.nvml import GpuReading, Nvml

# read latency of one NVML/psutil pass: 100 µs .. 1 s, finer where NVML usually answers (1-50 ms)
READ_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class LabCollector(Collector):
    """Collects on every scrape (no background thread), so a reading is never older than the scrape."""

    def __init__(self, nvml: Nvml | None = None, node: str | None = None) -> None:
        self.nvml = nvml or Nvml()
        self.node = node or socket.gethostname()
        self.read_seconds = Histogram(
            "lab_exporter_read_duration_seconds",
            "Time to read NVML (or psutil on a host without GPU) for one scrape, s",
            buckets=READ_BUCKETS,
            registry=None,
        )
        psutil.cpu_percent(interval=None)  # primes the CPU counter: the first real reading covers scrape to scrape

    @property
    def mode(self) -> str:
        return "nvml" if self.nvml.available else "host"

    def _gpu(self, readings: list[GpuReading]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["node", "gpu"]

        def fam(name: str, doc: str, attr: str) -> GaugeMetricFamily:
            f = GaugeMetricFamily(name, doc, labels=labels)
            for r in readings:
                f.add_metric([self.node, str(r.index)], float(getattr(r, attr)))
            return f

        info = InfoMetricFamily("lab_gpu", "GPU identity", labels=labels)
        for r in readings:
            info.add_metric([self.node, str(r.index)], {"name": r.name, "uuid": r.uuid})
        yield info
        yield fam("lab_gpu_utilization_ratio", "Share of time a kernel was running (NVML), 0-1", "utilization_ratio")
        yield fam(
            "lab_gpu_memory_utilization_ratio",
            "Share of time device memory was read or written (NVML), 0-1",
            "memory_utilization_ratio",
        )
        yield fam("lab_gpu_memory_used_bytes", "Device memory in use, bytes", "memory_used_bytes")
        yield fam("lab_gpu_memory_total_bytes", "Device memory size, bytes", "memory_total_bytes")
        yield fam("lab_gpu_power_watts", "Power draw, W", "power_watts")
        yield fam("lab_gpu_power_limit_watts", "Enforced power limit, W", "power_limit_watts")
        yield fam("lab_gpu_temperature_celsius", "GPU die temperature, °C", "temperature_celsius")
        yield fam("lab_gpu_sm_clock_hertz", "SM clock, Hz", "sm_clock_hertz")
        yield fam("lab_gpu_memory_clock_hertz", "Memory clock, Hz", "memory_clock_hertz")
        energy = CounterMetricFamily("lab_gpu_energy_joules", "Energy used since the driver loaded, J", labels=labels)
        for r in readings:
            if r.energy_joules is not None:
                energy.add_metric([self.node, str(r.index)], r.energy_joules)
        yield energy
        procs = GaugeMetricFamily(
            "lab_gpu_process_memory_used_bytes", "GPU memory per process name, bytes", labels=[*labels, "process"]
        )
        for r in readings:
            for name, used in r.processes.items():
                procs.add_metric([self.node, str(r.index), name], float(used))
        yield procs

    def _host(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        vm = psutil.virtual_memory()
        net = psutil.net_io_counters()

        for name, doc, value in (
            ("lab_host_cpu_utilization_ratio", "Host CPU busy share since the previous scrape, 0-1",
             psutil.cpu_percent(interval=None) / 100.0),
            ("lab_host_memory_used_bytes", "Host memory in use (total - available), bytes", vm.total - vm.available),
            ("lab_host_memory_total_bytes", "Host memory size, bytes", vm.total),
            ("lab_host_load1", "1-minute load average, tasks", psutil.getloadavg()[0]),
        ):  # fmt: skip
            f = GaugeMetricFamily(name, doc, labels=["node"])
            f.add_metric([self.node], float(value))
            yield f
        for name, doc, value in (
            ("lab_host_network_receive_bytes", "Bytes received on all interfaces, bytes", net.bytes_recv),
            ("lab_host_network_transmit_bytes", "Bytes sent on all interfaces, bytes", net.bytes_sent),
        ):
            c = CounterMetricFamily(name, doc, labels=["node"])
            c.add_metric([self.node], float(value))
            yield c

    def collect(self) -> Iterator[object]:
        t0 = time.perf_counter()
        readings = self.nvml.read()
        host = list(self._host())
        # the exemplar ties a slow read to this scrape's id, which the exporter logs when it is slow
        read_id = uuid.uuid4().hex[:16]
        elapsed = time.perf_counter() - t0
        self.read_seconds.observe(elapsed, exemplar={"trace_id": read_id})
        info = InfoMetricFamily("lab_exporter", "What this exporter reads: mode nvml (GPU) or host (no GPU found)")
        info.add_metric([], {"mode": self.mode, "node": self.node, "gpus": str(len(readings))})
        yield info
        yield GaugeMetricFamily("lab_exporter_gpus", "GPUs read through NVML, count", value=len(readings))
        if readings:
            yield from self._gpu(readings)
        yield from host
        yield from self.read_seconds.collect()
