"""Day 13 (Prometheus in depth) on the local platform: bucket design, exemplars, Kubernetes pod discovery
relabeling (run by the real Prometheus on file-discovered pod metadata) and an Alertmanager routing drill."""

from __future__ import annotations

import json
import math
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import yaml

from ailab.contract import Context, Output, Table
from ailab.observability import webhook
from ailab.observability.experiments.common import exact_quantile, histogram_quantile, metered_traffic
from ailab.observability.scrape import kubernetes_config
from ailab.observability.stack import observed_platform
from workloads.exporters.traffic import BUCKETS

QUANTILES = (0.5, 0.95, 0.99)


def designed_buckets(samples: list[float], n: int = 12) -> tuple[float, ...]:
    """Log-spaced bounds from half the observed P1 to twice the observed P99.9, rounded to 2 significant digits."""
    lo, hi = exact_quantile(samples, 0.01) / 2, exact_quantile(samples, 0.999) * 2
    bounds = [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]
    return tuple(sorted({float(f"{b:.2g}") for b in bounds}))


def bucket_design(ctx: Context) -> Output:
    """d13.e1: quantile error of coarse, fine and data-designed latency buckets on real Triton latencies."""
    window = float(ctx.param("window_s", 40))
    t = Table.of(
        "latency bucket layouts",
        [("layout", ""), ("buckets", "buckets"), ("range", "ms")]
        + [(f"P{int(q * 100)} error", "%") for q in QUANTILES]
        + [("worst error", "%")],
        caption="Every latency the client measured is replayed into each layout; error = Prometheus-style "
        "histogram_quantile vs the exact nearest-rank quantile of the same samples.",
    )
    with (
        observed_platform(ctx.workdir / "stack", services=["triton", "exporter", "prometheus"]) as s,
        metered_traffic(s, rps=float(ctx.param("rps", 40)), workers=3, keep_samples=True) as tr,
    ):
        time.sleep(window)
        samples = list(tr.samples)
        qps_count = s.prom.value("sum(rate(lab_loadgen_request_duration_seconds_count[30s]))")
        qps_triton = s.prom.value("sum(rate(nv_inference_request_success[30s]))")
    layouts = {**BUCKETS, "designed": designed_buckets(samples)}
    for name, bounds in layouts.items():
        errs = [
            100 * (histogram_quantile(q, bounds, samples) - exact_quantile(samples, q)) / exact_quantile(samples, q)
            for q in QUANTILES
        ]
        t.add(name, len(bounds), f"{bounds[0] * 1000:g}-{bounds[-1] * 1000:g}", *[round(e, 1) for e in errs],
              round(max(abs(e) for e in errs), 1))  # fmt: skip
    q = Table.of(
        "QPS needs no histogram",
        [("source", ""), ("QPS", "req/s")],
        caption="rate() of the histogram's _count is the request rate; a counter is the right type for QPS.",
    )
    q.add("rate(lab_loadgen_request_duration_seconds_count[30s])", round(qps_count or math.nan, 2))
    q.add("rate(nv_inference_request_success[30s])", round(qps_triton or math.nan, 2))
    return Output(
        tables=[t, q],
        notes=[
            f"{len(samples)} latencies measured; designed bounds (s): {list(layouts['designed'])}.",
            "Put bucket bounds where the quantiles you alert on live (the SLO threshold should be a bound); "
            "each bucket is one more series per label set.",
        ],
    )


def exemplars(ctx: Context) -> Output:
    """d13.e2: trace-id exemplars of the load generator's latency histogram, read back through the query API."""
    window = float(ctx.param("window_s", 20))
    t = Table.of(
        "exemplars through /api/v1/query_exemplars",
        [("bucket (le)", "s"), ("exemplars", "exemplars"), ("slowest exemplar", "ms"), ("its trace_id", "")],
    )
    with (
        observed_platform(ctx.workdir / "stack", services=["triton", "exporter", "prometheus"]) as s,
        metered_traffic(s, rps=float(ctx.param("rps", 30)), workers=3),
    ):
        t0 = time.time()
        time.sleep(window)
        found = s.prom.exemplars("lab_loadgen_request_duration_seconds_bucket", t0, time.time())
    total = 0
    for series in sorted(found, key=lambda x: float(x["seriesLabels"].get("le", "inf").replace("+Inf", "inf"))):
        ex = series["exemplars"]
        total += len(ex)
        slow = max(ex, key=lambda e: float(e["value"]))
        t.add(series["seriesLabels"].get("le"), len(ex), round(float(slow["value"]) * 1000, 2),
              slow["labels"]["trace_id"])  # fmt: skip
    return Output(
        tables=[t],
        notes=[
            f"{total} exemplars returned for {window:.0f} s of traffic. Each request also carried a W3C traceparent "
            "with the same trace id, so a tracing backend would show that request's spans.",
            "Not done here: Triton 2.51 only joins an incoming traceparent in --trace-config mode=opentelemetry, "
            "which exports to an OTLP collector this machine does not run; the link stops at the client's trace id.",
        ],
    )


PODS = [  # (pod, app label, container port name, prometheus.io annotations, address role)
    ("triton-0", "triton", "metrics", {}, "triton"),
    ("dcgm-exporter-abc", "dcgm-exporter", "metrics", {}, "closed"),
    ("node-exporter-xyz", "node-exporter", "metrics", {}, "closed"),
    ("lab-exporter-1", "lab-exporter", "http", {"scrape": "true", "port": "PORT", "path": "/metrics"}, "exporter"),
    ("redis-0", "redis", "redis", {}, "closed"),
    ("batch-job", "batch", "http", {"scrape": "false"}, "closed"),
]


def _pod_targets(s_ports: dict[str, int]) -> list[dict]:
    """file_sd target groups carrying the labels Kubernetes pod discovery would attach."""
    groups = []
    for pod, app, port_name, ann, role in PODS:
        port = s_ports.get(role, 1)  # port 1: nothing listens, the target shows as down
        labels = {
            "__meta_kubernetes_namespace": "lab",
            "__meta_kubernetes_pod_name": pod,
            "__meta_kubernetes_pod_node_name": "gpu-node-1",
            "__meta_kubernetes_pod_label_app_kubernetes_io_name": app,
            "__meta_kubernetes_pod_container_port_name": port_name,
        }
        for k, v in ann.items():
            labels[f"__meta_kubernetes_pod_annotation_prometheus_io_{k}"] = str(port) if v == "PORT" else v
        groups.append({"targets": [f"127.0.0.1:{port if not ann.get('port') else 9}"], "labels": labels})
    return groups


def k8s_relabeling(ctx: Context) -> Output:
    """d13.e3: the Kubernetes pod-discovery relabeling rules, run by the real Prometheus on pod metadata."""
    t = Table.of(
        "pods through the relabeling rules",
        [("pod", ""), ("job", ""), ("kept", ""), ("scraped address", ""), ("labels after relabeling", "")],
        caption="Pod metadata (the __meta_kubernetes_* labels pod discovery attaches) is fed through file_sd to each "
        "job of dashboards/prometheus/kubernetes-sd.yaml; Prometheus applies the relabel_configs itself.",
    )
    with observed_platform(ctx.workdir / "stack", services=["triton", "exporter", "prometheus"]) as s:
        ports = {"triton": s.platform.port("triton", "metrics"), "exporter": s.platform.port("exporter", "metrics")}
        sd_dir = ctx.workdir / "sd"
        sd_dir.mkdir(parents=True, exist_ok=True)
        (sd_dir / "pods.json").write_text(json.dumps(_pod_targets(ports)))
        jobs = []
        for job in kubernetes_config()["scrape_configs"]:
            job = {**job, "job_name": f"k8s-{job['job_name']}"}
            job.pop("kubernetes_sd_configs")
            job["file_sd_configs"] = [{"files": [str(sd_dir / "pods.json")]}]
            jobs.append(job)
        cfg_path = s.rules_dir.parent / "prometheus.yaml"
        cfg = yaml.safe_load(cfg_path.read_text())
        cfg["scrape_configs"] += jobs
        cfg_path.write_text(yaml.safe_dump(cfg))
        s.prom.reload()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            data = s.prom.get("/api/v1/targets", {"state": "any"})
            active = [a for a in data["activeTargets"] if a["labels"]["job"] != "loadgen"]
            if any(a["scrapePool"].startswith("k8s-") for a in active):
                break
            time.sleep(0.5)
        kept = {}
        for a in data["activeTargets"]:
            if a["scrapePool"].startswith("k8s-"):
                kept[(a["discoveredLabels"]["__meta_kubernetes_pod_name"], a["scrapePool"])] = a
        for pod, *_ in PODS:
            hits = [(pool, a) for (p, pool), a in kept.items() if p == pod]
            if not hits:
                t.add(pod, "-", "dropped", "-", "-")
            for pool, a in hits:
                lab = {k: v for k, v in a["labels"].items() if k not in ("instance",)}
                t.add(pod, lab.get("job", pool), "yes", a["scrapeUrl"], json.dumps(lab, sort_keys=True))
    return Output(
        tables=[t],
        notes=[
            "Kubernetes discovery itself needs an API server (none here, and Debian's Prometheus is built without "
            "it); the relabeling is exactly what a cluster Prometheus would run on the same labels.",
            "Expected: triton, dcgm-exporter and node-exporter pods kept by their app label and port name; the "
            "annotated lab-exporter pod kept with its annotated port; redis and the scrape=false pod dropped.",
        ],
    )


DRILL = [  # (alertname, severity, job, instance, expected receiver, expected inhibited)
    ("DrillCritical", "critical", "drill", "node-a", "critical", False),
    ("DrillWarningAlone", "warning", "drill", "node-b", "warning", False),
    ("DrillWarningInhibited", "warning", "drill", "node-a", "-", True),
    ("DrillNoSeverity", "", "drill", "node-c", "warning", False),
]


def routes_drill(ctx: Context) -> Output:
    """d13.e5: alerts of each severity posted to Alertmanager; which receiver got each, how fast, what was inhibited."""
    t = Table.of(
        "Alertmanager routing drill",
        [("alert", ""), ("severity", ""), ("expected receiver", ""), ("received by", ""), ("delivery", "s"),
         ("inhibited", "")],
        caption="Alerts posted straight to /api/v2/alerts of the generated routing tree (drill timings: "
        "group_wait 0 s critical, 1 s warning); the webhook records which URL (receiver) each arrived on.",
    )  # fmt: skip
    with observed_platform(ctx.workdir / "stack", services=["webhook", "alertmanager", "prometheus"]) as s:
        now = datetime.now(UTC)
        alerts = [
            {"labels": {"alertname": n, "job": j, "instance": i, **({"severity": sev} if sev else {})},
             "annotations": {"summary": f"drill {n}"}, "startsAt": now.isoformat(),
             "endsAt": (now + timedelta(minutes=5)).isoformat()}
            for n, sev, j, i, *_ in DRILL
        ]  # fmt: skip
        t0 = time.time()
        req = urllib.request.Request(
            f"{s.alertmanager_url}/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        urllib.request.urlopen(req, timeout=10).close()
        deadline = time.monotonic() + float(ctx.param("wait_s", 15))
        while time.monotonic() < deadline:
            if all(webhook.alerts(s.notifications, n) for n, *_, inh in DRILL if not inh):
                break
            time.sleep(0.2)
        time.sleep(float(ctx.param("settle_s", 3)))  # give an inhibited alert time to (wrongly) arrive
        with urllib.request.urlopen(f"{s.alertmanager_url}/api/v2/alerts", timeout=10) as r:
            state = {a["labels"]["alertname"]: a["status"] for a in json.loads(r.read())}
        for n, sev, _, _, expect, _ in DRILL:
            got = webhook.alerts(s.notifications, n)
            t.add(n, sev or "(none)", expect, ",".join(sorted({g["receiver"] for g in got})) or "-",
                  round(min(g["received_unix"] for g in got) - t0, 2) if got else "-",
                  "yes" if state.get(n, {}).get("inhibitedBy") else "no")  # fmt: skip
    return Output(
        tables=[t],
        notes=["DrillWarningInhibited shares job and instance with DrillCritical, so the inhibit rule "
               "(critical silences warning, equal: job, instance) suppresses it; DrillNoSeverity falls through "
               "to the root route's receiver (warning) instead of being dropped."],
    )  # fmt: skip
