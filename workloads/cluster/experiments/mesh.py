"""Istio traffic management on the week's Triton (stable and canary subsets): weighted splits step by step, per-
version latency and accuracy, mirroring, load-balancing policies, circuit breaking, local rate limits, a canary
failure and its rollback, and what Prometheus and Jaeger show of it.

Requests enter through the ingress gateway (a port-forward to its Service), so every VirtualService and
DestinationRule setting applies. The run adds an `x-ailab-version` response header per route destination so each
probe response says which version answered; every change to the stack's objects is undone at the end.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import Field, field_validator

from ailab.contract import Column, Context, Output, Series, Skip, Table
from workloads.cluster import pods, traffic
from workloads.cluster.load import LOAD_COLUMNS, VERSION_HEADER, drive, endpoint, load_table_row, probe
from workloads.cluster.prom import Prom, by_label
from workloads.cluster.run import host_note, needs, on_stack
from workloads.cluster.session import ClusterParams, ClusterSession
from workloads.cluster.stack import StackView
from workloads.cluster.timeline import windows

VS = ("networking.istio.io/v1", "VirtualService")
DR = ("networking.istio.io/v1", "DestinationRule")
EF = ("networking.istio.io/v1alpha3", "EnvoyFilter")
ISTIO_KINDS = [(*VS, "Istio"), (*DR, "Istio")]


class MeshParams(ClusterParams):
    qps: float = Field(default=200, gt=0, le=50_000, description="open-loop load through the gateway, req/s")
    probe_qps: float = Field(default=20, gt=0, le=500, description="paced version probes, req/s")
    step_s: float = Field(default=60, gt=0, description="measured time per step or case, s")


@contextmanager
def mesh(ctx: Context, p: ClusterParams, *also: str) -> Iterator[tuple[ClusterSession, StackView, dict[str, Any]]]:
    """Session + stack + the stack's VirtualService, after checking Istio and the canary are there."""
    with on_stack(ctx, p, needs.ISTIO, needs.CANARY, *also) as (s, view):
        if not view.has("mesh"):
            raise Skip(f"week {view.week:02d}'s stack has no mesh: run on a week with Istio ({needs.ISTIO})")
        s.require_kinds(ISTIO_KINDS)
        vs = s.get(*VS, "triton", view.namespace)
        if vs is None:
            raise Skip(f"no VirtualService triton in {view.namespace}: deploy week {view.week:02d}'s stack")
        yield s, view, vs


def set_weights(s: ClusterSession, view: StackView, vs: dict[str, Any], weights: dict[str, int]) -> None:
    spec = traffic.routed(vs["spec"], weights, header=VERSION_HEADER)
    s.patch(*VS, "triton", view.namespace, {"spec": {"http": spec["http"]}})


def stable_weights(view: StackView) -> dict[str, int]:
    w = view.settings("mesh").get("weights") or {"stable": 90, "canary": 10}
    return {"stable": int(w["stable"]), "canary": int(w["canary"])}


def load_and_probe(url: str, view: StackView, p: MeshParams) -> tuple[Any, list[traffic.ProbeRow]]:
    """The lab's load generator at p.qps and, beside it, the version probe at p.probe_qps, for p.step_s."""
    rows: list[traffic.ProbeRow] = []
    th = threading.Thread(target=lambda: rows.extend(probe(url, view.model, p.probe_qps, p.step_s)), daemon=True)
    th.start()
    res = drive(url, view.model, p.qps, p.step_s)
    th.join()
    return res, rows


def split_rows(t: Table, label: str, rows: list[traffic.ProbeRow], weights: dict[str, int]) -> bool:
    shares = traffic.split(traffic.probe_counts(rows), weights)
    for sh in shares:
        t.add(
            label,
            sh.version or "(no header)",
            sh.requests,
            round(100 * sh.share, 2),
            round(100 * sh.weight, 2),
            round(sh.z, 2),
        )
    return traffic.fair(shares)


SPLIT_COLUMNS = [("step", ""), ("version", ""), ("responses", ""), ("observed", "%"), ("weight", "%"), ("z", "sd")]


class CanaryParams(MeshParams):
    steps: list[dict[str, int]] = Field(
        default=[{"stable": 90, "canary": 10}],
        min_length=1,
        description="weights per step, e.g. [{stable: 90, canary: 10}, ...]",
    )

    @field_validator("steps")
    @classmethod
    def _sum(cls, v: list[dict[str, int]]) -> list[dict[str, int]]:
        for i, w in enumerate(v):
            if set(w) != {"stable", "canary"} or sum(w.values()) != 100:
                raise ValueError(f"steps[{i}] = {w}: give stable and canary weights summing to 100")
        return v


def canary_steps(ctx: Context, p: CanaryParams) -> Output:
    """Each weight step in turn: observed split per version (binomial z), latency, throughput and errors."""
    split = Table.of("split", SPLIT_COLUMNS)
    load = Table.of("load", [("step", ""), *LOAD_COLUMNS])
    verdicts = []
    with mesh(ctx, p) as (s, view, vs), endpoint(s, view, "ingress") as url:
        for w in p.steps:
            set_weights(s, view, vs, w)
            time.sleep(5)  # Envoy picks up the new route within seconds; requests before that are not counted
            res, rows = load_and_probe(url, view, p)
            label = f"{w['stable']}/{w['canary']}"
            verdicts.append(f"{label}: split {'PASS' if split_rows(split, label, rows, w) else 'FAIL'}")
            load.add(label, *load_table_row(res))
    return Output(
        tables=[split, load],
        notes=[host_note(), *verdicts, f"PASS = every version within {traffic.Z_LIMIT:g} binomial sd of its weight"],
    )


def infer_outputs(url: str, model: str, x: Any) -> list[int]:
    """argmax of the model's first output for each row of `x`, over HTTP/JSON."""
    from workloads.cluster.load import infer_body

    req = urllib.request.Request(
        f"http://{url}/v2/models/{model}/infer", data=infer_body(x), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        out = json.loads(r.read())["outputs"][0]
    import numpy as np

    return np.asarray(out["data"]).reshape(out["shape"]).argmax(axis=1).tolist()


class VersionParams(MeshParams):
    accuracy_samples: int = Field(default=256, ge=0, le=450, description="held-out digits scored per version")


def version_latency(ctx: Context, p: VersionParams) -> Output:
    """Each version alone (100% to it) under the same load: latency, throughput, errors and, on held-out digits,
    accuracy and agreement between the versions."""
    t = Table.of("versions", [("version", ""), *LOAD_COLUMNS, ("accuracy", "%")])
    preds: dict[str, list[int]] = {}
    with mesh(ctx, p) as (s, view, vs), endpoint(s, view, "ingress") as url:
        x = y = None
        if p.accuracy_samples:
            from workloads.models.mlp import sample_inputs

            x, y = sample_inputs(p.accuracy_samples)
        for v in ("stable", "canary"):
            set_weights(s, view, vs, {"stable": 100 if v == "stable" else 0, "canary": 100 if v == "canary" else 0})
            time.sleep(5)
            res = drive(url, view.model, p.qps, p.step_s)
            acc: Any = "-"
            if x is not None:
                preds[v] = infer_outputs(url, view.model, x)
                acc = round(100 * sum(int(a == b) for a, b in zip(preds[v], y, strict=True)) / len(y), 2)
            t.add(v, *load_table_row(res), acc)
    notes = [host_note()]
    if len(preds) == 2:
        agree = sum(int(a == b) for a, b in zip(preds["stable"], preds["canary"], strict=True)) / len(preds["stable"])
        notes.append(f"stable and canary agree on {100 * agree:.2f}% of {len(preds['stable'])} held-out digits")
    return Output(tables=[t], notes=notes)


def _pod_counts(s: ClusterSession, view: StackView, version: str) -> float:
    """Sum of nv_inference_request_success over the version's pods, read from each pod's metrics port."""
    from workloads.serving import metrics

    total = 0.0
    for pod in s.pods(f"app=triton,version={version}", view.namespace):
        with s.forward(f"pod/{pod['metadata']['name']}", view.port("metrics"), view.namespace) as port:
            total += metrics.read(f"http://127.0.0.1:{port}/metrics", view.model).request_success
    return total


class MirrorParams(MeshParams):
    percent: float = Field(default=100, gt=0, le=100, description="share of requests mirrored to the canary, %")


def mirroring(ctx: Context, p: MirrorParams) -> Output:
    """All traffic to stable, `percent` mirrored to canary: requests each version served, from Triton's counters."""
    with mesh(ctx, p) as (s, view, vs), endpoint(s, view, "ingress") as url:
        spec = traffic.mirrored(traffic.routed(vs["spec"], {"stable": 100, "canary": 0}), "canary", p.percent)
        s.patch(*VS, "triton", view.namespace, {"spec": {"http": spec["http"]}})
        time.sleep(5)
        before = {v: _pod_counts(s, view, v) for v in ("stable", "canary")}
        res = drive(url, view.model, p.qps, p.step_s)
        time.sleep(2)
        after = {v: _pod_counts(s, view, v) for v in ("stable", "canary")}
    t = Table.of(
        "mirroring",
        [
            ("sent", "requests"),
            ("ok", "requests"),
            ("stable_served", "requests"),
            ("canary_mirrored", "requests"),
            ("mirrored", "%"),
            ("configured", "%"),
        ],
    )
    mirrored = after["canary"] - before["canary"]
    warm = res.spec["warmup_s"] * p.qps  # warm-up requests are mirrored too: count them in `sent`
    t.add(
        res.sent,
        res.ok,
        after["stable"] - before["stable"],
        mirrored,
        round(100 * mirrored / max(res.sent + warm, 1), 2),
        p.percent,
    )
    return Output(tables=[t], notes=[host_note(), "mirrored responses are discarded by Envoy: clients see only stable"])


class LbParams(MeshParams):
    policies: list[Literal["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "PASSTHROUGH"]] = Field(
        default=["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"], min_length=1
    )


def lb_policies(ctx: Context, p: LbParams) -> Output:
    """The same load under each DestinationRule load-balancing policy: latency, throughput, per-pod spread."""
    t = Table.of("policies", [("policy", ""), *LOAD_COLUMNS, ("pod_spread", "max/min")])
    with mesh(ctx, p, needs.PROMETHEUS) as (s, view, vs), endpoint(s, view, "ingress") as url:
        set_weights(s, view, vs, stable_weights(view))
        pns, psvc, pport = view.prometheus()
        with s.forward(f"svc/{psvc}", pport, pns) as prom_port:
            prom = Prom(f"http://127.0.0.1:{prom_port}")
            for policy in p.policies:
                s.patch(
                    *DR, "triton", view.namespace, {"spec": {"trafficPolicy": {"loadBalancer": {"simple": policy}}}}
                )
                time.sleep(5)
                res = drive(url, view.model, p.qps, p.step_s)
                window = int(p.step_s + res.spec["warmup_s"])
                per_pod = by_label(
                    prom.query(
                        f"sum by (pod) (increase(nv_inference_request_success"
                        f'{{namespace="{view.namespace}"}}[{window}s]))'
                    ),
                    "pod",
                )
                vals = [v for v in per_pod.values() if v > 0]
                spread = round(max(vals) / min(vals), 3) if len(vals) > 1 else "-"
                t.add(policy, *load_table_row(res), spread)
    return Output(tables=[t], notes=[host_note()])


class SidecarParams(MeshParams):
    route: Literal["nodeport"] = "nodeport"


def sidecar_overhead(ctx: Context, p: SidecarParams) -> Output:
    """Two copies of the stack's Triton Deployment in the run's namespace, one with an Envoy sidecar, one without,
    each behind its own NodePort: the same load through each; the difference is the sidecar's cost."""
    t = Table.of("sidecar", [("copy", ""), *LOAD_COLUMNS])
    with on_stack(ctx, p, needs.ISTIO, needs.GPU_NODES) as (s, view):
        s.require_kinds(ISTIO_KINDS)
        for name, inject in (("triton-mesh", True), ("triton-plain", False)):
            labels = {"app": name, "version": "stable", "sidecar.istio.io/inject": str(inject).lower()}
            s.apply(pods.triton_copy(view, name, labels))
        for name in ("triton-mesh", "triton-plain"):
            s.wait_rollout(name, timeout_s=900)
        got = {}
        for name in ("triton-mesh", "triton-plain"):
            pod = s.pods(f"app={name}")[0]
            containers = [c["name"] for c in pod["spec"]["containers"]]
            got[name] = "istio-proxy" in containers
            with endpoint(s, view, "nodeport", selector={"app": name}, namespace=s.namespace) as url:
                res = drive(url, view.model, p.qps, p.step_s)
            t.add(f"{name} (sidecar: {got[name]})", *load_table_row(res))
    if not got["triton-mesh"] or got["triton-plain"]:
        raise RuntimeError(f"sidecar injection did not come out as asked ({got}): is istiod's injector running?")
    return Output(
        tables=[t],
        notes=[
            host_note(),
            "both copies are reached from outside the mesh through a NodePort: "
            "the mesh copy's inbound sidecar is the only difference",
        ],
    )


class BreakerParams(MeshParams):
    qps: float = Field(default=1000, gt=0, le=50_000)


def circuit_breaking(ctx: Context, p: BreakerParams) -> Output:
    """The stack's connection-pool limits and outlier detection vs none, at the same high load: errors and latency."""
    t = Table.of("circuit_breaking", [("case", ""), *LOAD_COLUMNS, ("error_kinds", "")])
    with mesh(ctx, p, needs.CIRCUIT) as (s, view, vs), endpoint(s, view, "ingress") as url:
        dr = s.get(*DR, "triton", view.namespace) or {}
        policy = (dr.get("spec") or {}).get("trafficPolicy") or {}
        if "connectionPool" not in policy:
            raise Skip(f"week {view.week:02d}'s DestinationRule has no circuit breaker: {needs.CIRCUIT}")
        set_weights(s, view, vs, stable_weights(view))
        for case in ("with circuit breaker", "without"):
            if case == "without":
                s.patch(
                    *DR,
                    "triton",
                    view.namespace,
                    {"spec": {"trafficPolicy": {"connectionPool": None, "outlierDetection": None}}},
                )
                time.sleep(5)
            res = drive(url, view.model, p.qps, p.step_s)
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted(res.errors.items())) or "-"
            t.add(case, *load_table_row(res), kinds)
    return Output(
        tables=[t],
        notes=[
            host_note(),
            "Envoy answers requests over the pool's pending limit with 503 (overflow) instead of queueing them",
        ],
    )


class RateLimitParams(MeshParams):
    limit_qps: int = Field(default=500, ge=1, description="token bucket: tokens per second (= bucket size)")
    qps: float = Field(default=1000, gt=0, le=50_000)


def rate_limit(ctx: Context, p: RateLimitParams) -> Output:
    """Envoy's local rate limit set to `limit_qps`, then removed, at the same load: served rate, 429s, latency."""
    t = Table.of("rate_limit", [("case", ""), *LOAD_COLUMNS, ("error_kinds", "")])
    with mesh(ctx, p, needs.RATE_LIMIT) as (s, view, vs), endpoint(s, view, "ingress") as url:
        filters = view.find("EnvoyFilter")
        if not filters:
            raise Skip(f"week {view.week:02d}'s stack has no local rate limit: {needs.RATE_LIMIT}")
        name = filters[0]["metadata"]["name"]
        current = s.get(*EF, name, view.namespace)
        if current is None:
            raise Skip(f"EnvoyFilter {name} is not deployed: deploy week {view.week:02d}'s stack")
        set_weights(s, view, vs, stable_weights(view))
        s.patch(*EF, name, view.namespace, {"spec": traffic.with_token_bucket(current["spec"], p.limit_qps)})
        time.sleep(5)
        for case in (f"limit {p.limit_qps}/s per sidecar", "no limit"):
            if case == "no limit":
                s.remove(*EF, name, view.namespace)
                time.sleep(5)
            res = drive(url, view.model, p.qps, p.step_s)
            t.add(case, *load_table_row(res), ", ".join(f"{k}: {v}" for k, v in sorted(res.errors.items())) or "-")
    return Output(
        tables=[t],
        notes=[
            host_note(),
            "the local rate limit is per sidecar (per Triton pod): the service's limit is limit_qps x ready pods",
        ],
    )


class TraceParams(MeshParams):
    requests: int = Field(default=20, ge=1)


def jaeger_trace(ctx: Context, p: TraceParams) -> Output:
    """Requests through the gateway, then one trace from Jaeger's query API: its spans, services and durations."""
    with on_stack(ctx, p, needs.ISTIO, needs.TRACING) as (s, view):
        if not view.has("tracing"):
            raise Skip(f"week {view.week:02d}'s stack has no tracing: {needs.TRACING} (--set week=11)")
        jaeger = view.one("Service", "jaeger")
        with endpoint(s, view, "ingress" if view.has("mesh") else "nodeport") as url:
            probe(url, view.model, 5, p.requests / 5)
        time.sleep(10)  # the collector batches spans
        with s.forward("svc/jaeger", 16686, jaeger["metadata"]["namespace"]) as port:
            base = f"http://127.0.0.1:{port}/api"
            services = json.loads(urllib.request.urlopen(f"{base}/services", timeout=10).read())["data"] or []
            svc = next((x for x in services if "triton" in x), services[0] if services else None)
            if svc is None:
                raise RuntimeError("Jaeger holds no services: no spans arrived (Triton --trace-config, OTel collector)")
            data = json.loads(urllib.request.urlopen(f"{base}/traces?service={svc}&limit=1", timeout=10).read())
    trace = (data.get("data") or [None])[0]
    if trace is None:
        raise RuntimeError(f"Jaeger has no trace for service {svc}")
    procs = {k: v["serviceName"] for k, v in trace["processes"].items()}
    start = min(sp["startTime"] for sp in trace["spans"])
    t = Table.of(
        "trace",
        [("span", ""), ("service", ""), ("start", "ms"), ("duration", "ms")],
        caption=f"trace {trace['traceID']}",
    )
    for sp in sorted(trace["spans"], key=lambda x: x["startTime"]):
        t.add(
            sp["operationName"],
            procs.get(sp["processID"], "?"),
            round((sp["startTime"] - start) / 1e3, 3),
            round(sp["duration"] / 1e3, 3),
        )
    return Output(tables=[t], notes=[f"services in Jaeger: {', '.join(services)}"])


def latency_distribution(ctx: Context, p: MeshParams) -> Output:
    """What a Grafana panel of Istio request latency shows: istio_request_duration_milliseconds buckets for
    Triton after a load run, and the p50/p90/p99 histogram_quantile computes from them."""
    with mesh(ctx, p, needs.PROMETHEUS) as (s, view, _), endpoint(s, view, "ingress") as url:
        res = drive(url, view.model, p.qps, p.step_s)
        time.sleep(35)  # two scrape intervals
        pns, psvc, pport = view.prometheus()
        with s.forward(f"svc/{psvc}", pport, pns) as port:
            prom = Prom(f"http://127.0.0.1:{port}")
            window = f"{int(p.step_s + 60)}s"
            sel = (
                'reporter="destination",destination_service_name="triton",'
                f'destination_service_namespace="{view.namespace}"'
            )
            hist = f"istio_request_duration_milliseconds_bucket{{{sel}}}"
            buckets = by_label(
                prom.query(f"sum by (le) (increase({hist}[{window}]))"),
                "le",
            )
            q = {
                pct: prom.query(f"histogram_quantile({pct / 100}, sum by (le) (rate({hist}[{window}])))")
                for pct in (50, 90, 99)
            }
    if not buckets:
        raise RuntimeError("Prometheus has no istio_request_duration_milliseconds for triton: is Istio telemetry on?")
    t = Table.of("buckets", [("le", "ms"), ("requests", "")])
    for le in sorted(buckets, key=lambda x: float(x)):
        t.add(le, round(buckets[le]))
    qt = Table.of("quantiles", [("quantile", "%"), ("istio", "ms"), ("client", "ms")])
    for pct, r in q.items():
        qt.add(
            pct, round(float(r[0]["value"][1]), 3) if r else "-", round(res.latency_ms.get(f"p{pct}", float("nan")), 3)
        )
    return Output(
        tables=[t, qt],
        notes=[
            host_note(),
            "istio: measured by the destination sidecar; client: the lab's "
            "load generator (adds the gateway and the route into the cluster)",
        ],
    )


class RollbackParams(MeshParams):
    fail_canary: bool = Field(default=True, description="scale the canary to 0 first (requests to it fail: 503)")
    fail_s: float = Field(default=20, ge=0, description="time the failure runs before the rollback, s")
    after_s: float = Field(default=30, gt=0, description="time watched after the rollback, s")
    prometheus: bool = Field(default=False, description="also sample istio_requests_total by version and code")


def rollback(ctx: Context, p: RollbackParams) -> Output:
    """The canary at its weight fails (scaled to zero: 503 for its share), then all traffic goes back to stable:
    time until no response comes from the canary, errors before and after, continuity of service."""
    also = (needs.PROMETHEUS,) if p.prometheus else ()
    prom_rows: list[tuple[float, dict[str, float]]] = []
    with mesh(ctx, p, *also) as (s, view, vs), endpoint(s, view, "ingress") as url:
        w = stable_weights(view)
        set_weights(s, view, vs, w)
        time.sleep(5)
        rows: list[traffic.ProbeRow] = []
        total = p.step_s + p.fail_s + p.after_s
        t0 = time.perf_counter()
        th = threading.Thread(target=lambda: rows.extend(probe(url, view.model, p.probe_qps, total)), daemon=True)
        th.start()
        stop = threading.Event()
        sampler = None
        if p.prometheus:
            sampler = threading.Thread(target=_sample_istio, args=(s, view, prom_rows, stop), daemon=True)
            sampler.start()
        time.sleep(p.step_s)
        t_fail = time.perf_counter() - t0
        if p.fail_canary:
            s.patch("apps/v1", "Deployment", "triton-canary", view.namespace, {"spec": {"replicas": 0}})
        time.sleep(p.fail_s)
        t_back = time.perf_counter() - t0
        set_weights(s, view, vs, {"stable": 100, "canary": 0})
        th.join()
        stop.set()
        if sampler:
            sampler.join()
    sw = traffic.switch_time(rows, t_back, "stable")
    before = [r for r in rows if r[0] < t_fail]
    during = [r for r in rows if t_fail <= r[0] < t_back]
    t = Table.of("rollback", [("phase", ""), ("requests", ""), ("errors", ""), ("canary_responses", "")])
    for label, part in (
        ("canary live", before),
        ("canary failing", during),
        ("after rollback", [r for r in rows if r[0] >= t_back]),
    ):
        t.add(label, len(part), sum(1 for r in part if not r[3]), sum(1 for r in part if r[3] and r[1] == "canary"))
    s_t = Table.of(
        "switch",
        [("drained_after", "s"), ("canary_after", "responses"), ("errors_after", "requests"), ("stuck_on_canary", "")],
    )
    s_t.add(
        round(sw.drained_after_s, 3) if sw.drained_after_s is not None else 0.0,
        sw.other_after,
        sw.errors_after,
        sw.stuck,
    )
    series = [Series("errors", x=Column("t", "s"), y=Column("errors per 5 s", "requests"))]
    for win in windows([(r[0], r[2], "" if r[3] else "error") for r in rows], 5.0):
        series[0].point("probe", win.start_s, win.errors)
    if prom_rows:
        ps = Series("istio_requests", x=Column("t", "s"), y=Column("rate", "req/s"))
        for ts_, vals in prom_rows:
            for k, v in vals.items():
                ps.point(k, round(ts_ - prom_rows[0][0], 1), v)
        series.append(ps)
    return Output(
        tables=[t, s_t],
        series=series,
        notes=[
            f"weights {w['stable']}/{w['canary']}; canary {'failed (scaled to 0)' if p.fail_canary else 'healthy'} "
            f"at {t_fail:.1f} s; rollback to 100/0 at {t_back:.1f} s"
        ],
    )


def _sample_istio(s: ClusterSession, view: StackView, out: list, stop: threading.Event) -> None:
    pns, psvc, pport = view.prometheus()
    with s.forward(f"svc/{psvc}", pport, pns) as port:
        prom = Prom(f"http://127.0.0.1:{port}")
        expr = (
            'sum by (destination_version, response_code) (rate(istio_requests_total{reporter="source",'
            'destination_service_name="triton"}[30s]))'
        )
        while not stop.is_set():
            res = prom.query(expr)
            out.append(
                (
                    time.time(),
                    {
                        f"{r['metric'].get('destination_version', '?')} {r['metric'].get('response_code', '?')}": float(
                            r["value"][1]
                        )
                        for r in res
                    },
                )
            )
            stop.wait(10)
