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


def test_loading_puts_libstdcxx_in_the_global_symbol_scope():
    """The in-process workaround for the H200 load crash (docs/engines.md): after importing torch, libstdc++ is not
    in the global symbol scope; `libstdcxx_global` (called by `aot.load`) puts it there. Run in a fresh interpreter
    so this test's process state does not decide it. On this host the crash itself does not happen, so this proves
    the promotion, not the fix (the H200 check: tools/gpucall/aoti_diag.py's aot_load variant)."""
    import subprocess
    import sys

    code = (
        "import ctypes, workloads.engines.aot as a\n"
        "def has(n):\n"
        "    try:\n"
        "        getattr(ctypes.CDLL(None), n); return True\n"
        "    except AttributeError:\n"
        "        return False\n"
        "sym = '_ZNSt5ctypeIcE2idE'\n"
        "print(has(sym), a.libstdcxx_global().startswith('libstdc++.so.6 put'), has(sym))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "True"]
