"""The collector's and Triton's tracing settings: generated, checked by the real tools, bad values refused before
anything starts, naming the field. syslog-ng's own --syntax-only runs here (no server is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.local.registry import PlatformError
from ailab.local.services import syslogng, triton
from ailab.local.spec import PlatformContext

pytestmark = pytest.mark.skipif(
    syslogng.binary() is None, reason="syslog-ng not installed (apt-get install syslog-ng-core)"
)


def _ctx(tmp_path: Path, **options: object) -> PlatformContext:
    return PlatformContext(week=11, state_dir=tmp_path, free_ports=True, options=dict(options))


def test_generated_config_passes_syntax_only_and_runs_unprivileged(tmp_path: Path) -> None:
    spec = syslogng.spec(_ctx(tmp_path, **{"syslogng.sources": ["triton", "haproxy", "prometheus"]}))
    cfg = Path(spec.info["config"])
    text = cfg.read_text()
    for svc in ("triton", "haproxy", "prometheus"):
        assert f'file("{tmp_path / "logs" / svc}.log" flags(no-parse)' in text
    assert 'network(ip("127.0.0.1")' in text  # loopback only
    argv = " ".join(spec.argv)
    for flag in ("-R", "-p", "-c"):
        assert f"{flag} {tmp_path / 'syslogng'}" in argv  # persist, pid and control files under the state dir
    assert spec.info["records"] == str(tmp_path / "data" / "syslogng" / "records.jsonl")


@pytest.mark.parametrize(
    ("options", "message"),
    [({"syslogng.sources": ["triton", "nginx"]}, r"syslogng.sources \['nginx'\]: unknown service"),
     ({"syslogng.sources": []}, "syslogng.sources is empty"),
     ({"syslogng.sources": "triton"}, "syslogng.sources 'triton': a list"),
     ({"syslogng.sources": ["triton"], "syslogng.follow_freq_s": 0}, r"follow_freq_s 0: allowed a number 0.05-10")],
)  # fmt: skip
def test_bad_collector_options_are_refused_naming_the_field(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(PlatformError, match=message):
        syslogng.spec(_ctx(tmp_path, **options))
    assert not (tmp_path / "syslogng" / "syslog-ng.conf").exists()  # refused before anything was written


def test_a_config_syslog_ng_rejects_is_refused_with_its_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text('@version: 3.38\nsource s { file("/x" flags(no-such-flag)); };\n')
    with pytest.raises(PlatformError, match="rejected by `syslog-ng --syntax-only`"):
        syslogng.check(syslogng.binary() or "", bad)


def test_trace_config_arguments(tmp_path: Path) -> None:
    args = triton.trace_args({"rate": 10, "level": "TIMESTAMPS", "log_frequency": 1}, tmp_path)
    assert args == [
        "--trace-config=mode=triton",
        f"--trace-config=triton,file={tmp_path / 'triton' / 'trace.json'}",
        "--trace-config=triton,log-frequency=1",
        "--trace-config=rate=10",
        "--trace-config=count=-1",
        "--trace-config=level=TIMESTAMPS",
    ]
    assert triton.trace_args(None, tmp_path) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [({"rate": 0}, r"triton.trace.rate 0: allowed an integer >= 1"),
     ({"level": "VERBOSE"}, r"triton.trace.level 'VERBOSE': allowed TIMESTAMPS, TENSORS"),
     ({"count": -2}, r"triton.trace.count -2: allowed an integer >= -1"),
     ({"rate": 1, "sample": 3}, r"unknown field\(s\) \['sample'\]"),
     ("TIMESTAMPS", "a dict with")],
)  # fmt: skip
def test_bad_trace_options_are_refused_naming_the_field(tmp_path: Path, value: object, message: str) -> None:
    with pytest.raises(PlatformError, match=message):
        triton.trace_args(value, tmp_path)


@pytest.mark.parametrize("value", [80, 70000, "8002", True])
def test_a_bad_metrics_port_is_refused_naming_the_option(value: object) -> None:
    with pytest.raises(PlatformError, match=r"option triton.metrics_port .*: allowed an integer 1024-65535"):
        triton.metrics_port(value)


def test_log_verbose_is_checked() -> None:
    assert triton.log_verbose(1) == 1
    with pytest.raises(PlatformError, match=r"triton.log_verbose 7: allowed an integer 0-3"):
        triton.log_verbose(7)
