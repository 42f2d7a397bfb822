"""Where the host side runs: CPU sets for pinning, and the GPU's NUMA node (from sysfs)."""

from __future__ import annotations

import os
from pathlib import Path


def numa_nodes() -> dict[int, set[int]]:
    """NUMA node → CPUs, from /sys; {0: all CPUs} where sysfs shows no nodes."""
    out: dict[int, set[int]] = {}
    for d in sorted(Path("/sys/devices/system/node").glob("node[0-9]*")):
        out[int(d.name[4:])] = parse_cpulist((d / "cpulist").read_text())
    return out or {0: set(os.sched_getaffinity(0))}


def parse_cpulist(text: str) -> set[int]:
    """'0-3,8,10-11' → {0, 1, 2, 3, 8, 10, 11}."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def pci_address(props: object) -> str:
    """dddd:bb:dd.0 of a torch device's properties: torch gives the bus as an int (domain, bus and device fields),
    some builds a ready-made string."""
    bus = getattr(props, "pci_bus_id", None)
    if isinstance(bus, str):
        return bus
    dom, dev = getattr(props, "pci_domain_id", 0), getattr(props, "pci_device_id", 0)
    return f"{dom:04x}:{bus or 0:02x}:{dev:02x}.0"


def gpu_numa_node(pci_bus_id: str) -> int | None:
    """The GPU's NUMA node from /sys/bus/pci/devices/<bus id>/numa_node (None when unknown or -1)."""
    bus = pci_bus_id.lower()
    if bus.count(":") == 2 and len(bus.split(":")[0]) == 8:
        bus = bus[4:]  # NVML's 8-digit domain → sysfs's 4
    f = Path("/sys/bus/pci/devices") / bus / "numa_node"
    try:
        n = int(f.read_text().strip())
    except (OSError, ValueError):
        return None
    return n if n >= 0 else None
