"""Triton Inference Server (the `tritonserver` 2.51 shipped by nvidia-pytriton, python backend) as a local service.

Options (PlatformContext.options): `triton.model_repository` (path of a model repository; required: `lab up` builds
the week's with the serving area's repository builder, experiments and tests build their own),
`triton.model_control_mode` ("none" | "explicit"), `triton.load_models`
(names loaded at start in explicit mode), `triton.args` (extra command-line arguments),
`triton.cache_size_bytes` (the response cache's size; 0 = off).
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
        "--log-verbose=0",
        *[f"--load-model={m}" for m in ctx.options.get("triton.load_models", [])],
        *cache_args(server, int(ctx.options.get("triton.cache_size_bytes", 0))),
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
        info={"model_repository": str(repo), "model_control_mode": mode},
    )
