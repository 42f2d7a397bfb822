"""AOT packages refuse to load on another device (no compile here: that takes half a minute on this CPU)."""

from __future__ import annotations

import json

import pytest

from workloads.engines import aot


def test_package_built_for_another_gpu_is_refused_naming_the_field(tmp_path):
    pkg = tmp_path / "cnn_b1.pt2"
    pkg.write_bytes(b"not loaded: the check comes first")
    built = {"device": "cuda", "gpu": "NVIDIA H100", "capability": "sm_90", "torch": "2.11.0", "batch": 1}
    pkg.with_suffix(".json").write_text(json.dumps(built))
    with pytest.raises(aot.PackageDeviceError, match=r"field device = 'cuda' \(built for\), but this host has 'cpu'"):
        aot.load(pkg, "cpu")
    with pytest.raises(aot.PackageDeviceError, match="field capability = 'sm_90'"):
        aot.check_fingerprint(built, {**built, "capability": "sm_80"}, pkg)


def test_package_without_sidecar_is_refused(tmp_path):
    pkg = tmp_path / "x.pt2"
    pkg.write_bytes(b"")
    with pytest.raises(aot.PackageDeviceError, match="cannot tell which device"):
        aot.load(pkg, "cpu")
