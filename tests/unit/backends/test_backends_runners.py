"""Runners called as the lab calls them, without a server: the hot loop in-process (served=False), the C++ backend's
header probe and its skip. Served runs are in tests/integration/backends/."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.contract import Context, Skip
from workloads.backends import headers
from workloads.backends.experiments.cpp_backend import cpp_backend
from workloads.backends.experiments.hot_loop import HotLoopParams, hot_loop, python_vs_cpp


def ctx(tmp_path: Path, exp: str = "d67.e2") -> Context:
    return Context(experiment_id=exp, device="cpu", quick=True, workdir=tmp_path, log=lambda _: None)


def test_hot_loop_checks_every_impl_then_times_it(tmp_path: Path) -> None:
    p = HotLoopParams(impls=["cython", "numba", "cpp"], batch=4, words=40, repeats=5, served=False)
    out = hot_loop(ctx(tmp_path), p)
    t = {t.name: t for t in out.tables}["in_process"]
    assert [r[0] for r in t.rows] == ["python", "cython", "numba", "cpp"]  # python first: it is the reference
    assert all(r[1] == "yes" for r in t.rows) and t.rows[0][5] == 1.0
    assert all(r[2] > 0 for r in t.rows) and out.substitute is None


def test_python_vs_cpp_is_labelled_a_substitute(tmp_path: Path) -> None:
    out = python_vs_cpp(ctx(tmp_path, "d30.e2"), HotLoopParams(impls=["cpp"], batch=2, repeats=3, served=False))
    assert out.substitute is not None and "tritonbackend.h" in out.substitute.instead_of
    assert [r[0] for r in out.tables[0].rows] == ["python", "cpp"]


def test_hot_loop_params_refuse_unknown_impl() -> None:
    with pytest.raises(ValueError, match="impls"):
        HotLoopParams(impls=["pypy"])


def test_probe_finds_headers_where_they_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inc = tmp_path / "include" / "triton" / "core"
    inc.mkdir(parents=True)
    for h in headers.HEADERS:
        (inc / h).write_text("/* placed by the test */\n")
    monkeypatch.setattr(headers, "SYSTEM_DIRS", (tmp_path / "include",))
    p = headers.probe()
    assert p.complete and p.found["tritonbackend.h"] == [str(inc / "tritonbackend.h")]
    assert str(tmp_path / "include") in p.looked_in


def test_probe_reads_the_servers_api_versions() -> None:
    p = headers.probe()
    assert p.versions["nvidia-pytriton"] == "0.7.0"
    assert p.server_api["TRITONBACKEND"].startswith("1.") and p.server_api["TRITONSERVER"].startswith("1.")


def test_cpp_backend_skips_with_the_evidence_when_no_headers(tmp_path: Path) -> None:
    if headers.probe().complete:
        pytest.skip("this host has backend headers installed")
    with pytest.raises(Skip) as e:
        cpp_backend(ctx(tmp_path, "d31.e1"))
    reason = str(e.value)
    assert "tritonbackend.h: not found" in reason and "TRITONBACKEND API 1." in reason
    assert "REGISTRY-CHECK.md" in reason
