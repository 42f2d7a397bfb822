"""Engines as files: AOTInductor packages (`.pt2`), the stand-in for serialised TensorRT engines.

A package is compiled ahead of time for one static input shape and one device, written with a sidecar
`<name>.json` that records the device it was built for; `load` refuses a package built for another device (as a
TensorRT engine is tied to its GPU model and TensorRT version) with an error naming the field.
"""

from __future__ import annotations

import ctypes
import json
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn


class PackageDeviceError(ValueError):
    """A package built for another device or PyTorch version than this one."""


def device_fingerprint(device: str) -> dict[str, Any]:
    """What a compiled package depends on: device kind, GPU name and compute capability, torch version."""
    fp: dict[str, Any] = {"device": device, "torch": torch.__version__}
    if device == "cuda":
        fp["gpu"] = torch.cuda.get_device_name()
        fp["capability"] = "sm_{}{}".format(*torch.cuda.get_device_capability())
    return fp


def check_fingerprint(built_for: dict[str, Any], here: dict[str, Any], path: Path) -> None:
    """PackageDeviceError naming the first field where `built_for` and `here` differ."""
    for key in ("device", "capability", "torch"):
        if built_for.get(key) != here.get(key):
            raise PackageDeviceError(
                f"{path.name}: field {key} = {built_for.get(key)!r} (built for), but this host has {here.get(key)!r}; "
                "rebuild the package on this device"
            )


@dataclass
class Package:
    path: Path
    batch: int
    compile_s: float
    size_mib: float

    def as_dict(self) -> dict:
        return {**asdict(self), "path": self.path.name}


def build(model: nn.Module, example: torch.Tensor, path: Path, device: str) -> Package:
    """torch.export + AOTInductor compile of `model` for `example`'s static shape; writes `path` and its sidecar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with torch.no_grad():
        ep = torch.export.export(model.eval(), (example,))
        torch._inductor.aoti_compile_and_package(ep, package_path=str(path))
    secs = time.perf_counter() - t0
    path.with_suffix(".json").write_text(json.dumps({**device_fingerprint(device), "batch": example.shape[0]}))
    return Package(path, int(example.shape[0]), secs, path.stat().st_size / 2**20)


LIBSTDCXX = "libstdc++.so.6"


@lru_cache(maxsize=1)
def libstdcxx_global() -> str:
    """Put the process's libstdc++ into the global symbol scope (dlopen RTLD_GLOBAL of the one already mapped);
    what it did, for the result's notes.

    On the H200 machine a package's `wrapper.so` loaded into a fresh process died of SIGSEGV in `std::regex`: the
    wrapper defines weak copies of libstdc++'s facet vtables, and with libstdc++ absent from the global scope
    (importing torch does not put it there) it bound to its own copies. Preloading libstdc++ made the same load
    run (reports/checks/aoti-diag/h200.json, docs/engines.md). This does the equivalent in-process."""
    try:
        ctypes.CDLL(LIBSTDCXX, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        return f"{LIBSTDCXX} could not be put in the global symbol scope: {e}"
    return f"{LIBSTDCXX} put in the global symbol scope before loading (dlopen RTLD_GLOBAL)"


def load(path: Path, device: str) -> tuple[Any, float]:
    """(runner, seconds to load), after checking the package was built for this device; libstdc++ is put in the
    global symbol scope first (`libstdcxx_global`)."""
    meta = path.with_suffix(".json")
    if not meta.exists():
        raise PackageDeviceError(f"{path.name}: no {meta.name} beside it; cannot tell which device it was built for")
    check_fingerprint(json.loads(meta.read_text()), device_fingerprint(device), path)
    libstdcxx_global()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    runner = torch._inductor.aoti_load_package(str(path))
    return runner, time.perf_counter() - t0
