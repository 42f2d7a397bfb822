"""d76.e2: the inference service's logs through the collector — Triton's request log and the gateway's access log
tailed by syslog-ng into JSON records, each request queried back by its model and status, lines lost under load
counted (every non-empty line of each tailed file against the records the collector wrote for that service)."""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Annotated

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.telemetry import repository
from workloads.telemetry.stack import infer, line_count, read_records, telemetry_platform

MISSING = "no_such_model"  # requests to it are answered 404 by Triton: the status the query must find


class LogsParams(Params):
    requests: Annotated[int, Field(ge=10, le=100_000)] = Field(default=3000, description="requests sent in total")
    concurrency: Annotated[int, Field(ge=1, le=64)] = Field(default=8, description="requests in flight")
    missing_every: Annotated[int, Field(ge=2, le=1000)] = Field(
        default=10, description="every Nth request goes to a model that does not exist (a 404 to find in the logs)"
    )
    drain_timeout_s: Annotated[float, Field(gt=0, le=600)] = Field(
        default=60.0, description="how long to wait for the collector to catch up after the load, s"
    )


def host_note() -> str:
    la = os.getloadavg()
    return f"host: {os.cpu_count()} cores, load average {la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f} (1/5/15 min) at start"


def _lag_ms(rec: dict) -> float | None:
    """Collector receive time minus the end of the request the HAProxy line logs (its accept time %tr + total
    time %Ta; HAProxy writes the line when the request ends), ms; None for a line that is not an access record."""
    try:
        line = json.loads(rec["message"])
        accepted = datetime.strptime(line["ts"], "%d/%b/%Y:%H:%M:%S.%f").astimezone()  # HAProxy logs local time
        got = datetime.fromisoformat(rec["ts"])
    except (KeyError, ValueError, TypeError):
        return None
    return (got - accepted).total_seconds() * 1e3 - float(line.get("t_total_ms", 0))


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def _plan(p: LogsParams) -> list[tuple[str, str]]:
    """(request id, model) of every request: linear and the ensemble alternate, every Nth to a missing model."""
    out = []
    for i in range(p.requests):
        model = (
            MISSING if i % p.missing_every == p.missing_every - 1 else (repository.SINGLE, repository.ENSEMBLE)[i % 2]
        )
        out.append((f"req-{i:06d}", model))
    return out


def collected_logs(ctx: Context, p: LogsParams) -> Output:
    """Send the requests through the gateway, wait for the collector, then query every request back."""
    note = host_note()
    plan = _plan(p)
    with telemetry_platform(ctx.platform, ctx.workdir / "stack") as s:
        for rid, model in plan[:4]:  # warm-up: python stubs, connections (queried like the rest)
            infer(s.gateway, model, rid)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(p.concurrency) as pool:
            statuses = list(pool.map(lambda rm: infer(s.gateway, rm[1], rm[0]), plan[4:]))
        load_s = time.perf_counter() - t0
        statuses = [200 if m != MISSING else 404 for _, m in plan[:4]] + statuses
        # drain: every non-empty line of each tailed file must appear as one record of that service
        t1 = time.perf_counter()
        while True:
            written = {svc: line_count(path) for svc, path in s.logs.items()}
            got = Counter(r.get("service") for r in read_records(s.records))
            if all(got[svc] >= n for svc, n in written.items()) or time.perf_counter() - t1 > p.drain_timeout_s:
                break
            time.sleep(0.25)
        drain_s = time.perf_counter() - t1
        records = read_records(s.records)
    sent = Counter((m, st) for (_, m), st in zip(plan, statuses, strict=True))
    gw = Counter((r.get("model"), r.get("status")) for r in records if r.get("service") == "haproxy" and "status" in r)
    triton_ids = {
        (r.get("model"), r.get("request_id")) for r in records if r.get("service") == "triton" and r.get("request_id")
    }
    queried = Table.of(
        "queried_back",
        [("model", ""), ("status", "HTTP"), ("sent", "requests"), ("gateway_records", "records"),
         ("triton_request_ids", "requests"), ("missing_in_gateway_log", "requests")],
        caption="Per (model, status) the client saw: records the query service=haproxy, model, status returns; "
        "distinct request ids Triton logged for that model (its verbose log names the request id and model of "
        "every request it accepted; a request to a missing model is refused before it gets an id).",
    )  # fmt: skip
    for (model, status), n in sorted(sent.items()):
        ids = {rid for rid, m in plan if m == model}
        found_ids = sum(1 for m, rid in triton_ids if m == model and rid in ids) if status == 200 else 0
        queried.add(model, status, n, gw[(model, status)], found_ids, max(0, n - gw[(model, status)]))
    got = Counter(r.get("service") for r in records)
    lines = Table.of(
        "lines",
        [("service", ""), ("lines_written", "lines"), ("records_collected", "records"), ("lost", "lines"),
         ("lost_pct", "%")],
        caption="Non-empty lines each service wrote to its log file while the collector ran, against the records "
        "the collector wrote for it (after the drain wait).",
    )  # fmt: skip
    for svc, n in sorted(written.items()):
        lost = max(0, n - got[svc])
        lines.add(svc, n, got[svc], lost, round(100 * lost / n, 3) if n else 0.0)
    total_lines = sum(written.values())
    load = Table.of(
        "load",
        [("requests", "requests"), ("concurrency", ""), ("duration", "s"), ("rate", "req/s"),
         ("log_lines_per_s", "lines/s"), ("drain_after_load", "s")],
    )  # fmt: skip
    load.add(len(plan) - 4, p.concurrency, round(load_s, 3), round((len(plan) - 4) / load_s, 1),
             round(total_lines / load_s, 1), round(drain_s, 3))  # fmt: skip
    lags = [x for r in records if r.get("service") == "haproxy" and "status" in r if (x := _lag_ms(r)) is not None]
    lag = Table.of(
        "delivery_lag",
        [("lines", ""), ("min", "ms"), ("p50", "ms"), ("p99", "ms"), ("max", "ms"), ("follow_freq", "s")],
        caption="Gateway access lines: the collector's receive time minus the end of the request the line logs "
        "(HAProxy's accept time %tr + total time %Ta; it writes the line then). The file is polled every follow_freq, "
        "so about half of it is expected at the median; HAProxy's times are ms-resolution readings of its event-loop "
        "clock, so values within a few ms (or a negative minimum on a loaded host) are that uncertainty.",
    )
    if lags:
        lag.add(
            len(lags), round(min(lags), 1), round(_pct(lags, 50), 1), round(_pct(lags, 99), 1), round(max(lags), 1), 0.2
        )
    lost_total = sum(r[3] for r in lines.rows)
    missing_gw = sum(r[5] for r in queried.rows)
    notes = [
        note,
        "collector: syslog-ng 3.38 tailing tritonserver's log (--log-verbose=1) and HAProxy's JSON access log with "
        "file() sources, parsed into JSON records (service, model, status, request_id, level, ts, message) under the "
        "state dir; `lab logs --service haproxy --model M --status S` runs the same query.",
        f"lines lost under load: {lost_total} of {total_lines} "
        f"({'none, as expected' if lost_total == 0 else 'NOT none'}); requests without a gateway record: {missing_gw}.",
    ]
    return Output(tables=[queried, lines, load, lag], notes=notes)
