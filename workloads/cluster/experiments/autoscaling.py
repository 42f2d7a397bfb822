"""Horizontal autoscaling of the week's Triton under a stepped open-loop load: HPA on CPU, on a Prometheus Adapter
metric, the stack's own HPA or KEDA ScaledObject, scale-down stabilisation windows, and KEDA's Kafka trigger.

While the lab's load generator drives a NodePort (kube-proxy spreads requests over every ready replica), a thread
samples the Deployment's replica counts; the autoscaler's SuccessfulRescale events are read afterwards. The numbers
(time to first scale, time to peak, flaps, overshoot, p99 before/during/after cold start) come from the pure
functions in workloads/cluster/scaling.py and timeline.py.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from ailab.contract import Column, Context, Output, Series, Skip, Table
from workloads.cluster import scaling
from workloads.cluster.load import drive, endpoint
from workloads.cluster.objects import parse_events, pod_ready, ready_since
from workloads.cluster.run import host_note, needs, on_stack
from workloads.cluster.session import ClusterParams, ClusterSession
from workloads.cluster.stack import StackView
from workloads.cluster.timeline import nearest_rank, windows

Scaler = Literal["stack", "cpu", "qps"]
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler")
SCALED_OBJECT = ("keda.sh/v1alpha1", "ScaledObject")
TARGET = "triton-stable"


class ScaleParams(ClusterParams):
    scalers: list[Scaler] = Field(
        default=["stack"], min_length=1, description="stack: the week's HPA/ScaledObject; cpu / qps: the run's own HPA"
    )
    cpu_target: int = Field(default=50, ge=1, le=100, description="cpu scaler: average utilisation, % of request")
    qps_metric: str = Field(
        default="triton_requests_per_second",
        description="qps scaler: a Pods metric prometheus-adapter serves (custom.metrics.k8s.io)",
    )
    qps_target: float = Field(default=100, gt=0, description="qps scaler: requests/s per replica")
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=4, ge=1, le=50)
    steps_qps: list[float] = Field(default=[100, 250, 500, 750, 1000], min_length=1)
    step_s: float = Field(default=60, gt=0, description="how long each load step lasts, s")
    scale_down_windows_s: list[int] | None = Field(
        default=None, description="scale-down stabilisation windows to compare (cooldown runs), s"
    )
    pattern_cycles: int = Field(default=3, ge=1, description="cooldown runs: high/low load cycles")
    window_s: float = Field(default=5, gt=0, description="latency windows for the p99 curve, s")
    settle_s: float = Field(default=300, ge=0, description="wait for the scale-in between runs, s")


@dataclass
class Run:
    label: str
    t_start: float
    steps: list[tuple[float, float, Any]] = field(default_factory=list)  # (qps, wall start, LoadResult)
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, spec replicas, ready)
    rescales: list[scaling.Rescale] = field(default_factory=list)
    new_ready: list[float] = field(default_factory=list)  # when pods that were not there at the start became Ready


def _replicas(s: ClusterSession, ns: str) -> tuple[int, int]:
    d = s.get("apps/v1", "Deployment", TARGET, ns) or {}
    return int(d.get("spec", {}).get("replicas") or 0), int((d.get("status") or {}).get("readyReplicas") or 0)


def hpa_manifest(scaler: Scaler, p: ScaleParams, ns: str, down_window: int | None = None) -> dict[str, Any]:
    """The run's own HPA on CPU utilisation or on a per-pod QPS metric from prometheus-adapter."""
    if scaler == "cpu":
        metric = {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": p.cpu_target}},
        }
    else:
        metric = {
            "type": "Pods",
            "pods": {
                "metric": {"name": p.qps_metric},
                "target": {"type": "AverageValue", "averageValue": str(p.qps_target)},
            },
        }
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": TARGET},
        "minReplicas": p.min_replicas,
        "maxReplicas": p.max_replicas,
        "metrics": [metric],
    }
    if down_window is not None:
        spec["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": down_window}}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"triton-{scaler}", "namespace": ns},
        "spec": spec,
    }


def install_scaler(s: ClusterSession, view: StackView, scaler: Scaler, p: ScaleParams, down: int | None) -> str:
    """Make `scaler` the one autoscaler of triton-stable; returns the HPA name whose events to read."""
    ns = view.namespace
    stack_hpa = view.find("HorizontalPodAutoscaler", "triton")
    stack_so = view.find("ScaledObject", "triton")
    if scaler == "stack":
        if stack_hpa:
            if down is not None:
                s.patch(*HPA, "triton", ns, {"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": down}}}})
            return "triton"
        if stack_so:
            s.require_kinds([(*SCALED_OBJECT, "KEDA")])
            if down is not None:
                body = {
                    "advanced": {
                        "horizontalPodAutoscalerConfig": {
                            "behavior": {"scaleDown": {"stabilizationWindowSeconds": down}}
                        }
                    }
                }
                s.patch(*SCALED_OBJECT, "triton", ns, {"spec": body})
            return "keda-hpa-triton"  # the HPA KEDA creates for a ScaledObject
        raise Skip(
            f"week {view.week:02d}'s stack has no autoscaler for Triton (serving.hpa: weeks 3, 13; "
            "serving.keda: weeks 9, 12): use --set 'scalers=[cpu]' or another week"
        )
    # own HPA: take the stack's autoscalers away for the run (they are re-created at the end)
    if stack_hpa:
        s.remove(*HPA, "triton", ns)
    if stack_so:
        s.remove(*SCALED_OBJECT, "triton", ns)
    if scaler == "qps":
        check_qps_metric(s, p)
    s.apply(hpa_manifest(scaler, p, ns, down))
    return f"triton-{scaler}"


def check_qps_metric(s: ClusterSession, p: ScaleParams) -> None:
    """Skip unless prometheus-adapter serves the pods metric the qps scaler uses (before any load is sent)."""
    listed = s.api.raw("/apis/custom.metrics.k8s.io/v1beta1")
    names = {r["name"].split("/", 1)[-1] for r in listed.get("resources", [])}
    if p.qps_metric not in names:
        raise Skip(
            f"prometheus-adapter serves no pods metric {p.qps_metric!r} "
            f"(it serves: {', '.join(sorted(names)) or 'none'}); "
            "add a rule to its values: seriesQuery nv_inference_request_success{namespace!='',pod!=''}, "
            "metricsQuery sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>), "
            f"name.as {p.qps_metric}"
        )


def run_load(
    s: ClusterSession, view: StackView, url: str, label: str, plan: list[tuple[float, float]], hpa: str
) -> Run:
    """Drive `plan` [(qps, seconds)] while sampling replicas every second; then read the HPA's rescale events."""
    ns = view.namespace
    before = {x["metadata"]["name"] for x in s.pods("app=triton", ns)}
    run = Run(label, time.time())
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            spec, ready = _replicas(s, ns)
            run.samples.append((time.time(), spec, ready))
            time.sleep(1.0)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        for qps, secs in plan:
            t = time.time()
            run.steps.append((qps, t, drive(url, view.model, qps, secs, warmup_s=0.5)))
    finally:
        stop.set()
        watcher.join()
    events = parse_events(s.events(ns))
    run.rescales = [r for r in scaling.rescales(events, hpa) if r.t >= run.t_start]
    run.new_ready = sorted(
        t
        for x in s.pods("app=triton", ns)
        if x["metadata"]["name"] not in before and pod_ready(x) and (t := ready_since(x)) is not None
    )
    return run


def cold_start_p99(run: Run) -> dict[str, float]:
    """p99 of requests sent before the first rescale, between it and the last new pod Ready, and after."""
    first = run.rescales[0].t if run.rescales else math.inf
    last = run.new_ready[-1] if run.new_ready else math.inf
    parts: dict[str, list[float]] = {"before": [], "cold start": [], "after": []}
    for _, t_step, res in run.steps:
        base = t_step + res.spec["warmup_s"]  # the timeline counts from the measured window's start
        for t_rel, lat, err in res.timeline:
            if err:
                continue
            t = base + t_rel
            parts["before" if t < first else "cold start" if t < last else "after"].append(lat)
    return {k: nearest_rank(v, 99) for k, v in parts.items()}


def _settle(s: ClusterSession, ns: str, p: ScaleParams) -> None:
    if p.settle_s:
        s.wait("scale-in to min replicas", lambda: _replicas(s, ns)[0] <= p.min_replicas, p.settle_s, poll_s=5)


def _run_tables(runs: list[Run], p: ScaleParams) -> tuple[list[Table], list[Series]]:
    steps = Table.of(
        "steps",
        [
            ("run", ""),
            ("target", "req/s"),
            ("ok", "req/s"),
            ("p50", "ms"),
            ("p99", "ms"),
            ("errors", "requests"),
            ("replicas_at_end", "pods"),
        ],
    )
    summary = Table.of(
        "scale",
        [
            ("run", ""),
            ("start", "pods"),
            ("peak", "pods"),
            ("end", "pods"),
            ("changes", ""),
            ("flaps", ""),
            ("first_scale", "s"),
            ("peak_reached", "s"),
            ("p99_before", "ms"),
            ("p99_cold_start", "ms"),
            ("p99_after", "ms"),
        ],
    )
    reps = Series("replicas", x=Column("t since load start", "s"), y=Column("replicas", "pods"), kind="line")
    p99 = Series("p99", x=Column("t since load start", "s"), y=Column("p99", "ms"))
    for r in runs:
        pts = [(t, spec) for t, spec, _ in r.samples]
        for qps, t_step, res in r.steps:
            at_end = next((spec for t, spec, _ in reversed(r.samples) if t <= t_step + res.window_s + 1), "-")
            steps.add(
                r.label,
                qps,
                round(res.throughput_rps, 1),
                round(res.latency_ms["p50"], 2),
                round(res.latency_ms["p99"], 2),
                res.sent - res.ok,
                at_end,
            )
            for w in windows(res.timeline, p.window_s, res.window_s):
                if w.requests and not math.isnan(w.p99_ms):
                    p99.point(r.label, round(t_step + res.spec["warmup_s"] + w.start_s - r.t_start, 1), w.p99_ms)
        if not pts:
            continue
        sm = scaling.summarize(pts, r.t_start)
        cs = cold_start_p99(r)
        rnd = lambda v: round(v, 1) if v is not None else "-"  # noqa: E731
        summary.add(
            r.label,
            sm.start_replicas,
            sm.peak_replicas,
            sm.end_replicas,
            sm.changes,
            sm.flaps,
            rnd(sm.first_scale_s),
            rnd(sm.peak_reached_s),
            *(round(cs[k], 2) for k in cs),
        )
        for t, spec, _ in r.samples:
            reps.point(r.label, round(t - r.t_start, 1), spec)
    return [summary, steps], [reps, p99]


def hpa_ramp(ctx: Context, p: ScaleParams) -> Output:
    """Stepped load (e.g. 100 -> 1000 req/s) per scaler: replicas over time, time to scale, p99 around cold start."""
    if p.min_replicas > p.max_replicas:
        raise ValueError(f"min_replicas {p.min_replicas} > max_replicas {p.max_replicas}")
    also = [needs.PROMETHEUS] + ([needs.HPA_METRICS] if "cpu" in p.scalers else [])
    also += [needs.PROM_ADAPTER] if "qps" in p.scalers else []
    runs: list[Run] = []
    with on_stack(ctx, p, *also) as (s, view), ExitStack() as stack:
        if "qps" in p.scalers:
            check_qps_metric(s, p)
        url = stack.enter_context(endpoint(s, view, "nodeport"))
        for i, scaler in enumerate(p.scalers):
            hpa = install_scaler(s, view, scaler, p, None)
            runs.append(run_load(s, view, url, scaler, [(q, p.step_s) for q in p.steps_qps], hpa))
            if i + 1 < len(p.scalers):
                _settle(s, view.namespace, p)
    tables, series = _run_tables(runs, p)
    return Output(tables=tables, series=series, notes=[host_note()])


def cooldown(ctx: Context, p: ScaleParams) -> Output:
    """Alternating high/low load under each scale-down stabilisation window: scale events and flaps per window."""
    windows_s = p.scale_down_windows_s or [0, 60, 300]
    high, low = max(p.steps_qps), min(p.steps_qps)
    runs: list[Run] = []
    with on_stack(ctx, p, needs.PROMETHEUS) as (s, view), ExitStack() as stack:
        url = stack.enter_context(endpoint(s, view, "nodeport"))
        for i, w in enumerate(windows_s):
            hpa = install_scaler(s, view, p.scalers[0], p, w)
            plan = [(high, p.step_s), (low, p.step_s)] * p.pattern_cycles
            runs.append(run_load(s, view, url, f"window {w} s", plan, hpa))
            if i + 1 < len(windows_s):
                _settle(s, view.namespace, p)
    tables, series = _run_tables(runs, p)
    return Output(
        tables=tables,
        series=series,
        notes=[
            host_note(),
            f"pattern: {p.pattern_cycles} x ({high:g} req/s for {p.step_s:g} s, "
            f"{low:g} req/s for {p.step_s:g} s) under {p.scalers[0]}",
        ],
    )


# --- KEDA with a Kafka trigger ----------------------------------------------------------------------------------


class KafkaParams(ClusterParams):
    kafka_bootstrap: str | None = Field(default=None, description="host:port of a broker the cluster reaches")
    kafka_topic: str | None = Field(default=None, description="topic the trigger watches")
    consumer_group: str = Field(default="ailab-triton")
    lag_threshold: int = Field(default=100, ge=1, description="messages of lag per replica")
    messages: int = Field(default=5000, ge=1)
    rate: int = Field(default=200, ge=1, description="producer rate, messages/s")
    kafka_image: str = Field(default="docker.io/apache/kafka:3.9.0", description="image with Kafka's CLI tools")
    max_replicas: int = Field(default=4, ge=1, le=50)
    watch_s: float = Field(default=300, gt=0)


def _kafka_job(name: str, image: str, script: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "kafka",
                            "image": image,
                            "command": ["sh", "-c", script],
                            "resources": {
                                "requests": {"cpu": "200m", "memory": "512Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                        }
                    ],
                }
            },
        },
    }


def keda_kafka(ctx: Context, p: KafkaParams) -> Output:
    """A ScaledObject with a Kafka lag trigger on triton-stable: produce a backlog, watch the scale-out, consume it,
    watch the scale-in."""
    with on_stack(ctx, p, needs.KEDA, needs.KAFKA) as (s, view):
        if not (p.kafka_bootstrap and p.kafka_topic):
            raise Skip(f"needs {needs.KAFKA}")
        s.require_kinds([(*SCALED_OBJECT, "KEDA")])
        ns = view.namespace
        if view.find("ScaledObject", "triton"):
            s.remove(*SCALED_OBJECT, "triton", ns)
        if view.find("HorizontalPodAutoscaler", "triton"):
            s.remove(*HPA, "triton", ns)
        s.apply(
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {"name": "triton-kafka", "namespace": ns},
                "spec": {
                    "scaleTargetRef": {"name": TARGET},
                    "minReplicaCount": 1,
                    "maxReplicaCount": p.max_replicas,
                    "triggers": [
                        {
                            "type": "kafka",
                            "metadata": {
                                "bootstrapServers": p.kafka_bootstrap,
                                "consumerGroup": p.consumer_group,
                                "topic": p.kafka_topic,
                                "lagThreshold": str(p.lag_threshold),
                                "offsetResetPolicy": "earliest",
                            },
                        }
                    ],
                },
            }
        )
        bin_ = "/opt/kafka/bin"
        t0 = time.time()
        s.apply(
            _kafka_job(
                "produce",
                p.kafka_image,
                f"{bin_}/kafka-producer-perf-test.sh --topic {p.kafka_topic} --num-records {p.messages} "
                f"--throughput {p.rate} --record-size 100 --producer-props "
                f"bootstrap.servers={p.kafka_bootstrap}",
            )
        )
        produce = s.sample(lambda: _replicas(s, ns), p.watch_s / 2, every_s=2.0)
        t1 = time.time()
        s.apply(
            _kafka_job(
                "consume",
                p.kafka_image,
                f"{bin_}/kafka-console-consumer.sh --bootstrap-server {p.kafka_bootstrap} --topic "
                f"{p.kafka_topic} --group {p.consumer_group} --from-beginning --max-messages "
                f"{p.messages} > /dev/null",
            )
        )
        consume = s.sample(lambda: _replicas(s, ns), p.watch_s / 2, every_s=2.0)
        events = parse_events(s.events(ns))
    pts = [(t, spec) for t, (spec, _) in produce + consume]
    sm = scaling.summarize(pts, t0)
    rescale = scaling.rescales(events, "keda-hpa-triton-kafka")
    t = Table.of(
        "keda_kafka",
        [
            ("phase", ""),
            ("peak", "pods"),
            ("time_to_peak", "s"),
            ("end", "pods"),
            ("settled_after", "s"),
            ("rescale_events", ""),
        ],
    )
    settle = scaling.time_to_settle(pts, t1, 1)
    t.add(
        "produce + consume",
        sm.peak_replicas,
        sm.peak_reached_s if sm.peak_reached_s is not None else "-",
        sm.end_replicas,
        round(settle, 1) if settle is not None else "-",
        len(rescale),
    )
    series = Series("replicas", x=Column("t since produce", "s"), y=Column("replicas", "pods"))
    for ts_, n in pts:
        series.point("replicas", round(ts_ - t0, 1), n)
    return Output(
        tables=[t],
        series=[series],
        notes=[f"{p.messages} messages at {p.rate}/s to {p.kafka_topic}; lagThreshold {p.lag_threshold}"],
    )
