"""A container from the inference image runs the Day-3 ONNX inference and matches onnxruntime on the host;
with a read-only root it still writes logs and results to its volumes, and without them it fails clearly."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ailab.contract import paths
from workloads.images import build

pytestmark = pytest.mark.containers


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The Day-3 MLP (export_default_model, cached in .lab/work/models) and 16 held-out digits, readable by uid 10001;
    plus the logits onnxruntime computes for them on the host."""
    import onnxruntime as ort

    from workloads.models.mlp import export_default_model, sample_inputs

    model = export_default_model(paths.work_dir() / "models")
    d = tmp_path_factory.mktemp("in")
    shutil.copyfile(model, d / "mlp.onnx")
    x, _ = sample_inputs(16)
    np.save(d / "x.npy", x)
    for f in (d, d / "mlp.onnx", d / "x.npy"):
        f.chmod(0o755 if f.is_dir() else 0o644)
    (logits,) = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(["logits"], {"input": x})
    return d, logits


def writable(tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    d.chmod(0o777)  # the image runs as uid 10001
    return d


INFER = ["infer", "--model", "/in/mlp.onnx", "--input", "/in/x.npy", "--name", "day3"]


def read_only_run(
    engine: str, ref: str, inp: Path, logs: Path, out: Path, tmpfs: bool = True
) -> subprocess.CompletedProcess[str]:
    """The inference command in a read-only container with input, log and output volumes (and /tmp as tmpfs)."""
    flags = ["--read-only", "--read-only-tmpfs=false", *(["--tmpfs", "/tmp"] if tmpfs else [])]
    vols = ["-v", f"{inp}:/in:ro", "-v", f"{logs}:/var/log/ailab", "-v", f"{out}:/out"]
    return build.run([engine, "run", "--rm", *flags, *vols, ref, *INFER])


def test_read_only_container_inference_matches_host(engine, inference_image, model_dir, tmp_path) -> None:
    inp, expected = model_dir
    logs, out = writable(tmp_path, "logs"), writable(tmp_path, "out")
    p = read_only_run(engine, inference_image.ref, inp, logs, out)
    assert p.returncode == 0, p.stderr
    printed = json.loads(p.stdout.strip().splitlines()[-1])
    got = np.load(out / "day3.npy")
    assert got.shape == (16, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert printed["argmax"] == expected.argmax(axis=1).tolist()
    assert printed["batch"] == 16
    assert json.loads((out / "day3.json").read_text())["argmax"] == printed["argmax"]
    assert "infer model=/in/mlp.onnx batch=16" in (logs / "infer.log").read_text()


def test_read_only_without_log_volume_fails_clearly(engine, inference_image, model_dir) -> None:
    inp, _ = model_dir
    p = build.run([engine, "run", "--rm", "--read-only", "-v", f"{inp}:/in:ro", inference_image.ref, *INFER])
    assert p.returncode == 3
    assert "error: AILAB_LOG_DIR /var/log/ailab: not writable (Read-only file system)" in p.stderr
    assert "-v <logs>:/var/log/ailab" in p.stderr


def test_read_only_without_tmp_fails_clearly(engine, inference_image, model_dir, tmp_path) -> None:
    inp, _ = model_dir
    logs, out = writable(tmp_path, "logs"), writable(tmp_path, "out")
    p = read_only_run(engine, inference_image.ref, inp, logs, out, tmpfs=False)
    assert p.returncode == 3
    assert "error: TMPDIR /tmp: not writable" in p.stderr
    assert not list(out.iterdir()), "nothing may be written when a directory check fails"


def test_inference_image_runs_the_operator_controller(engine, inference_image) -> None:
    """The cluster's ModelDeployment operator Deployment runs `python -m kopf run -m workloads.operator.controller`
    from this image; the controller module, kopf and the Kubernetes client its reconcile uses must import there (no
    API server here to connect to)."""
    p = build.run(
        [
            engine,
            "run",
            "--rm",
            "--entrypoint",
            "python",
            inference_image.ref,
            "-c",
            "import kopf, kubernetes.client, kubernetes.config, workloads.operator.controller; "
            "print('kopf', kopf.__name__, 'kubernetes', kubernetes.__version__)",
        ]
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("kopf") and "kubernetes " in p.stdout
