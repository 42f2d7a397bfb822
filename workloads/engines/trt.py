"""The TensorRT path, for hosts that have TensorRT: build settings, `trtexec`/Polygraphy command lines, the
builder and the INT8 calibrator. `tensorrt` is imported only inside the functions that need it.

Everything that needs no TensorRT (settings validation, command lines) is plain Python and unit-tested; the
runners call `require_tensorrt()` first and record "needs TensorRT" where it is missing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workloads.engines.calibration import CALIBRATORS, batches, check_calibrator
from workloads.engines.profiles import ShapeProfile

PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8")
# lowest compute capability that runs each precision on tensor cores (FP8: Ada sm_89 and Hopper sm_90)
MIN_SM = {"fp32": (0, 0), "tf32": (8, 0), "fp16": (7, 0), "bf16": (8, 0), "int8": (6, 1), "fp8": (8, 9)}
TACTIC_SOURCES = ("CUBLAS", "CUBLAS_LT", "CUDNN", "EDGE_MASK_CONVOLUTIONS", "JIT_CONVOLUTIONS")


class BuildConfigError(ValueError):
    """A bad engine build setting; the message names the field, the value and what is allowed."""


class TensorRTMissingError(RuntimeError):
    """TensorRT is not installed on this host."""


def require_tensorrt() -> Any:
    """The `tensorrt` module, or TensorRTMissingError with what to install."""
    try:
        import tensorrt
    except ImportError as err:
        raise TensorRTMissingError(
            "needs TensorRT: the `tensorrt` Python package is not importable here (install TensorRT 10 from "
            "NVIDIA's index or use the NGC TensorRT container)"
        ) from err
    return tensorrt


def check_precision(precision: str, compute_capability: tuple[int, int]) -> str:
    """`precision` if the device runs it, else BuildConfigError naming the field, the device and the minimum."""
    if precision not in PRECISIONS:
        raise BuildConfigError(f"field precision = {precision!r}: allowed {', '.join(PRECISIONS)}")
    need = MIN_SM[precision]
    if tuple(compute_capability) < need:
        cc = "sm_{}{}".format(*compute_capability)
        raise BuildConfigError(
            f"field precision = {precision!r}: not supported on {cc}; needs sm_{need[0]}{need[1]} or newer"
        )
    return precision


@dataclass(frozen=True)
class BuildConfig:
    """What `trtexec` or the builder API is told: precision, workspace, tactics, cache, profiles, calibration."""

    precision: str = "fp16"
    workspace_mib: int = 1024
    tactic_sources: tuple[str, ...] = ()  # () = TensorRT's default set
    timing_cache: str | None = None
    profiles: tuple[ShapeProfile, ...] = ()
    calibrator: str = "entropy"  # int8 only
    calibration_cache: str | None = None
    builder_optimization_level: int = 3

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BuildConfigError(f"field precision = {self.precision!r}: allowed {', '.join(PRECISIONS)}")
        if self.workspace_mib < 1:
            raise BuildConfigError(f"field workspace_mib = {self.workspace_mib}: must be >= 1")
        bad = [s for s in self.tactic_sources if s.lstrip("-+") not in TACTIC_SOURCES]
        if bad:
            raise BuildConfigError(f"field tactic_sources = {bad}: allowed [+|-]{', '.join(TACTIC_SOURCES)}")
        if not 0 <= self.builder_optimization_level <= 5:
            raise BuildConfigError(f"field builder_optimization_level = {self.builder_optimization_level}: 0..5")
        check_calibrator(self.calibrator)
        names = [p.name for p in self.profiles]
        if len(set(names)) != len(names):
            raise BuildConfigError(f"field profiles: names {names} repeat; each profile needs its own name")


def trtexec_command(cfg: BuildConfig, onnx: str, engine: str) -> list[str]:
    """The `trtexec` line that builds `engine` from `onnx` with `cfg` (one profile: trtexec takes one per build)."""
    cmd = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}", f"--memPoolSize=workspace:{cfg.workspace_mib}M"]
    if cfg.precision == "fp32":
        cmd.append("--noTF32")
    elif cfg.precision != "tf32":
        cmd.append(f"--{cfg.precision}")
    if cfg.precision == "int8" and cfg.calibration_cache:
        cmd.append(f"--calib={cfg.calibration_cache}")
    if cfg.tactic_sources:
        cmd.append("--tacticSources=" + ",".join(s if s[0] in "+-" else "+" + s for s in cfg.tactic_sources))
    if cfg.timing_cache:
        cmd.append(f"--timingCacheFile={cfg.timing_cache}")
    if len(cfg.profiles) > 1:
        raise BuildConfigError(f"field profiles: trtexec builds one profile per input; got {len(cfg.profiles)}")
    for p in cfg.profiles:
        s = p.trtexec()
        cmd += [f"--minShapes={s['min']}", f"--optShapes={s['opt']}", f"--maxShapes={s['max']}"]
    cmd.append(f"--builderOptimizationLevel={cfg.builder_optimization_level}")
    return cmd


def polygraphy_commands(cfg: BuildConfig, onnx: str, engine: str, calib_script: str | None = None) -> list[list[str]]:
    """Polygraphy: build the engine, then compare it with ONNX Runtime on the same inputs."""
    build = ["polygraphy", "convert", onnx, "-o", engine, "--pool-limit", f"workspace:{cfg.workspace_mib}M"]
    if cfg.precision not in ("fp32", "tf32"):
        build.append(f"--{cfg.precision}")
    if cfg.precision == "int8" and calib_script:
        build += ["--data-loader-script", calib_script]
        if cfg.calibration_cache:
            build += ["--calibration-cache", cfg.calibration_cache]
    for p in cfg.profiles:
        s = p.trtexec()
        build += ["--trt-min-shapes", s["min"], "--trt-opt-shapes", s["opt"], "--trt-max-shapes", s["max"]]
    if cfg.timing_cache:
        build += ["--timing-cache", cfg.timing_cache]
    compare = ["polygraphy", "run", onnx, "--trt", "--onnxrt", "--atol", "1e-2", "--rtol", "1e-2"]
    if cfg.precision not in ("fp32", "tf32"):
        compare.append(f"--{cfg.precision}")
    return [build, compare]


def make_calibrator(cfg: BuildConfig, data: np.ndarray, batch_size: int, input_name: str) -> Any:
    """A TensorRT INT8 calibrator over `data` (class chosen by `cfg.calibrator`), feeding device buffers."""
    trt = require_tensorrt()
    import torch

    base = getattr(trt, CALIBRATORS[cfg.calibrator]["tensorrt"].split()[0])
    cache = Path(cfg.calibration_cache) if cfg.calibration_cache else None

    class Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self._it = batches(data, batch_size)
            self._buf: torch.Tensor | None = None

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: Sequence[str]) -> list[int] | None:
            b = next(self._it, None)
            if b is None or len(b) < batch_size:
                return None
            self._buf = torch.from_numpy(np.ascontiguousarray(b)).cuda()
            return [self._buf.data_ptr()]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache and cache.exists() else None

        def write_calibration_cache(self, blob: bytes) -> None:
            if cache:
                cache.write_bytes(bytes(blob))

        if cfg.calibrator == "percentile":

            def get_quantile(self) -> float:
                return 0.9999

            def get_regression_cutoff(self) -> float:
                return 1.0

    return Calibrator()


@dataclass
class BuiltEngine:
    path: Path
    build_s: float
    size_bytes: int
    notes: list[str] = field(default_factory=list)


def build_engine(onnx: Path, engine: Path, cfg: BuildConfig, calib: Any = None) -> BuiltEngine:
    """Build and serialise an engine with the builder API (the same settings `trtexec_command` spells out)."""
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx.read_bytes()):
        raise RuntimeError("; ".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, cfg.workspace_mib << 20)
    config.builder_optimization_level = cfg.builder_optimization_level
    if cfg.precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)
    elif cfg.precision != "tf32":
        config.set_flag(getattr(trt.BuilderFlag, cfg.precision.upper()))
    if cfg.precision == "int8":
        config.int8_calibrator = calib
    if cfg.tactic_sources:
        mask = 0
        for s in cfg.tactic_sources:
            if not s.startswith("-"):
                mask |= 1 << int(getattr(trt.TacticSource, s.lstrip("+")))
        config.set_tactic_sources(mask)
    if cfg.timing_cache:
        blob = Path(cfg.timing_cache).read_bytes() if Path(cfg.timing_cache).exists() else b""
        config.set_timing_cache(config.create_timing_cache(blob), ignore_mismatch=False)
    for p in cfg.profiles:
        prof = builder.create_optimization_profile()
        prof.set_shape(p.input, p.min, p.opt, p.max)
        config.add_optimization_profile(prof)
    t0 = time.perf_counter()
    blob = builder.build_serialized_network(network, config)
    build_s = time.perf_counter() - t0
    if blob is None:
        raise RuntimeError(f"TensorRT could not build {onnx} with {cfg}")
    engine.write_bytes(bytes(blob))
    if cfg.timing_cache:
        Path(cfg.timing_cache).write_bytes(bytes(config.get_timing_cache().serialize()))
    return BuiltEngine(engine, build_s, engine.stat().st_size)


def deserialize_seconds(engine: Path) -> tuple[Any, float]:
    """(ICudaEngine, seconds to deserialise it): d04.e5's deserialisation time."""
    trt = require_tensorrt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    blob = engine.read_bytes()
    t0 = time.perf_counter()
    eng = runtime.deserialize_cuda_engine(blob)
    return eng, time.perf_counter() - t0
