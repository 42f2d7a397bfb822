"""Triton Inference Server (the `tritonserver` 2.51 shipped by nvidia-pytriton, python backend) as a local service.

Options (PlatformContext.options): `triton.model_repository` (path of a model repository; required: `lab up` builds
the week's with the serving area's repository builder, experiments and tests build their own),
`triton.model_control_mode` ("none" | "explicit" | "poll"; with "poll" pass `--repository-poll-secs=N` in
`triton.args`), `triton.load_models` (names loaded at start; tritonserver honours them in explicit mode only),
`triton.args` (extra command-line arguments),
`triton.cache_size_bytes` (the response cache's size; 0 = off), `triton.log_verbose` (0-3; 1 logs every request with
its model and request id, which the log collector reads), `triton.trace` (request tracing, see `trace_args`: a dict
with `rate`, `level`, `count`, `log_frequency`; the trace file is `<state dir>/triton/trace.json`),
`triton.metrics_port` (the metrics endpoint on this port instead of a chosen one: a port reserved for a Prometheus
target written before the server starts, see ailab.contract.ports.reserved_port).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from ailab import host
from ailab.local.registry import PlatformError
from ailab.local.spec import HOST, PlatformContext, ServiceSpec

DEFAULT_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}  # Triton's own defaults


def backend_dir(ctx: PlatformContext, server: Path) -> Path:
    """A backends dir with the python backend plus the Python 3.11 stub (pytriton ships them apart)."""
    out = ctx.state_dir / "triton" / "backends"
    stub = out / "python" / "triton_python_backend_stub"
    if not stub.exists():
        root = server.parent.parent  # .../pytriton/tritonserver
        shutil.copytree(root / "backends", out, dirs_exist_ok=True)
        shutil.copy2(
            root / "python_backend_stubs" / f"{sys.version_info.major}.{sys.version_info.minor}" / stub.name, stub
        )
    return out


def runtime_env() -> dict[str, str]:
    """LD_LIBRARY_PATH and PATH the server and its python stubs need (see ENVIRONMENT.md)."""
    import pytriton

    site = Path(pytriton.__file__).parent.parent
    # Debian's libpython would be found otherwise and the stub fails with "'_thread.RLock' ... _recursion_count".
    libs = [sysconfig.get_config_var("LIBDIR"), str(site / "nvidia_pytriton.libs")]
    old = os.environ.get("LD_LIBRARY_PATH")
    return {
        "LD_LIBRARY_PATH": ":".join([*libs, *([old] if old else [])]),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",  # stubs import the venv's packages
    }


def cache_args(server: Path, size_bytes: int) -> list[str]:
    """Triton's local response cache (models opt in with response_cache); its plugin ships with pytriton."""
    if size_bytes <= 0:
        return []
    return [f"--cache-config=local,size={size_bytes}", f"--cache-directory={server.parent.parent / 'caches'}"]


TRACE_LEVELS = ("TIMESTAMPS", "TENSORS")
TRACE_KEYS = {"rate", "level", "count", "log_frequency"}


def trace_file(state_dir: Path) -> Path:
    """Where Triton writes its traces (`.0`, `.1`, ... are appended when log_frequency > 0)."""
    return state_dir / "triton" / "trace.json"


def trace_args(value: object, state_dir: Path) -> list[str]:
    """`--trace-config` arguments (triton mode) for the `triton.trace` option; bad values are refused naming the field.

    rate: trace one request in `rate` (>= 1); level: TIMESTAMPS (stage timestamps) or TENSORS (also the tensors) or a
    list of both; count: how many requests to trace (-1 = no limit); log_frequency: write the file after this many
    traces (0 = only at shutdown; N > 0 writes trace.json.0, trace.json.1, ... as it goes).
    """
    if value is None:
        return []
    if not isinstance(value, dict):
        raise PlatformError(f"service triton: option triton.trace {value!r}: a dict with {sorted(TRACE_KEYS)}")
    if unknown := sorted(set(value) - TRACE_KEYS):
        raise PlatformError(
            f"service triton: option triton.trace: unknown field(s) {unknown} (allowed: {sorted(TRACE_KEYS)})"
        )

    def _int(key: str, default: int, low: int) -> int:
        v = value.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise PlatformError(f"service triton: option triton.trace.{key} {v!r}: allowed an integer >= {low}")
        return v

    rate, count, freq = _int("rate", 1, 1), _int("count", -1, -1), _int("log_frequency", 0, 0)
    levels = value.get("level", "TIMESTAMPS")
    levels = [levels] if isinstance(levels, str) else levels
    if not isinstance(levels, list) or not levels or any(lv not in TRACE_LEVELS for lv in levels):
        raise PlatformError(
            f"service triton: option triton.trace.level {value.get('level')!r}: allowed {', '.join(TRACE_LEVELS)} "
            "or a list of them"
        )
    path = trace_file(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f"{path.name}*"):  # a trace file of an earlier run must not be read as this one's
        old.unlink()
    return [
        "--trace-config=mode=triton",
        f"--trace-config=triton,file={path}",
        f"--trace-config=triton,log-frequency={freq}",
        f"--trace-config=rate={rate}",
        f"--trace-config=count={count}",
        *[f"--trace-config=level={lv}" for lv in levels],
    ]


def log_verbose(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3:
        raise PlatformError(f"service triton: option triton.log_verbose {value!r}: allowed an integer 0-3")
    return value


def metrics_port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1024 <= value <= 65535:
        raise PlatformError(f"service triton: option triton.metrics_port {value!r}: allowed an integer 1024-65535")
    return value


def spec(ctx: PlatformContext) -> ServiceSpec:
    server = host.tritonserver_binary()
    if server is None:
        raise PlatformError("service triton: binary 'tritonserver' not found (pip install nvidia-pytriton==0.7.0)")
    repo = ctx.options.get("triton.model_repository")
    if repo is None:
        raise PlatformError(
            "service triton: option triton.model_repository is not set (the path of a model repository; "
            "`lab up` builds the week's)"
        )
    if not Path(repo).is_dir():
        raise PlatformError(f"service triton: triton.model_repository {str(repo)!r} is not a directory")
    if ctx.options.get("triton.metrics_port") is not None:
        ctx.ports["triton.metrics"] = metrics_port(ctx.options["triton.metrics_port"])
    ports = {role: ctx.port(f"triton.{role}", p) for role, p in DEFAULT_PORTS.items()}
    mode = ctx.options.get("triton.model_control_mode", "none")
    argv = [
        str(server),
        f"--model-repository={repo}",
        f"--backend-directory={backend_dir(ctx, server)}",
        f"--model-control-mode={mode}",
        f"--http-address={HOST}",
        f"--http-port={ports['http']}",
        f"--grpc-address={HOST}",
        f"--grpc-port={ports['grpc']}",
        f"--metrics-address={HOST}",
        f"--metrics-port={ports['metrics']}",
        "--allow-metrics=true",
        "--metrics-interval-ms=1000",
        # queue/compute latency quantiles for the Triton dashboard (2.51 exports no request-latency histogram)
        "--metrics-config=summary_latencies=true",
        f"--log-verbose={log_verbose(ctx.options.get('triton.log_verbose', 0))}",
        *[f"--load-model={m}" for m in ctx.options.get("triton.load_models", [])],
        *cache_args(server, int(ctx.options.get("triton.cache_size_bytes", 0))),
        *trace_args(ctx.options.get("triton.trace"), ctx.state_dir),
        *ctx.options.get("triton.args", []),
    ]
    return ServiceSpec(
        name="triton",
        argv=argv,
        ports=ports,
        ready=f"http://{HOST}:{ports['http']}/v2/health/ready",
        log=ctx.log_path("triton"),
        env=runtime_env(),
        stop_signal="SIGINT",  # Triton unloads models and exits cleanly on SIGINT
        ready_timeout_s=float(ctx.options.get("triton.ready_timeout_s", 120)),
        info={
            "model_repository": str(repo),
            "model_control_mode": mode,
            **({"trace_file": str(trace_file(ctx.state_dir))} if ctx.options.get("triton.trace") else {}),
        },
    )
