"""GPU readings through NVML (nvidia-ml-py): utilisation, memory, power, temperature, clocks, per-process memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MAX_PROCESSES = 8  # per GPU; the rest are summed as process="other" so the label stays bounded


@dataclass(frozen=True)
class GpuReading:
    index: int
    name: str
    uuid: str
    utilization_ratio: float  # share of the sample period a kernel ran, 0-1
    memory_utilization_ratio: float  # share of the period device memory was read or written, 0-1
    memory_used_bytes: int
    memory_total_bytes: int
    power_watts: float
    power_limit_watts: float
    temperature_celsius: float
    sm_clock_hertz: float
    memory_clock_hertz: float
    energy_joules: float | None  # since driver load; None where NVML cannot tell
    processes: dict[str, int] = field(default_factory=dict)  # process name -> GPU memory bytes


def _s(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() or f"pid{pid}"
    except OSError:
        return "unknown"  # another container's PID namespace: NVML sees it, /proc does not


def _processes(nv: object, h: object) -> dict[str, int]:
    procs = nv.nvmlDeviceGetComputeRunningProcesses(h)  # type: ignore[attr-defined]
    by_name: dict[str, int] = {}
    for p in procs:
        used = int(p.usedGpuMemory or 0)  # None when the driver hides it (no permission)
        name = _process_name(int(p.pid))
        by_name[name] = by_name.get(name, 0) + used
    top = sorted(by_name.items(), key=lambda kv: -kv[1])
    out = dict(top[:MAX_PROCESSES])
    if rest := sum(v for _, v in top[MAX_PROCESSES:]):
        out["other"] = rest
    return out


class Nvml:
    """An NVML session; `available` is False where there is no GPU or driver (then `read()` returns [])."""

    def __init__(self) -> None:
        self.error = ""
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nv = pynvml
            self.count = pynvml.nvmlDeviceGetCount()
        except Exception as exc:  # noqa: BLE001 - no driver / no library: the exporter falls back to host metrics
            self._nv = None
            self.count = 0
            self.error = f"{type(exc).__name__}: {exc}"

    @property
    def available(self) -> bool:
        return self._nv is not None and self.count > 0

    def read(self) -> list[GpuReading]:
        if not self.available:
            return []
        nv = self._nv
        out = []
        for i in range(self.count):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            util = nv.nvmlDeviceGetUtilizationRates(h)
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            try:
                energy: float | None = nv.nvmlDeviceGetTotalEnergyConsumption(h) / 1000.0  # mJ -> J
            except nv.NVMLError:
                energy = None
            out.append(
                GpuReading(
                    index=i,
                    name=_s(nv.nvmlDeviceGetName(h)),
                    uuid=_s(nv.nvmlDeviceGetUUID(h)),
                    utilization_ratio=util.gpu / 100.0,
                    memory_utilization_ratio=util.memory / 100.0,
                    memory_used_bytes=int(mem.used),
                    memory_total_bytes=int(mem.total),
                    power_watts=nv.nvmlDeviceGetPowerUsage(h) / 1000.0,  # mW -> W
                    power_limit_watts=nv.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0,
                    temperature_celsius=float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
                    sm_clock_hertz=nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM) * 1e6,  # MHz -> Hz
                    memory_clock_hertz=nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM) * 1e6,
                    energy_joules=energy,
                    processes=_processes(nv, h),
                )
            )
        return out

    def close(self) -> None:
        if self._nv is not None:
            self._nv.nvmlShutdown()
            self._nv = None
