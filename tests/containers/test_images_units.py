"""The pieces of the image tooling that need no container engine: catalogue, build-log parsing, wheel pins,
the entry point's directory checks and its inference on the host."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workloads.images import build, catalog, context, entrypoint

PODMAN_LOG = """\
[1/2] STEP 1/3: FROM localhost/ailab-debian:bookworm AS builder
[1/2] STEP 2/3: RUN python3 -m venv /opt/venv
--> Using cache 4962627041
--> 4962627041
[1/2] STEP 3/3: COPY inference/requirements.txt /tmp/req/
--> Using cache 98983e9b00
[2/2] STEP 1/3: FROM localhost/ailab-debian:bookworm AS runtime
[2/2] STEP 2/3: COPY src/workloads /opt/ailab/workloads
--> 1ed56e6b529
[2/2] STEP 3/3: USER 10001:10001
COMMIT localhost/ailab-inference:0.1.0
"""


def test_parse_steps_marks_cached_and_rebuilt_steps_per_stage() -> None:
    steps = build.parse_steps(PODMAN_LOG)
    assert [(s.stage, s.number, s.cached) for s in steps] == [
        (1, 1, False),
        (1, 2, True),
        (1, 3, True),
        (2, 1, False),
        (2, 2, False),
        (2, 3, False),
    ]
    r = build.BuildResult("x", 1.0, 0, steps)
    assert [s.instruction for s in r.rebuilt] == ["COPY src/workloads /opt/ailab/workloads", "USER 10001:10001"]


def test_catalog_refs_and_variants() -> None:
    assert catalog.ref("exporter") == f"{catalog.REGISTRY}/ailab-exporter:{catalog.TAG}"
    assert catalog.ref("exporter", "ghcr.io/lab/") == f"ghcr.io/lab/ailab-exporter:{catalog.TAG}"
    assert catalog.IMAGES["inference"].ref_of("onnx").endswith(f":{catalog.TAG}-onnx")
    with pytest.raises(KeyError, match=r"image 'gpu-burn': unknown \(allowed: inference, triton-models"):
        catalog.image("gpu-burn")
    with pytest.raises(KeyError, match=r"variant 'onnx' of image exporter: unknown \(allowed: none\)"):
        catalog.IMAGES["exporter"].ref_of("onnx")


def test_requirements_pin_every_package_exactly() -> None:
    files = sorted(context.IMAGES_DIR.glob("*/requirements*.txt"))
    assert {f.parent.name for f in files} == {"inference", "exporter", "d01", "cuda-kernels"}
    for req in files:
        for line in req.read_text().splitlines():
            spec = line.split("#", 1)[0].strip()
            if spec:
                assert "==" in spec, f"{req.name}: {spec!r} is not pinned with =="


def test_missing_wheel_for_a_pin_is_named(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("numpy==1.26.4\nonnx==1.22.0\n")
    (tmp_path / "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"")
    with pytest.raises(context.ContextError, match="no wheel for onnx; pin them exactly"):
        context.resolve_wheels([req], tmp_path)


def test_unwritable_log_dir_exits_3_with_the_mount_to_add(tmp_path, monkeypatch, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")  # a directory below a regular file cannot be created, even by root
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("AILAB_LOG_DIR", str(blocker / "logs"))
    monkeypatch.setenv("AILAB_OUTPUT_DIR", str(tmp_path / "out"))
    with pytest.raises(SystemExit) as exc:
        entrypoint.main(["infer", "--model", "m.onnx", "--input", "x.npy"])
    assert exc.value.code == entrypoint.EXIT_NOT_WRITABLE
    err = capsys.readouterr().err
    assert f"error: AILAB_LOG_DIR {blocker / 'logs'}: not writable" in err
    assert "-v <logs>:/var/log/ailab" in err


def test_entrypoint_infer_on_the_host_matches_onnxruntime(tmp_path, monkeypatch, capsys) -> None:
    """The same code the container runs, here on the host with a tiny ONNX graph (logits = input summed to 10)."""
    import onnx
    from onnx import TensorProto, helper

    w = np.arange(784 * 10, dtype=np.float32).reshape(784, 10) / 1e4
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [onnx.numpy_helper.from_array(w, "w")],
    )
    model = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    for var, sub in (("TMPDIR", "tmp"), ("AILAB_LOG_DIR", "logs"), ("AILAB_OUTPUT_DIR", "out")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    assert entrypoint.main(["infer", "--model", str(model), "--input", str(tmp_path / "x.npy")]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    got = np.load(tmp_path / "out" / "logits.npy")
    np.testing.assert_allclose(got, x.reshape(3, -1) @ w, rtol=1e-4)
    assert printed["argmax"] == got.argmax(axis=1).tolist()
    assert (tmp_path / "logs" / "infer.log").read_text().count("infer model=") == 1


def test_the_source_copy_carries_the_contract_floor_workloads_imports(tmp_path: Path) -> None:
    """workloads/ imports ailab.contract (and the operator reads its facts): an image without it cannot start."""
    context.copy_source(tmp_path)
    src = tmp_path / "src"
    assert (src / "workloads" / "operator" / "reconcile.py").is_file()
    assert (src / "ailab" / "__init__.py").is_file() and (src / "ailab" / "contract" / "experiment.py").is_file()
    assert list((src / "ailab" / "contract" / "facts").glob("*.yaml"))
    assert not (src / "ailab" / "runner.py").exists()  # only the floor, not the control plane
    assert not list(src.rglob("__pycache__"))
