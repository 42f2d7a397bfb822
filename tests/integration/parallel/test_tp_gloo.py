"""d80 tensor / sequence parallelism, run for real as 2 CPU processes over gloo (the GPU path uses NCCL; no GPU
here, so timings are meaningless and only the numerics and the collectives' wiring are checked)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from ailab.contract.paths import REPO_ROOT
from workloads.kernels import jsonl
from workloads.parallel import tp

pytestmark = pytest.mark.integration


def test_tensor_and_sequence_parallel_match_the_unsharded_stack() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "workloads.parallel.tp", "--cpu", "--ranks", "2"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r.get("mode"): r for r in jsonl.parse(proc.stdout).rows(case="d80")}
    assert set(rows) == {"1 device (reference)", "tensor parallel", "tensor + sequence parallel"}
    for mode in ("tensor parallel", "tensor + sequence parallel"):
        r = rows[mode]
        assert r.get("GPUs") == 2
        assert r.get("rel. error vs 1 device") < 1e-5  # fp32: only summation order differs
        assert 0 < r.get("communication") < r.get("time")
        # weights split in two (layer norms replicated, a few hundred bytes)
        assert r.get("weights per rank") == pytest.approx(rows["1 device (reference)"].get("weights per rank") / 2)


def test_modes_limit_the_run_to_the_chosen_parallel_form() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "workloads.parallel.tp", "--cpu", "--ranks", "2", "--modes", "sp"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r.get("mode"): r for r in jsonl.parse(proc.stdout).rows(case="d80")}
    assert set(rows) == {"1 device (reference)", "tensor + sequence parallel"}
    assert rows["tensor + sequence parallel"].get("rel. error vs 1 device") < 1e-5


def test_an_unknown_mode_is_refused_with_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "workloads.parallel.tp", "--cpu", "--modes", "pp"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "--modes pp: allowed a comma list of tp, sp" in proc.stderr


def test_shards_reassemble_the_full_weights() -> None:
    s = tp.shapes(quick=True, cpu=True)[0]
    full = tp.weights(s, seed=3, torch=torch)[0]
    parts = [tp.shard(full, r, 2) for r in range(2)]
    assert torch.equal(torch.cat([p["wq"] for p in parts], dim=1), full["wq"])
    assert torch.equal(torch.cat([p["wo"] for p in parts], dim=0), full["wo"])
    assert torch.equal(torch.cat([p["w1"] for p in parts], dim=1), full["w1"])
    assert torch.equal(torch.cat([p["w2"] for p in parts], dim=0), full["w2"])


def test_shapes_that_do_not_split_evenly_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"shape\.heads 4: must be a multiple of 3"):
        tp.Shape(hidden=64, heads=4, layers=1, batch=1, seq=12).check(3)
    with pytest.raises(ValueError, match=r"shape\.seq 10: must be a multiple of 4"):
        tp.Shape(hidden=64, heads=4, layers=1, batch=1, seq=10).check(4)
