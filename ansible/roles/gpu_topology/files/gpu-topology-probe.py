#!/usr/bin/python3
"""Print this host's GPU/PCIe/NUMA topology as JSON (installed by the gpu_topology Ansible role).

Reads sysfs for every NVIDIA display/3D controller (works without a driver), and adds the raw output of
`nvidia-smi topo -m` and `numactl --hardware` when those tools are present. Free-memory lines are dropped
so the report only changes when the topology does.
"""

import glob
import json
import os
import shutil
import subprocess


def read(path, default=""):
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return default


def run(cmd):
    if not shutil.which(cmd[0]):
        return None
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout if p.returncode == 0 else None


def gpus():
    out = []
    for dev in sorted(glob.glob("/sys/bus/pci/devices/*")):
        if read(dev + "/vendor") != "0x10de" or not read(dev + "/class").startswith(("0x0300", "0x0302")):
            continue
        out.append(
            {
                "pci_bus_id": os.path.basename(dev),
                "device_id": read(dev + "/device"),
                "numa_node": int(read(dev + "/numa_node", "-1") or -1),
                "local_cpulist": read(dev + "/local_cpulist"),
                "link_speed": read(dev + "/current_link_speed"),
                "link_width": read(dev + "/current_link_width"),
                "max_link_speed": read(dev + "/max_link_speed"),
                "max_link_width": read(dev + "/max_link_width"),
            }
        )
    return out


def numa_nodes():
    nodes = []
    for node in sorted(glob.glob("/sys/devices/system/node/node[0-9]*"), key=lambda p: int(p.rsplit("node", 1)[1])):
        total_kb = 0
        for line in read(node + "/meminfo").splitlines():
            if "MemTotal:" in line:
                total_kb = int(line.split()[-2])
        nodes.append(
            {
                "id": int(node.rsplit("node", 1)[1]),
                "cpulist": read(node + "/cpulist"),
                "memory_mib": total_kb // 1024,
                "distances": [int(d) for d in read(node + "/distance").split()],
            }
        )
    return nodes


def main():
    numactl = run(["numactl", "--hardware"])
    if numactl is not None:
        numactl = "\n".join(line for line in numactl.splitlines() if " free:" not in line) + "\n"
    report = {
        "gpus": gpus(),
        "numa_nodes": numa_nodes(),
        "nvidia_smi_topo": run(["nvidia-smi", "topo", "-m"]),
        "numactl_hardware": numactl,
    }
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()
