"""Serving runners' typed parameters: every binding validates when the catalogue loads, and a bad override
(`lab run ... --set`) fails before anything starts, naming the experiment, the field, the value and what is allowed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ailab.contract.params import ParamsError
from ailab.curriculum.loader import load_catalogue
from ailab.runner import check_overrides, parse_overrides, resolve_params

SERVING = [
    "d05.e1", "d05.e2", "d05.e3", "d05.e4", "d05.e5", "d07.e1", "d07.e2", "d07.e5",
    "d18.e2", "d32.e1", "d32.e2", "d32.e3", "d54.e1", "d54.e2", "d54.e4",
]  # fmt: skip


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


@pytest.mark.parametrize("exp_id", SERVING)
def test_every_serving_binding_is_typed_and_valid_in_full_and_quick(catalogue, exp_id):
    exp = catalogue.experiments[exp_id]
    assert exp.binding.runner.startswith("workloads.serving.experiments.")
    for quick in (False, True):
        typed, plain = resolve_params(exp, quick)
        assert typed is not None and plain == typed.model_dump(mode="json")


def test_overrides_reach_the_typed_params(catalogue):
    exp = catalogue.experiments["d07.e1"]
    typed, _ = resolve_params(exp, False, parse_overrides(["max_qps=5000", "growth=1.5", "protocol=http"]))
    assert (typed.max_qps, typed.growth, typed.protocol) == (5000.0, 1.5, "http")


@pytest.mark.parametrize(
    ("exp_id", "item", "expected"),
    [
        ("d07.e1", "growth=0.5", "field growth = 0.5: Input should be greater than or equal to 1.05"),
        ("d07.e1", "qps=[400, 200]", "the listed targets must be strictly increasing"),
        ("d07.e1", "max_qps=1000", "max_qps 1000 is below the last listed target 2000"),
        ("d07.e2", "protocol=udp", "field protocol = 'udp': Input should be 'grpc' or 'http'"),
        ("d05.e5", "split=[50, 40]", "split [50, 40]: [stable %, canary %] must sum to 100"),
        ("d05.e1", "counts=[1, 0]", "field counts.1 = 0: Input should be greater than or equal to 1"),
        ("d07.e5", "kill_at_s=20", "kill_at_s 20 must be less than duration_s 12"),
    ],
)
def test_a_bad_override_names_the_experiment_and_field(catalogue, exp_id, item, expected):
    with pytest.raises(ParamsError) as e:
        check_overrides([catalogue.experiments[exp_id]], parse_overrides([item]), quick=False)
    msg = str(e.value)
    assert msg.startswith(f"{exp_id} (workloads.serving.experiments.") and expected in msg, msg


def test_lab_run_refuses_a_bad_value_with_exit_2_before_starting_anything(lab_tmp: Path):
    env = {**os.environ}  # lab_tmp points results, reports and state (work dir included) at tmp_path
    r = subprocess.run(
        [sys.executable, "-m", "ailab.cli", "run", "d07.e1", "--set", "growth=0.5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    err = " ".join(r.stderr.split())  # rich wraps at the terminal's width
    assert "d07.e1 (workloads.serving.experiments.qps_sweep:qps_sweep): field growth = 0.5" in err, err
    assert not (lab_tmp / "results").exists() and not (lab_tmp / "state").exists()
