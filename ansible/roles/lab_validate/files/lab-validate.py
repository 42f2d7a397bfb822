#!/usr/bin/python3
"""Check a lab node end to end and print a JSON report; "ok": true is the success signal.

Installed and run by the lab_validate Ansible role. Checks that need a GPU are recorded as "skip" with the
reason on hosts without one; services the playbook could not manage (no systemd) are listed under
"not_manageable", and a check of such a service that finds nothing running is a "skip" with that reason.
The report holds no timestamps so it only changes when the node does.
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, timeout=120):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return p.returncode, (p.stdout + p.stderr).strip()


def check(name, status, detail):
    return {"name": name, "status": status, "detail": detail}


def scrape(port, metric, attempts=15):
    url = f"http://127.0.0.1:{port}/metrics"
    for attempt in range(attempts):  # an exporter restarted by a handler a moment ago may not listen yet
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = r.read().decode("utf-8", "replace")
            break
        except OSError as exc:
            if attempt == attempts - 1:
                return False, f"{url}: {exc}"
            time.sleep(1)
    found = any(line.startswith(metric) for line in body.splitlines())
    return found, "{} {} {}".format(url, "has" if found else "lacks", metric)


def unmanaged_skip(a, service, detail):
    """A failed check of a service the playbook could not manage is a skip that says why."""
    for u in a.unmanaged:
        if u.get("service") == service:
            return check_skip(service, u, detail)
    return None


def check_skip(service, u, detail):
    how = (" By hand: " + u["how"]) if u.get("how") else ""
    return "{} {} ({}).{}".format(service, u.get("reason", "is not manageable here"), detail, how)


def gpu_checks(a, no_gpu):
    out = []
    if no_gpu:
        for name in ("driver_loaded", "nvidia_smi_gpus", "cuda_sample", "container_runtime_gpu", "dcgm"):
            out.append(check(name, "skip", no_gpu))
        return out
    version = "/proc/driver/nvidia/version"
    loaded = os.path.exists(version)
    if loaded:
        with open(version) as f:
            first_line = f.readline().strip()
    out.append(
        check(
            "driver_loaded",
            "pass" if loaded else "fail",
            first_line if loaded else f"{version} missing: module not loaded",
        )
    )
    rc, text = run(["nvidia-smi", "--query-gpu=index,name", "--format=csv,noheader"])
    seen = len([line for line in text.splitlines() if line.strip()]) if rc == 0 else 0
    want = a.expected_gpus or a.pci_gpus
    out.append(
        check(
            "nvidia_smi_gpus",
            "pass" if rc == 0 and seen == want else "fail",
            f"nvidia-smi lists {seen} GPU(s), expected {want}" if rc == 0 else text[-300:],
        )
    )
    if a.cuda_sample:
        nvcc = os.path.join(a.cuda_home, "bin", "nvcc")
        if not os.path.exists(nvcc):
            out.append(check("cuda_sample", "fail", f"{nvcc} missing"))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                exe = os.path.join(tmp, "vector_add")
                rc, text = run([nvcc, "-o", exe, os.path.join(HERE, "vector_add.cu")], timeout=300)
                if rc == 0:
                    rc, text = run([exe])
                out.append(check("cuda_sample", "pass" if rc == 0 and "PASS" in text else "fail", text[-300:]))
    if a.container_runtime:
        rc, text = run(["nvidia-container-cli", "--load-kmods", "info"])
        ok = rc == 0 and "Device Index" in text
        out.append(
            check(
                "container_runtime_gpu",
                "pass" if ok else "fail",
                f"nvidia-container-cli sees {text.count('Device Index')} GPU(s)" if ok else text[-300:],
            )
        )
    if a.dcgm:
        rc, text = run(["dcgmi", "discovery", "--list"])
        ok, detail = scrape(a.dcgm_exporter_port, "DCGM_FI_DEV_GPU_UTIL")
        skip = None if ok else unmanaged_skip(a, "dcgm-exporter", detail)
        if skip:
            out.append(check("dcgm", "skip", skip))
        else:
            out.append(
                check(
                    "dcgm",
                    "pass" if rc == 0 and ok else "fail",
                    detail if rc == 0 else "dcgmi discovery failed: " + text[-300:],
                )
            )
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    flag = {"type": lambda s: s.lower() == "true"}
    p.add_argument("--gpu-present", required=True, **flag)
    p.add_argument("--pci-gpus", type=int, default=0)
    p.add_argument("--expected-gpus", type=int, default=0)
    p.add_argument("--require-gpu", default=True, **flag)
    p.add_argument("--virtualization", default="none")
    p.add_argument("--cuda-home", default="/usr/local/cuda")
    p.add_argument("--cuda-sample", default=True, **flag)
    p.add_argument("--container-runtime", default=True, **flag)
    p.add_argument("--dcgm", default=True, **flag)
    p.add_argument("--dcgm-exporter-port", type=int, default=9400)
    p.add_argument("--node-exporter", default=True, **flag)
    p.add_argument("--node-exporter-port", type=int, default=9100)
    p.add_argument(
        "--unmanaged",
        type=json.loads,
        default=[],
        help="JSON list of {service, component, reason, how} the playbook could not manage",
    )
    p.add_argument("--components", default="", help="comma-separated lab_components of this host (for testinfra)")
    a = p.parse_args()

    no_gpu = "" if a.gpu_present else f"no NVIDIA GPU on the PCI bus (virtualization: {a.virtualization})"
    checks = gpu_checks(a, no_gpu)
    if a.node_exporter:
        ok, detail = scrape(a.node_exporter_port, "node_cpu_seconds_total", attempts=1 if a.unmanaged else 15)
        skip = None if ok else unmanaged_skip(a, "prometheus-node-exporter", detail)
        checks.append(check("node_exporter", "skip" if skip else "pass" if ok else "fail", skip or detail))
    failed = [c["name"] for c in checks if c["status"] == "fail"]
    ok = not failed and (a.gpu_present or not a.require_gpu)
    report = {
        "ok": ok,
        "gpu_present": a.gpu_present,
        "gpu_required": a.require_gpu,
        "gpus_on_pci_bus": a.pci_gpus,
        "virtualization": a.virtualization,
        "failed": failed,
        "checks": checks,
        "components": [c for c in a.components.split(",") if c],
        "not_manageable": sorted(a.unmanaged, key=lambda u: u.get("service", "")),
    }
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()
