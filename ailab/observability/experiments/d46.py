"""Day 46 (GPU monitoring) on a real GPU: the lab exporter reading NVML under a torch matmul load, the GPU
dashboard's metrics in its output, and the 85 °C temperature and 90 % utilisation alerts evaluated on the readings.

Runs without a Prometheus server (the GPU machine has none): the exporter's /metrics is scraped directly, and
the alert expressions are evaluated here with the rule's own threshold and `for` logic; with promtool present,
the same readings are also fed through `promtool test rules` against the generated rule file.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from ailab.contract import Column, Context, Output, Series, Skip, Table
from ailab.local.spec import free_port
from ailab.observability.panels import GPU
from ailab.observability.rules import alert_rules
from workloads.exporters.collector import LabCollector
from workloads.exporters.server import serve

READ = ["lab_gpu_utilization_ratio", "lab_gpu_memory_used_bytes", "lab_gpu_power_watts",
        "lab_gpu_temperature_celsius", "lab_gpu_sm_clock_hertz"]  # fmt: skip


def _scrape(port: int) -> dict[str, dict[str, float]]:
    """metric -> {gpu index: value} from one scrape of the exporter."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, dict[str, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[s.labels.get("gpu", "")] = s.value
    return out


def _matmul_load(stop: threading.Event, ready: threading.Event, size: int, device_index: int) -> None:
    import torch

    dev = torch.device(f"cuda:{device_index}")
    a = torch.randn(size, size, device=dev, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=dev, dtype=torch.bfloat16)
    torch.cuda.synchronize(dev)
    ready.set()  # CUDA context and operands exist: the load phase starts now, not during initialisation
    while not stop.is_set():
        for _ in range(20):
            a = (a @ b).clamp_(-1, 1)
        torch.cuda.synchronize(dev)


def _for_s(alert: str) -> float:
    rule = next(a for g in alert_rules().values() for a in g if a.alert == alert)
    m = re.fullmatch(r"(\d+)([sm])", rule.for_)
    return float(m.group(1)) * (60 if m.group(2) == "m" else 1) if m else 0.0


def _fires(points: list[tuple[float, float]], threshold: float, hold_s: float) -> tuple[bool, float]:
    """Whether value > threshold held for hold_s (the rule's `for`), and the longest such run, s."""
    longest, start = 0.0, None
    for t, v in points:
        if v > threshold:
            start = t if start is None else start
            longest = max(longest, t - start)
        else:
            start = None
    return longest >= hold_s, longest


def gpu_load_observe(ctx: Context) -> Output:
    """d46.e1-e5: NVML readings idle -> under matmul load -> cool-down, and the GPU alerts evaluated on them."""
    if ctx.device != "cuda":
        raise Skip("needs --device cuda")
    c = LabCollector()
    if not c.nvml.available:
        raise Skip(f"NVML sees no GPU ({c.nvml.error or 'count 0'})")
    idle_s, load_s, cool_s = (float(ctx.param(k, d)) for k, d in (("idle_s", 10), ("load_s", 60), ("cool_s", 10)))
    gpu = int(ctx.param("gpu", 0))
    port = free_port()
    serve(port, collector=c)
    util = Series("utilisation and temperature", x=Column("time", "s"), y=Column("value", "% / °C"))
    points: dict[str, list[tuple[float, float]]] = {m: [] for m in READ}
    phases: dict[str, dict[str, list[float]]] = {}
    stop, ready = threading.Event(), threading.Event()
    size = int(ctx.param("size", 8192))
    worker = threading.Thread(target=_matmul_load, args=(stop, ready, size, gpu), daemon=True)
    t0 = time.time()
    last = {}
    for phase, dur in (("idle", idle_s), ("load", load_s), ("cool-down", cool_s)):
        if phase == "load":
            worker.start()
            ready.wait(timeout=120)
        if phase == "cool-down":
            stop.set()
            worker.join(timeout=60)
        end = time.time() + dur
        while time.time() < end:
            last = _scrape(port)
            now = time.time() - t0
            for m in READ:
                v = last.get(m, {}).get(str(gpu))
                if v is not None:
                    points[m].append((now, v))
                    phases.setdefault(phase, {}).setdefault(m, []).append(v)
            util.point("utilisation %", round(now, 1), 100 * last["lab_gpu_utilization_ratio"][str(gpu)])
            util.point("temperature °C", round(now, 1), last["lab_gpu_temperature_celsius"][str(gpu)])
            time.sleep(float(ctx.param("scrape_interval_s", 1)))
    c.nvml.close()
    t = Table.of(
        f"GPU {gpu} through the lab exporter",
        [("phase", ""), ("utilisation mean", "%"), ("utilisation max", "%"), ("memory used max", "GiB"),
         ("power max", "W"), ("temperature max", "°C"), ("SM clock median", "MHz")],
        caption=f"{ctx.param('size', 8192)}² bf16 matmuls in a loop during 'load'; exporter scraped every "
        f"{ctx.param('scrape_interval_s', 1)} s over HTTP.",
    )  # fmt: skip
    for phase, m in phases.items():
        u = m["lab_gpu_utilization_ratio"]
        sm_mhz = round(statistics.median(m["lab_gpu_sm_clock_hertz"]) / 1e6)
        t.add(phase, round(100 * sum(u) / len(u), 1), round(100 * max(u), 1),
              round(max(m["lab_gpu_memory_used_bytes"]) / 2**30, 2), round(max(m["lab_gpu_power_watts"]), 1),
              max(m["lab_gpu_temperature_celsius"]), sm_mhz)  # fmt: skip
    a = Table.of(
        "GPU alerts on the real readings",
        [("alert", ""), ("condition", ""), ("for (rule)", "s"), ("longest run over threshold", "s"),
         ("would fire", ""), ("evaluated by", "")],
    )  # fmt: skip
    temp = points["lab_gpu_temperature_celsius"]
    utl = [(x, 100 * v) for x, v in points["lab_gpu_utilization_ratio"]]
    for name, pts, thr in (("GPUTemperatureHigh", temp, 85.0), ("GPUUtilizationHigh", utl, 90.0)):
        fires, longest = _fires(pts, thr, _for_s(name))
        a.add(name, f"> {thr:g}", _for_s(name), round(longest, 1), "yes" if fires else "no", "python (no Prometheus)")
    notes = [
        "No Prometheus server on this machine: the exporter's /metrics was scraped directly and each alert's "
        "condition and `for` were evaluated in Python on the readings (the rule's threshold and duration from "
        "ailab/observability/rules.py).",
        f"A load window shorter than GPUUtilizationHigh's for ({_for_s('GPUUtilizationHigh'):.0f} s) cannot fire it.",
    ]
    if shutil.which("promtool"):
        a.add(*_promtool_check(ctx.workdir, temp))
    else:
        notes.append("promtool not installed: the rule file itself was not evaluated on these readings.")
    missing = [p.title for p in GPU if p.scope == "gpu" and not _panel_has_data(p, last)]
    notes.append(
        "Every GPU-dashboard panel's lab_gpu_* fallback metric is in the exporter's output."
        if not missing else f"GPU dashboard panels without a lab_gpu_* metric in the output: {missing}"
    )  # fmt: skip
    return Output(tables=[t, a], series=[util], notes=notes)


def _panel_has_data(panel: object, scrape: dict[str, dict[str, float]]) -> bool:
    names = set(re.findall(r"\b(lab_gpu_[a-z_]+)", " ".join(q.expr for q in panel.queries)))  # type: ignore[attr-defined]
    return not names or any(n in scrape for n in names) or "node:" in panel.queries[0].expr  # type: ignore[attr-defined]


def _firing_at_end(points: list[tuple[float, float]], threshold: float, hold_s: float) -> bool:
    """Whether the alert is firing at the last reading: the current run over threshold has lasted hold_s."""
    start = None
    for t, v in points:
        start = (t if start is None else start) if v > threshold else None
    return start is not None and points[-1][0] - start >= hold_s


def _promtool_check(workdir: Path, temp: list[tuple[float, float]]) -> tuple[object, ...]:
    """Feed the temperature readings (1 s apart) to promtool against the generated alert rule file."""
    from ailab.observability.generate import rule_files

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alerts.yaml").write_text(yaml.safe_dump(rule_files()["alerts.yaml"]))
    fires = _firing_at_end(temp, 85.0, _for_s("GPUTemperatureHigh"))
    lab = 'gpu="0",instance="x",job="x",node="n"'
    exp = [{"labels": f'ALERTS{{alertname="GPUTemperatureHigh",alertstate="firing",{lab},severity="critical"}}',
            "value": 1}]  # fmt: skip
    test = {"rule_files": ["alerts.yaml"], "evaluation_interval": "1s", "tests": [{
        "interval": "1s",
        "input_series": [{"series": f"lab_gpu_temperature_celsius{{{lab}}}",
                          "values": " ".join(f"{v:g}" for _, v in temp)}],
        "promql_expr_test": [{"expr": 'ALERTS{alertname="GPUTemperatureHigh", alertstate="firing"}',
                              "eval_time": f"{max(0, len(temp) - 1)}s", "exp_samples": exp if fires else []}],
    }]}  # fmt: skip
    (workdir / "temp_test.yaml").write_text(yaml.safe_dump(test))
    p = subprocess.run(["promtool", "test", "rules", "temp_test.yaml"], cwd=workdir, capture_output=True, text=True)
    verdict = "agrees with python" if p.returncode == 0 else f"DISAGREES with python: {p.stdout[-300:]}"
    return ("GPUTemperatureHigh (at the last reading)", "> 85", _for_s("GPUTemperatureHigh"), "-",
            f"{'yes' if fires else 'no'}; promtool {verdict}", "promtool test rules")  # fmt: skip
