"""Parsers of `nvidia-smi topo -m` and `numactl --hardware`, and the d53.e1 runner on a gpu_topology report.

fixtures/h100x2_*.txt were recorded on the lab's 2x H100 80GB machine (a VM: one NUMA node, NVLink NV18
between the GPUs) on 2026-11-27 with `nvidia-smi topo -m > ...` and `numactl --hardware > ...`; nvidia-smi
underlines the header with ANSI escapes even when piped, which the parser must strip. The 4-GPU two-socket
sample below is constructed in the same format to cover SYS paths, NICs and two NUMA nodes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ailab.contract import Context, Skip
from workloads.sched.experiments.topology import TopologyParams, gpu_topology
from workloads.sched.topology import parse_cpulist, parse_numactl_hardware, parse_nvidia_smi_topo

FIXTURES = Path(__file__).resolve().parent / "fixtures"

TWO_SOCKET = (
    "\tGPU0\tGPU1\tGPU2\tGPU3\tNIC0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\n"
    "GPU0\t X \tNV4\tSYS\tSYS\tPIX\t0-15,32-47\t0\t\tN/A\n"
    "GPU1\tNV4\t X \tSYS\tSYS\tPIX\t0-15,32-47\t0\t\tN/A\n"
    "GPU2\tSYS\tSYS\t X \tNV4\tSYS\t16-31,48-63\t1\t\tN/A\n"
    "GPU3\tSYS\tSYS\tNV4\t X \tSYS\t16-31,48-63\t1\t\tN/A\n"
    "NIC0\tPIX\tPIX\tSYS\tSYS\t X \t\t\t\t\n"
    "\nLegend:\n\n  X    = Self\n  SYS  = Connection traversing PCIe as well as the SMP interconnect\n"
    "\nNIC Legend:\n\n  NIC0: mlx5_0\n"
)
TWO_NODES = (
    "available: 2 nodes (0-1)\n"
    "node 0 cpus: 0 1 2 3\nnode 0 size: 257000 MB\nnode 0 free: 1000 MB\n"
    "node 1 cpus: 4 5 6 7\nnode 1 size: 258000 MB\nnode 1 free: 2000 MB\n"
    "node distances:\nnode   0   1 \n  0:  10  21 \n  1:  21  10 \n"
)


def test_recorded_h100_pair_is_linked_by_nvlink():
    topo = parse_nvidia_smi_topo((FIXTURES / "h100x2_nvidia_smi_topo_m.txt").read_text())
    assert topo.gpus == ["GPU0", "GPU1"]
    assert topo.links[("GPU0", "GPU1")] == "NV18"
    assert topo.links[("GPU1", "GPU1")] == "X"
    assert topo.affinity["GPU0"] == {"CPU Affinity": "0-31", "NUMA Affinity": "0", "GPU NUMA ID": "N/A"}


def test_recorded_numactl_has_one_node_and_ignores_free_memory():
    (node,) = parse_numactl_hardware((FIXTURES / "h100x2_numactl_hardware.txt").read_text())
    assert node.id == 0 and len(node.cpus) == 32 and node.distances == [10]
    assert node.size_mib == 4699


def test_two_socket_sample_has_sys_paths_nics_and_two_nodes():
    topo = parse_nvidia_smi_topo(TWO_SOCKET)
    assert topo.devices == ["GPU0", "GPU1", "GPU2", "GPU3", "NIC0"]
    assert topo.links[("GPU0", "GPU2")] == "SYS" and topo.links[("GPU0", "NIC0")] == "PIX"
    assert topo.nics == {"NIC0": "mlx5_0"}
    assert topo.affinity["GPU2"]["NUMA Affinity"] == "1"
    nodes = parse_numactl_hardware(TWO_NODES)
    assert [n.distances for n in nodes] == [[10, 21], [21, 10]]
    assert [n.size_mib for n in nodes] == [257000, 258000]


def test_cpulist():
    assert parse_cpulist("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpulist("N/A") == []


def test_unreadable_output_names_the_problem():
    with pytest.raises(ValueError, match="no header line starting with GPU0"):
        parse_nvidia_smi_topo("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    with pytest.raises(ValueError, match="no 'node N cpus:' lines"):
        parse_numactl_hardware("No NUMA available on this system")


def _run(tmp_path: Path, report: dict):
    path = tmp_path / "gpu_topology.json"
    path.write_text(json.dumps(report))
    ctx = Context(experiment_id="d53.e1", device="cpu", quick=False, workdir=tmp_path)
    return gpu_topology(ctx, TopologyParams(report=str(path)))


def test_runner_reads_the_gpu_topology_role_report(tmp_path: Path):
    out = _run(tmp_path, {"nvidia_smi_topo": TWO_SOCKET, "numactl_hardware": TWO_NODES, "gpus": []})
    tables = {t.name: t for t in out.tables}
    assert len(tables["gpu_links"].rows) == 6  # 4 GPUs -> 6 pairs
    assert ["GPU0", "GPU1", "NV4", 1, "bonded NVLinks"] in tables["gpu_links"].rows
    aff = tables["gpu_affinity"].rows[2]
    assert aff[:4] == ["GPU2", "16-31,48-63", 32, "1"] and aff[4] == "numactl --cpunodebind=1 --membind=1"
    assert tables["numa_nodes"].rows[1] == [1, 4, 258000, "21 10"]
    assert any("4 GPU pair(s) cross NUMA nodes" in n for n in out.notes)


def test_runner_skips_a_report_from_a_host_without_gpu(tmp_path: Path):
    with pytest.raises(Skip, match="no nvidia-smi output"):
        _run(tmp_path, {"nvidia_smi_topo": None, "numactl_hardware": TWO_NODES, "gpus": []})
