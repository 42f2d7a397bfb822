"""`python -m workloads.models.onnx_infer` and `lab infer`: predictions, accuracy and clear input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ailab.cli import app
from workloads.models import onnx_infer


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "workloads.models.onnx_infer", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)


def test_script_prints_predictions_and_accuracy(default_model: Path) -> None:
    p = _cli("--model", str(default_model), "--batch", "8", "--samples", "20")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "batch 8" in lines[0] and "calls 3" in lines[0]  # 20 images in batches of 8
    assert len([ln for ln in lines if ln.strip()[:1].isdigit()]) == 20
    assert lines[-1].startswith("accuracy ") and "/20)" in lines[-1]


def test_script_json_output(default_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert onnx_infer.main(["--model", str(default_model), "--batch", "32", "--samples", "64", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["batch"], r["samples"], r["calls"]) == (32, 64, 2)
    assert r["accuracy"] >= 0.85 and len(r["predictions"]) == 64


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "0"], "error: --batch 0: must be an integer >= 1"),
        (["--samples", "-1"], "error: --samples -1: must be an integer >= 1"),
        (["--opt-level", "max"], "error: --opt-level 'max': allowed disabled, basic, extended, all"),
    ],
)
def test_script_rejects_bad_input(
    default_model: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert onnx_infer.main(["--model", str(default_model), *args]) == 2
    assert message in capsys.readouterr().err


def test_missing_model_is_an_error_unless_exported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "sub" / "digits.onnx"
    assert onnx_infer.main(["--model", str(target)]) == 2
    assert f"--model {target}: file not found" in capsys.readouterr().err
    assert not target.exists()
    assert onnx_infer.main(["--model", str(target), "--export", "--samples", "4"]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert target.exists() and sorted(x.name for x in target.parent.iterdir()) == ["digits.onnx"]


def test_lab_infer(default_model: Path) -> None:
    r = CliRunner().invoke(app, ["infer", "--model", str(default_model), "--samples", "10", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["samples"] == 10
    bad = CliRunner().invoke(app, ["infer", "--model", str(default_model), "--batch", "0"])
    assert bad.exit_code == 2 and "--batch 0: must be an integer >= 1" in bad.output
