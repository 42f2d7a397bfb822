"""Reading Triton's trace files into request trees and stage spans, the telemetry dashboard's queries, the ensemble
repository's configs, and `lab logs` over a collector records file (all without servers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ailab.cli import app
from ailab.observability.tools import check_exprs
from workloads.telemetry import dashboard, repository, traces
from workloads.telemetry.snapshot import apply


def _ts(tid: int, name: str, ns: int) -> dict:
    return {"id": tid, "timestamps": [{"name": name, "ns": ns}]}


def write_ensemble_trace(path: Path) -> None:
    """Triton 2.51's layout: one record per timestamp, the model record apart, steps linked by parent_id."""
    recs = [{"id": 2, "model_name": "pipeline", "model_version": 1, "request_id": "r1"}]
    recs += [_ts(2, n, t) for n, t in (("HTTP_RECV_START", 0), ("HTTP_RECV_END", 10), ("REQUEST_START", 20),
                                       ("QUEUE_START", 25), ("REQUEST_END", 900), ("HTTP_SEND_START", 910),
                                       ("HTTP_SEND_END", 920))]  # fmt: skip
    for tid, model, base in ((3, "normalize", 30), (4, "linear", 500)):
        recs.append({"id": tid, "model_name": model, "model_version": 1, "parent_id": 2})
        recs += [_ts(tid, n, base + d) for n, d in (("REQUEST_START", 0), ("QUEUE_START", 5), ("COMPUTE_START", 15),
                                                    ("COMPUTE_INPUT_END", 20), ("COMPUTE_OUTPUT_START", 300),
                                                    ("COMPUTE_END", 310), ("REQUEST_END", 320))]  # fmt: skip
    path.write_text(json.dumps(recs))


def test_an_ensemble_trace_becomes_a_tree_with_stage_spans(tmp_path: Path) -> None:
    write_ensemble_trace(tmp_path / "trace.json.0")
    found = traces.read(traces.trace_files(tmp_path / "trace.json"))
    root = found[2]
    assert (root.model, root.request_id, [c.model for c in root.children]) == (
        "pipeline",
        "r1",
        ["normalize", "linear"],
    )
    assert root.spans() == {"receive": (0, 10), "request": (20, 900), "send": (910, 920)}
    lanes = traces.lanes(root)
    assert ("normalize", "queue", 35, 45) in lanes
    assert ("linear", "infer", 520, 800) in lanes
    assert traces.wait_for(tmp_path / "trace.json", "r1", children=2, timeout_s=1).id == 2
    with pytest.raises(TimeoutError, match="no complete trace of request 'r2'"):
        traces.wait_for(tmp_path / "trace.json", "r2", timeout_s=0.2)


def test_trace_parts_are_read_in_write_order(tmp_path: Path) -> None:
    for i in (10, 2, 1):
        (tmp_path / f"trace.json.{i}").write_text("[]")
    assert [p.name for p in traces.trace_files(tmp_path / "trace.json")] == [
        "trace.json.1",
        "trace.json.2",
        "trace.json.10",
    ]


def test_exporter_counts_records_and_trace_stages(tmp_path: Path) -> None:
    write_ensemble_trace(tmp_path / "trace.json.0")
    rec = tmp_path / "records.jsonl"
    rec.write_text('{"service":"haproxy","status":404,"level":"info"}\n{"service":"triton"}\n{"service":')
    exp = dashboard.LogTraceExporter(rec, tmp_path / "trace.json")
    exp.poll()
    exp.poll()  # nothing counted twice
    reg = exp.registry
    assert reg.get_sample_value("lab_log_records_total", {"service": "haproxy", "level": "info", "status": "404"}) == 1
    labels = {"model": "pipeline", "step": "linear", "stage": "infer", "span": "step"}
    assert reg.get_sample_value("lab_trace_stage_seconds_count", labels) == 1
    assert reg.get_sample_value("lab_trace_stage_seconds_sum", labels) == pytest.approx(280e-9)


def test_every_telemetry_panel_query_is_valid_promql() -> None:
    model = dashboard.build()
    exprs = {
        f"{p['title']} {i}": apply(t["expr"], {"model": ".*"}, 1, 1, 60)
        for p in model["panels"]
        for i, t in enumerate(p["targets"])
    }
    assert check_exprs(exprs) == {}
    assert {dashboard.pillar(p) for p in model["panels"]} == {"metrics", "logs", "traces"}


def test_the_ensemble_repository_reads_back(tmp_path: Path) -> None:
    repo = repository.build(tmp_path / "models")
    text = (repo / "pipeline" / "config.pbtxt").read_text()
    assert 'platform: "ensemble"' in text and 'model_name: "normalize"' in text and 'model_name: "linear"' in text
    assert (repo / "linear" / "1" / "model.py").exists() and not (repo / "pipeline" / "1" / "model.py").exists()


def _records(state: Path) -> None:
    d = state / "data" / "syslogng"
    d.mkdir(parents=True)
    rows = [
        {"ts": "2026-12-02T01:00:00.1+00:00", "service": "haproxy", "model": "linear", "status": 200, "message": "a"},
        {"ts": "2026-12-02T01:00:01.1+00:00", "service": "haproxy", "model": "nope", "status": 404, "message": "b"},
        {"ts": "2026-12-02T01:00:02.1+00:00", "service": "triton", "model": "linear", "request_id": "r1",
         "message": "prepared r1"},
    ]  # fmt: skip
    (d / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"ts": "half')


def test_lab_logs_filters(tmp_path: Path) -> None:
    _records(tmp_path)

    def run(*args: str) -> list[dict]:
        res = CliRunner().invoke(app, ["logs", "--state-dir", str(tmp_path), "--json", *args])
        assert res.exit_code == 0, res.output
        return [json.loads(line) for line in res.output.splitlines()]

    assert [r["message"] for r in run("--service", "haproxy", "--status", "404")] == ["b"]
    assert [r["message"] for r in run("--model", "linear")] == ["a", "prepared r1"]
    assert [
        r["message"] for r in run("--since", "2026-12-02T01:00:01+00:00", "--until", "2026-12-02T01:00:02+00:00")
    ] == ["b"]
    assert [r["request_id"] for r in run("--grep", "prepared")] == ["r1"]
    res = CliRunner().invoke(app, ["logs", "--state-dir", str(tmp_path), "--count", "--service", "triton"])
    assert res.output.strip() == "1"


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--status", "99"], "--status 99: allowed an HTTP status 100-599"),
     (["--since", "last tuesday"], "--since 'last tuesday': not an ISO 8601 time"),
     (["--since", "2026-12-02T02:00:00", "--until", "2026-12-02T01:00:00"], "is not after --since")],
)  # fmt: skip
def test_lab_logs_refuses_bad_filters(tmp_path: Path, args: list[str], message: str) -> None:
    _records(tmp_path)
    res = CliRunner().invoke(app, ["logs", "--state-dir", str(tmp_path), *args])
    assert res.exit_code == 2 and message in res.output


def test_lab_logs_without_a_collector_says_so(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["logs", "--state-dir", str(tmp_path)])
    assert res.exit_code == 2 and "no collected logs" in res.output
