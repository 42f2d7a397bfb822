"""Architecture diagrams that put several of the lab's definitions side by side (Graphviz, beside diagrams.py):

- `thanos-weekNN`: the long-term store of a week that turns Thanos on: the cluster stack's Prometheus with its Thanos
  sidecar, the Thanos chart's query, store gateway and bucket, the federating global Prometheus (ailab/platform's
  plan), beside the embedded substitute: the local Prometheus `remote_write`-ing to VictoriaMetrics and the
  federating local Prometheus (the local services' specs), and the experiments whose results record the substitute.
- `inference-architectures`: the lab's three serving architectures: the embedded local platform (HAProxy ->
  tritonserver), the cluster stack's serving path (Istio -> Triton Deployments), and the LLM engine path
  (workloads/llm: the OpenAI-compatible server over the paged-KV engine, read from its source, not imported).
- `stack-weeksNN-MM`: how the stacks grew over a span of weeks: each week's components and local services, and what
  each week adds or drops (the retrospective diagrams of weeks 1-6 and 7-12).

Written and drift-checked with the others (`lab diagrams`, tests/unit/review/test_diagrams.py).
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import graphviz
import yaml

from ailab.contract import facts
from ailab.contract.paths import REPO_ROOT
from ailab.platform.config import ConfigError
from ailab.platform.model import Plan
from ailab.platform.render import week_plans
from ailab.review.diagrams import WEEKS, DiagramError, _graph, _local_specs, serving_into

THANOS_WEEK = 8  # d55 (week 8): Prometheus federation and long-term storage
STACK_SPANS = ((1, 6), (7, 12))  # the global reviews: d85 (weeks 1-6), d86 (weeks 7-12)
CLUSTER_SERVING_WEEK = 13  # the full cluster serving path (TLS, JWT, canary, HPA)
LLM_WEEK = 12  # the week whose local platform starts the LLM server
LLM_SERVER = REPO_ROOT / "workloads" / "llm" / "server.py"
LLM_ENGINE = REPO_ROOT / "workloads" / "llm" / "engine.py"


def _plans(week: int) -> tuple[Any, list[Plan]]:
    try:
        return week_plans(week)
    except ConfigError as exc:
        raise DiagramError(str(exc)) from None


def _substitutes_for(word: str) -> list[tuple[str, dict[str, str]]]:
    """(experiment id, its `substitute`) of every stored ok result that stands in for `word`, in catalogue order."""
    from ailab.contract.paths import results_dir
    from ailab.results.store import load_day

    out = []
    for day in sorted(p.name for p in results_dir().glob("d[0-9][0-9]")):
        for r in load_day(day):
            sub = r.data.get("substitute") if r.error is None and r.status == "ok" else None
            if sub and word.lower() in str(sub.get("instead_of", "")).lower():
                out.append((r.id, sub))
    return out


# --- Thanos and its local substitute -----------------------------------------------------------------------------


def thanos(week: int = THANOS_WEEK) -> graphviz.Digraph:
    """The week's Thanos (cluster stack) beside VictoriaMetrics (local platform), from the plans and service specs."""
    s, plans = _plans(week)
    if not s.monitoring.thanos:
        raise DiagramError(f"week {week} does not turn Thanos on (monitoring.thanos is false in its stack config)")
    mon = next(p for p in plans if p.name == "monitoring")
    releases = {r.key: r for r in mon.releases}
    kps, th = releases["kube-prometheus-stack"], releases["thanos"]
    spec = kps.values["prometheus"]["prometheusSpec"]
    g = _graph(
        f"thanos-week{week:02d}",
        f"ailab/platform/monitoring.py (week {week:02d}'s plan) and ailab/local/services (prometheus, "
        "prometheus_global, victoriametrics specs)",
    )
    g.attr(
        label=f"Long-term metrics, week {week}: Thanos in the cluster stack beside the embedded "
        "VictoriaMetrics substitute on this host (dashed red: what stands in for what)"
    )
    with g.subgraph(name="cluster_stack") as c:
        c.attr(label=f"cluster stack (Pulumi.week{week:02d}.yaml, namespace {th.namespace})", style="rounded")
        secret_ref = spec["thanos"]["objectStorageConfig"]["existingSecret"]
        c.node(
            "k_prometheus",
            f"Prometheus ({kps.chart.chart} {kps.chart.version})\\nretention {spec['retention']}\\nexternal labels "
            + ", ".join(f"{k}={v}" for k, v in spec["externalLabels"].items()),
        )
        c.node(
            "k_sidecar",
            f"Thanos sidecar (prometheusSpec.thanos)\\nobject store: Secret {secret_ref['name']}/{secret_ref['key']}",
            fillcolor="#e8f0fe",
        )
        c.edge("k_prometheus", "k_sidecar", label="same pod", style="dotted", arrowhead="none")
        secret = next(m for m in mon.manifests if m["kind"] == "Secret" and m["metadata"]["name"] == secret_ref["name"])
        store = yaml.safe_load(secret["stringData"][secret_ref["key"]])
        v = th.values
        bucket = f"{store['type']} bucket {store['config']['bucket']}\\n{store['config']['endpoint']}"
        if v.get("minio", {}).get("enabled"):
            bucket += f"\\n(MinIO of the {th.chart.chart} chart)"
        c.node("k_bucket", bucket, shape="cylinder", fillcolor="#fff8e1")
        c.edge("k_sidecar", "k_bucket", label="uploads TSDB blocks")
        chart = f"{th.chart.chart} {th.chart.version}"
        if v.get("storegateway", {}).get("enabled"):
            c.node("k_store", f"Thanos store gateway ({chart})", fillcolor="#e8f0fe")
            c.edge("k_store", "k_bucket", label=f"reads blocks\\n(Secret {v['existingObjstoreSecret']})")
        if v.get("query", {}).get("enabled"):
            dns = v["query"].get("dnsDiscovery", {})
            c.node("k_query", f"Thanos query ({chart})", fillcolor="#e8f0fe")
            c.node("k_client", "Grafana / PromQL client", shape="ellipse", fillcolor="#ffffff")
            c.edge("k_client", "k_query", label="PromQL")
            c.edge("k_query", "k_sidecar", label=f"StoreAPI, found by DNS\\n{dns.get('sidecarsService', '')}")
            if v.get("storegateway", {}).get("enabled"):
                c.edge("k_query", "k_store", label="StoreAPI")
        fed = next(
            (m for m in mon.manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "prometheus-global"),
            None,
        )
        if fed is not None:
            cfg = yaml.safe_load(fed["data"]["prometheus.yml"])
            job = cfg["scrape_configs"][0]
            c.node("k_global", f"Deployment prometheus-global\\nscrape every {cfg['global']['scrape_interval']}")
            c.edge(
                "k_global",
                "k_prometheus",
                label=f"{job['metrics_path']}\\nmatch[] " + "\\nmatch[] ".join(job["params"]["match[]"]),
            )
    local = [n for n in ("prometheus", "prometheus_global", "victoriametrics") if n in facts.week(week).local]
    specs, (ports, _, remote_write) = _local_specs(week, {"prometheus.remote_write": ["victoriametrics"]}, local)
    with g.subgraph(name="cluster_local") as c:
        c.attr(label=f"embedded local platform (week {week}'s services, `lab up`)", style="rounded")
        for name, sp in specs.items():
            flags = [a.split("=", 1) for a in sp.argv if "retention" in a.lower() and "=" in a]
            lines = [name] + [f"{role}: 127.0.0.1:{port}" for role, port in sp.ports.items()]
            lines += [f"{k.lstrip('-')} {val}" for k, val in flags]
            c.node(f"l_{name}", "\\n".join(lines), fillcolor="#e6f4ea" if name == "victoriametrics" else "#f7f7f7")
        vm_port = ports.get("victoriametrics.http")
        for url in remote_write:
            target = "l_victoriametrics" if vm_port and f":{vm_port}/" in url else None
            if target and "prometheus" in specs:
                c.edge("l_prometheus", target, label=f"remote_write\\n{url}")
        if "prometheus_global" in specs:
            info = specs["prometheus_global"].info
            c.edge("l_prometheus_global", "l_prometheus", label="/federate\\nmatch[] " + info.get("match", ""))
    subs = _substitutes_for("Thanos")
    if subs and "victoriametrics" in specs:
        ids = ", ".join(i for i, _ in subs)
        instead = subs[0][1]["instead_of"]
        g.edge(
            "l_victoriametrics",
            "k_query" if "k_query" in g.source else "k_bucket",
            label=f"stands in for {instead}\\n(the `substitute` of {ids})",
            style="dashed",
            color="#d93025",
            fontcolor="#d93025",
            constraint="false",
        )
    return g


# --- three serving architectures ---------------------------------------------------------------------------------


_ROUTE_METHODS = ("add_get", "add_post", "add_put", "add_patch", "add_delete")


def _routes(source: Path) -> list[str]:
    """'POST /v1/completions', ... from the `app.router.add_<method>(path, handler)` calls of an aiohttp server."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _ROUTE_METHODS
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "router"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.append(f"{node.func.attr.removeprefix('add_').upper()} {node.args[0].value}")
    if not out:
        raise DiagramError(f"{source.relative_to(REPO_ROOT)}: no app.router.add_*(path, ...) route found")
    return out


def _dataclass_defaults(source: Path, cls: str) -> list[str]:
    """'field default' for each annotated field with a constant default of class `cls` in `source`."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    node = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls), None)
    if node is None:
        raise DiagramError(f"{source.relative_to(REPO_ROOT)}: class {cls} not found")
    return [
        f"{st.target.id} {ast.literal_eval(st.value)!r}".replace("'", "")
        for st in node.body
        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and isinstance(st.value, ast.Constant)
    ]


def _first_line(source: Path) -> str:
    doc = ast.get_docstring(ast.parse(source.read_text(encoding="utf-8"))) or ""
    return doc.split(":", 1)[0].split(".")[0]


def _wrap(text: str, width: int = 48) -> str:
    return "\\n".join(textwrap.wrap(text, width))


def inference_architectures() -> graphviz.Digraph:
    """The lab's three serving architectures side by side, each from its own definitions (request paths only)."""
    from ailab.local.services import haproxy, llm

    g = _graph(
        "inference-architectures",
        "ailab/local/services (haproxy, triton, llm specs), ailab/platform (week "
        f"{CLUSTER_SERVING_WEEK:02d}'s plans) and workloads/llm/server.py, engine.py (read as source)",
    )
    g.attr(
        label="Three serving architectures of this lab, request paths only (the metrics paths are in "
        "local-platform and serving-path-weekNN)",
        rankdir="TB",
    )
    gateway_week = next(w for w in WEEKS if {"haproxy", "triton"} <= set(facts.week(w).local))
    specs, _ = _local_specs(gateway_week, services=["triton", "haproxy"])
    gw = haproxy.default_spec()
    with g.subgraph(name="cluster_local") as c:
        c.attr(
            label=f"1. embedded local platform (`lab up`, week {gateway_week}): processes on 127.0.0.1", style="rounded"
        )
        c.node("l_client", "client (perf_analyzer, tritonclient)", shape="ellipse", fillcolor="#ffffff")
        h = specs["haproxy"]
        c.node("l_haproxy", "HAProxy gateway\\n" + "\\n".join(f"{r}: {p}" for r, p in h.ports.items()))
        c.edge("l_client", "l_haproxy", label=", ".join(f.name for f in gw.frontends))
        t = specs["triton"]
        control = t.info.get("model_control_mode", "")
        c.node(
            "l_triton",
            "tritonserver\\n" + "\\n".join(f"{r}: {p}" for r, p in t.ports.items()) + f"\\nmodel control {control}",
        )
        for b in gw.backends:
            for sv in b.servers:
                if sv.target.split(".", 1)[0] == "triton":
                    c.edge("l_haproxy", "l_triton", label=f"backend {b.name} ({b.balance})\\n{sv.target}")
        c.node(
            "l_models",
            "model repository\\n" + "\\n".join(facts.week(gateway_week).models),
            shape="folder",
            fillcolor="#fff8e1",
        )
        c.edge("l_triton", "l_models", label="serves", style="dashed")
    _, plans = _plans(CLUSTER_SERVING_WEEK)
    with g.subgraph(name="cluster_k8s") as c:
        c.attr(label=f"2. cluster stack (Pulumi.week{CLUSTER_SERVING_WEEK:02d}.yaml): Kubernetes", style="rounded")
        serving_into(c, CLUSTER_SERVING_WEEK, plans, p="k_", metrics=False)
    with g.subgraph(name="cluster_llm") as c:
        c.attr(label=f"3. LLM engine (workloads/llm, the local service llm of week {LLM_WEEK})", style="rounded")
        specs_llm, _ = _local_specs(LLM_WEEK, services=["llm"])
        sp = specs_llm["llm"]
        module = sp.argv[sp.argv.index("-m") + 1] if "-m" in sp.argv else Path(sp.argv[0]).name
        c.node("m_client", "client (OpenAI API)", shape="ellipse", fillcolor="#ffffff")
        c.node(
            "m_server",
            f"python -m {module}\\nhttp: {sp.ports['http']}\\n" + "\\n".join(_routes(LLM_SERVER)),
        )
        c.edge("m_client", "m_server", label="HTTP, SSE streaming")
        c.node(
            "m_engine",
            "LLMEngine: "
            + _wrap(_first_line(LLM_ENGINE))
            + "\\n\\nEngineConfig defaults\\l"
            + "\\l".join(_dataclass_defaults(LLM_ENGINE, "EngineConfig"))
            + "\\l",
            fillcolor="#e8f0fe",
        )
        c.edge("m_server", "m_engine", label="one asyncio task\\ndrives step()")
        c.node("m_models", "models (llm.model)\\n" + "\\n".join(llm.MODELS), shape="folder", fillcolor="#fff8e1")
        c.edge("m_engine", "m_models", label="runs", style="dashed")
    return g


# --- how the stacks grew -----------------------------------------------------------------------------------------


def _components(plans: list[Plan]) -> dict[str, list[str]]:
    """Component -> its Helm releases, for the components that create something."""
    return {p.name: [r.key for r in p.releases] for p in plans if p.releases or p.manifests or p.node_labels}


def stack_span(first: int, last: int) -> graphviz.Digraph:
    """Each week of `first`..`last`: its cluster components and local services, and what it adds or drops."""
    if not (first in WEEKS and last in WEEKS and first <= last):
        raise DiagramError(f"weeks {first}-{last}: allowed a span within {WEEKS[0]}-{WEEKS[-1]}")
    g = _graph(
        f"stack-weeks{first:02d}-{last:02d}",
        f"ailab/platform (plan_stack of Pulumi.week{first:02d}…{last:02d}.yaml) and weeks.yaml's local services",
        rankdir="TB",
    )
    g.attr(
        label=f"Weeks {first}–{last}: cluster components (Helm releases) and local services per week; "
        "edges: what the next week adds (+) and drops (−)"
    )
    prev: tuple[dict[str, list[str]], set[str]] | None = None
    for w in range(first, last + 1):
        _, plans = _plans(w)
        comps = _components(plans)
        local = list(facts.week(w).local)
        lines = [f"Week {w}", _wrap(facts.week(w).about, 60), ""]
        lines += [f"{c}" + (f" ({', '.join(r)})" if r else "") for c, r in comps.items()]
        label = "\\n".join(lines) + "\\n\\nlocal: " + _wrap(", ".join(local), 60)
        g.node(f"w{w:02d}", label, fillcolor="#e8f0fe" if w in (first, last) else "#f7f7f7")
        if prev is not None:
            pc, pl = prev
            diff = [f"+ {c}" + (f" ({', '.join(r)})" if r else "") for c, r in comps.items() if c not in pc]
            diff += [f"− {c}" for c in pc if c not in comps]
            for c in (c for c in comps if c in pc):
                diff += [f"+ {r} ({c})" for r in comps[c] if r not in pc[c]]
                diff += [f"− {r} ({c})" for r in pc[c] if r not in comps[c]]
            diff += [f"+ local {s}" for s in local if s not in pl] + [f"− local {s}" for s in sorted(pl - set(local))]
            g.edge(f"w{w - 1:02d}", f"w{w:02d}", label="\\n".join(diff) or "same components")
        prev = (comps, set(local))
    return g


def diagrams() -> dict[str, Callable[[], graphviz.Digraph]]:
    """Name -> builder of this module's diagrams."""
    out: dict[str, Callable[[], graphviz.Digraph]] = {f"thanos-week{THANOS_WEEK:02d}": thanos}
    out["inference-architectures"] = inference_architectures
    out |= {f"stack-weeks{a:02d}-{b:02d}": (lambda a=a, b=b: stack_span(a, b)) for a, b in STACK_SPANS}
    return out


__all__ = ["diagrams", "inference_architectures", "stack_span", "thanos"]
