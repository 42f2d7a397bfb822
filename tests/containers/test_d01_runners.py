"""d01's runners as the lab calls them (Context by keyword + typed params): bad parameters are refused when the
catalogue loads, naming the field; the limits runner turns the engine's exit codes into its table and notes.

The engine is replaced by recorded answers in the runner test (no podman here needed): what is checked is how the
runner reads exit codes and the OOMKilled flag, not podman itself (tests/containers/test_images_inference.py runs
the real image)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.contract import Context
from ailab.contract.params import ParamsError, validate
from workloads.images.experiments import image_builds, run_limits


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        (image_builds.InstallerParams, {"repeats": 0}, "field repeats = 0: Input should be greater than or equal"),
        (image_builds.BuildParams, {"base": "Not An Image"}, "field base = 'Not An Image': String should match"),
        (run_limits.ReadOnlyParams, {"batch": 2048}, "field batch = 2048: Input should be less than or equal to 1024"),
        (run_limits.LimitsParams, {"memory": "512MB"}, "field memory = '512MB': String should match pattern"),
        (run_limits.LimitsParams, {"pids_limit": 2}, "field pids_limit = 2: Input should be greater than or equal"),
        (run_limits.LimitsParams, {"memory": "1g", "alloc_mib": 512}, "alloc_mib 512: allowed more than memory (1g"),
        (run_limits.LimitsParams, {"cpus": 2}, "field cpus: unknown parameter (allowed: alloc_mib, base, memory"),
    ],
)
def test_bad_d01_params_are_refused_naming_the_field(model, params, message) -> None:
    with pytest.raises(ParamsError) as e:
        validate(model, params)
    assert message in str(e.value)


def test_limits_runner_reads_exit_codes_and_the_oom_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    answers = {  # (first flag or "-", command) -> what the engine answered
        ("-", "stress-memory"): run_limits.Ran(0, "cgroup memory.max: max\nallocated 1024 MiB", "", 2.0, "false"),
        ("--memory=512m", "stress-memory"): run_limits.Ran(137, "cgroup memory.max: 536870912\nallocated 448 MiB",
                                                          "", 1.5, "false"),
        ("-", "stress-pids"): run_limits.Ran(0, "cgroup pids.max: max\nforked 192", "", 10.5, "false"),
        ("--pids-limit=64", "stress-pids"): run_limits.Ran(4, "cgroup pids.max: 64\nfork refused after 60", "",
                                                          0.8, "false"),
    }  # fmt: skip
    calls = []

    def fake_run(eng: str, args: list[str], inspect: bool = False, timeout: float = 180) -> run_limits.Ran:
        calls.append(args)
        cmd = next(a for a in args if a.startswith("stress-"))
        first = args[0] if args[0].startswith("--") else "-"
        return answers[(first, cmd)]

    monkeypatch.setattr(run_limits, "image", lambda p: ("podman", "localhost/ailab-inference-onnx:test"))
    monkeypatch.setattr(run_limits, "run", fake_run)
    ctx = Context(experiment_id="d01.e5", device="cpu", quick=False, workdir=tmp_path)
    out = run_limits.limits(ctx, run_limits.LimitsParams(memory="512m", pids_limit=64, alloc_mib=1024))
    (t,) = out.tables
    rows = {r[0]: r for r in t.rows}
    assert rows["memory: limited"][1:4] == ["--memory=512m --memory-swap=512m", 137, "false"]
    assert rows["memory: limited"][5] == "536870912"
    assert rows["pids: limited"][2] == 4 and rows["pids: limited"][6] == "fork refused after 60"
    assert calls[3][-5:] == ["stress-pids", "--max", "192", "--hold-s", "10"]
    assert any("OOMKilled=false" in n and "memory: limited" in n for n in out.notes)
    assert not any("pids" in n and "OOMKilled" in n for n in out.notes)
