"""GPU/CPU topology from `nvidia-smi topo -m` and `numactl --hardware` (curriculum day 53).

The parsers are pure functions over the tools' text; `run` is the d53.e1 runner. It reads the report the
`gpu_topology` Ansible role writes (param `report`) or runs the tools live, which needs an NVIDIA GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Best to worst path between two devices, as nvidia-smi's legend orders them.
LINK_RANK = {"X": 0, "NV": 1, "PIX": 2, "PXB": 3, "PHB": 4, "NODE": 5, "SYS": 6}
LINK_MEANING = {
    "X": "self",
    "NV": "bonded NVLinks",
    "PIX": "at most one PCIe bridge",
    "PXB": "several PCIe bridges, no host bridge",
    "PHB": "PCIe host bridge (through the CPU)",
    "NODE": "PCIe host bridges within one NUMA node",
    "SYS": "crosses the inter-socket link between NUMA nodes",
}
AFFINITY_COLUMNS = ("CPU Affinity", "NUMA Affinity", "GPU NUMA ID")


@dataclass(frozen=True)
class GpuTopology:
    """The matrix of `nvidia-smi topo -m`: devices (GPUn, NICn), links between them and each GPU's affinity."""

    devices: list[str]
    links: dict[tuple[str, str], str]
    affinity: dict[str, dict[str, str]]  # GPUn -> {"CPU Affinity": "0-55", "NUMA Affinity": "0", ...}
    nics: dict[str, str] = field(default_factory=dict)  # NIC0 -> mlx5_0

    @property
    def gpus(self) -> list[str]:
        return [d for d in self.devices if d.startswith("GPU")]


@dataclass(frozen=True)
class NumaNode:
    id: int
    cpus: list[int]
    size_mib: int
    distances: list[int]


def link_kind(link: str) -> str:
    """NV18 -> NV; other link codes are returned as they are."""
    return "NV" if link.startswith("NV") else link


def parse_nvidia_smi_topo(text: str) -> GpuTopology:
    """Parse `nvidia-smi topo -m`; raises ValueError naming the line it cannot read."""
    lines = [ANSI.sub("", line).rstrip() for line in text.splitlines()]
    header_at = next((i for i, line in enumerate(lines) if re.match(r"^\s+GPU0\b", line)), None)
    if header_at is None:
        raise ValueError("nvidia-smi topo -m: no header line starting with GPU0")
    header = [c.strip() for c in lines[header_at].split("\t") if c.strip()]
    devices = [h for h in header if h not in AFFINITY_COLUMNS]
    links: dict[tuple[str, str], str] = {}
    affinity: dict[str, dict[str, str]] = {}
    for line in lines[header_at + 1 :]:
        if not line.strip():
            break
        cells = [c.strip() for c in line.split("\t") if c.strip()]
        name, values = cells[0], cells[1:]
        if name not in devices:
            raise ValueError(f"nvidia-smi topo -m: row {name!r} is not a device of the header {devices}")
        if len(values) < len(devices):
            raise ValueError(f"nvidia-smi topo -m: row {name!r} has {len(values)} cells, expected >= {len(devices)}")
        for other, value in zip(devices, values, strict=False):
            links[(name, other)] = value
        if name.startswith("GPU"):
            affinity[name] = dict(zip(header[len(devices) :], values[len(devices) :], strict=False))
    nics = dict(re.findall(r"^\s*(NIC\d+):\s*(\S+)\s*$", "\n".join(lines), flags=re.M))
    return GpuTopology(devices=devices, links=links, affinity=affinity, nics=nics)


def parse_cpulist(text: str) -> list[int]:
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11]; 'N/A' -> []."""
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if re.fullmatch(r"\d+-\d+", part):
            lo, hi = map(int, part.split("-"))
            out.extend(range(lo, hi + 1))
        elif part.isdigit():
            out.append(int(part))
    return out


def parse_numactl_hardware(text: str) -> list[NumaNode]:
    """Parse `numactl --hardware` into NUMA nodes with CPUs, memory size (MiB) and distances."""
    cpus: dict[int, list[int]] = {}
    sizes: dict[int, int] = {}
    distances: dict[int, list[int]] = {}
    in_distances = False
    for line in text.splitlines():
        if m := re.match(r"^node (\d+) cpus:(.*)$", line):
            cpus[int(m[1])] = [int(c) for c in m[2].split()]
        elif m := re.match(r"^node (\d+) size: (\d+) MB", line):
            sizes[int(m[1])] = int(m[2])
        elif line.startswith("node distances:"):
            in_distances = True
        elif in_distances and (m := re.match(r"^\s*(\d+):\s+([\d\s]+)$", line)):
            distances[int(m[1])] = [int(d) for d in m[2].split()]
    if not cpus:
        raise ValueError("numactl --hardware: no 'node N cpus:' lines")
    return [NumaNode(n, cpus[n], sizes.get(n, 0), distances.get(n, [])) for n in sorted(cpus)]
