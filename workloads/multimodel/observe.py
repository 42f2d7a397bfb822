"""Per-model latency from a live Prometheus scraping the local tritonserver, through the panel queries of the
generated Triton dashboard (dashboards/grafana/triton.json, written by `ailab.observability`): the panel a Grafana
user would look at, evaluated on Prometheus' query API.

    with observed(ctx, specs, args) as (srv, prom):   # tritonserver + Prometheus (1 s scrape) on free ports
        ...load...
        per_model = evaluate(prom, panel_queries("Queue vs compute time per request")[1][0], window_s=10)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from ailab.contract import Context, paths
from workloads.observability.prom import Prom
from workloads.serving.harness import Served
from workloads.serving.modelspec import ModelSpec

DASHBOARD = paths.REPO_ROOT / "dashboards" / "grafana" / "triton.json"


def panel_queries(title: str, dashboard: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(expr, legend) of every query of the panel called `title` in the generated dashboard; KeyError if absent."""
    model = json.loads(Path(dashboard).read_text())
    for p in model.get("panels", []):
        if p.get("title") == title:
            return [(t["expr"], t.get("legendFormat", "")) for t in p.get("targets", [])]
    raise KeyError(f"{dashboard}: no panel titled {title!r}")


def concrete(expr: str, rate_window: str) -> str:
    """A panel query with Grafana's variables filled in: every instance and model, `rate_window` for
    $__rate_interval (what Grafana would substitute)."""
    return (
        expr.replace("$__rate_interval", rate_window).replace('=~"$instance"', '=~".*"').replace('=~"$model"', '=~".*"')
    )


def evaluate(
    prom: Prom, expr: str, window_s: float, at: float | None = None, scrape_s: float = 1.0
) -> dict[str, float]:
    """model -> value of the panel query over the last `window_s` seconds, rounded to whole seconds and at least two
    scrape intervals (so every rate has two samples), at `at` (default now)."""
    out = {}
    window_ms = round(1000 * max(2 * scrape_s, round(window_s)))
    for r in prom.query(concrete(expr, f"{window_ms}ms"), at=at):
        out[r["metric"].get("model", "")] = float(r["value"][1])
    return out


def range_by_model(
    prom: Prom, expr: str, start: float, end: float, step_s: float = 1.0, rate_window_s: int = 5
) -> dict[str, list[tuple[float, float]]]:
    """model -> [(seconds since start, value)] of the panel query with a short rate window (a curve over time)."""
    data = prom.get(
        "/api/v1/query_range",
        {"query": concrete(expr, f"{rate_window_s}s"), "start": start, "end": end, "step": step_s},
    )
    out: dict[str, list[tuple[float, float]]] = {}
    for r in data["result"]:
        pts = [(round(float(t) - start, 1), float(v)) for t, v in r["values"] if v not in ("NaN", "+Inf", "-Inf")]
        out[r["metric"].get("model", "")] = pts
    return out


def prometheus_options(scrape_interval: str) -> dict[str, object]:
    """The platform options of observed()'s Prometheus: no service scraped by name (the server is a file_sd target)."""
    return {"prometheus.scrape": [], "prometheus.scrape_interval": scrape_interval}


@contextmanager
def observed(
    ctx: Context, specs: Sequence[ModelSpec], args: Sequence[str] = (), scrape_interval: str = "1s"
) -> Iterator[tuple[Served, Prom]]:
    """tritonserver over a repository built from `specs` (extra server `args`) and a Prometheus scraping it (a
    file_sd target, job `triton`), both on free ports through the context's local platform; stopped on exit.
    The server comes from the serving harness, so a quick run may lend one an earlier experiment started for the
    same models (harness.serve).

    The Prometheus is this experiment's own, fresh, except in a quick run whose pool started one when the run began
    (the binding's quick_services, ailab/local/pool.py) with these options: then it is that one, and its spare
    target is claimed: the server's metrics endpoint starts on the spare's reserved port, which Prometheus has been
    trying since its start, and the first sample comes within a scrape interval of the server's start.

    Otherwise the target is written once the server is up. Prometheus 2.42 hands new targets to its scrapers only
    on 5 s ticks counted from its start, so a fresh one's first scrape of Triton comes about 5 s after it starts
    whatever else happens: it starts first, and the server's start fits inside that wait instead of before it."""
    from ailab.contract.ports import claim_spare_target
    from workloads.observability.metering import static_target
    from workloads.observability.stack import fresh_data
    from workloads.serving import harness

    state = ctx.workdir / "observed"
    fresh_data(state)
    own_targets = state / "prometheus" / "targets"
    for old in own_targets.glob("loadgen-*.json"):  # an earlier run's server address must not be scraped
        old.unlink()
    own_targets.mkdir(parents=True, exist_ok=True)  # watched from the start: the target written below is seen at once
    opts = prometheus_options(scrape_interval)
    kw = {"reuse": True} if ctx.quick else {}  # a factory without pooling need not know the argument
    with ctx.platform(services=["prometheus"], state_dir=state, options=opts, **kw) as p:
        info = p.record("prometheus").info or {}
        targets = Path(info.get("targets_dir", own_targets))
        spare = claim_spare_target(targets)
        with harness.serve(ctx, specs, args=args, warm_requests=0, metrics_port=spare) as srv:
            address = srv.platform.address("triton", "metrics")
            if spare is None:
                static_target(targets, "triton", address)
            prom = Prom(p.url("prometheus", "http"))
            # this server's own series: a lent Prometheus may hold an earlier experiment's
            prom.wait_for(f'nv_inference_request_success{{instance="{address}"}}', timeout_s=60)
            yield srv, prom


SettleMode = Literal["two_scrapes", "next_scrape"]


def settle(prom: Prom, scrape_s: float = 1.0) -> float:
    """Wait two scrape intervals so the last requests are in Prometheus; the time to evaluate queries at."""
    time.sleep(2 * scrape_s + 0.5)
    return time.time()


def scraped_after(prom: Prom, t: float, timeout_s: float = 30.0) -> float:
    """Wait until Prometheus holds a scrape of Triton taken after wall-clock time `t` (so every request finished
    before `t` is counted in it); the time to evaluate queries at. A condition, not a fixed two-interval sleep."""
    prom.wait_for("max(timestamp(nv_inference_request_success))", timeout_s, cond=lambda ts: ts > t)
    return time.time()


def settled(prom: Prom, mode: SettleMode, scrape_s: float = 1.0) -> float:
    """settle() (`two_scrapes`, what the full runs were measured with) or scraped_after() now (`next_scrape`)."""
    return settle(prom, scrape_s) if mode == "two_scrapes" else scraped_after(prom, time.time())
