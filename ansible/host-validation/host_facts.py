"""Write the provenance of a host-validation run (host, GPU, driver, toolchain, tool versions) as JSON.

Run by run.sh on the validated host: host_facts.py OUT.json STARTED ENDED RUN1_RC RUN2_RC TESTINFRA_RC
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata


def sh(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def gpus() -> list[dict]:
    query = "--query-gpu=index,name,memory.total,driver_version"
    out = []
    for line in sh("nvidia-smi", query, "--format=csv,noheader,nounits").splitlines():
        index, name, memory, driver = (x.strip() for x in line.split(","))
        out.append({"index": int(index), "name": name, "memory_mib": int(memory), "driver": driver})
    return out


def cpu_model() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    path, started, ended, rc1, rc2, rct = sys.argv[1:7]
    g = gpus()
    nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    with open("/proc/1/comm", encoding="utf-8") as f:
        init = f.read().strip()
    facts = {
        "started_utc": started,
        "ended_utc": ended,
        "host": platform.node(),
        "user": sh("id", "-un"),
        "os": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": g,
        "driver": g[0]["driver"] if g else "",
        "nvcc": next(iter(re.findall(r"release [0-9.]+, V[0-9.]+", sh(nvcc, "--version"))), ""),
        "init": init,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "packages": {d: version(d) for d in ("ansible-core", "pytest-testinfra", "pytest", "jinja2")},
        "run1_rc": int(rc1),
        "run2_rc": int(rc2),
        "testinfra_rc": int(rct),
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(facts, f, indent=1)


if __name__ == "__main__":
    main()
