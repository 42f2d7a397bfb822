"""Run-time limits on the inference image (d01): read-only root filesystem (e4), memory and pids limits (e5).

Both use the inference image's ONNX-only variant (built warm by `workloads.images.build`) and its entry point
(workloads/images/entrypoint.py), whose exit codes say what happened: 3 = a directory is not writable,
4 = fork() refused, 137 = killed by SIGKILL (the OOM killer).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from ailab.contract import Context, Output, Params, Table, paths
from workloads.images import build as b
from workloads.images.experiments.image_builds import IMAGE_REF

MEMORY_UNITS = {"b": 1 / 2**20, "k": 1 / 2**10, "m": 1, "g": 2**10}  # podman --memory suffixes, in MiB


class RunParams(Params):
    base: str | None = Field(
        default=None, pattern=IMAGE_REF, description="base of the inference image; default the catalogue's local base"
    )


class ReadOnlyParams(RunParams):
    batch: int = Field(default=8, ge=1, le=1024, description="digits the container infers")


class LimitsParams(RunParams):
    memory: str = Field(default="512m", pattern=r"^[1-9][0-9]*[bkmg]$", description="--memory (and --memory-swap)")
    pids_limit: int = Field(default=64, ge=8, le=4096, description="--pids-limit; the stress run forks 3x as many")
    alloc_mib: int = Field(default=1024, ge=1, le=65536, description="MiB the memory stress run allocates")

    @model_validator(mode="after")
    def _alloc_exceeds_limit(self) -> LimitsParams:
        limit_mib = int(self.memory[:-1]) * MEMORY_UNITS[self.memory[-1]]
        if self.alloc_mib <= limit_mib:
            raise ValueError(
                f"alloc_mib {self.alloc_mib}: allowed more than memory ({self.memory} = {limit_mib:g} MiB), "
                "or the limited run cannot reach the OOM killer"
            )
        return self


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float  # wall time of `podman run`, s
    oom_killed: str  # podman inspect .State.OOMKilled ("true"/"false"), "" when not inspected


def image(p: RunParams) -> tuple[str, str]:
    """Engine and the inference image (ONNX-only variant) reference, built (normally from cache) first."""
    eng = b.engine()
    r = b.build_image("inference", base=p.base, eng=eng, variant="onnx")
    return eng, r.ref


def run(eng: str, args: list[str], inspect: bool = False, timeout: float = 180) -> Ran:
    """`eng run` with a named container; inspect its state when asked, then remove it."""
    name = f"ailab-d01-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    # conmon drops an empty `oom` marker file into its working directory when the OOM killer strikes: keep it in tmp
    with tempfile.TemporaryDirectory(prefix="ailab-d01-") as scratch:
        p = b.run([eng, "run", "--name", name, *args], timeout=timeout, cwd=Path(scratch))
    seconds = time.perf_counter() - t0
    oom = ""
    if inspect:
        q = b.run([eng, "inspect", "--format", "{{.State.OOMKilled}}", name])
        oom = q.stdout.strip() if q.returncode == 0 else ""
    b.run([eng, "rm", "-f", name])
    return Ran(p.returncode, p.stdout.strip(), p.stderr.strip(), seconds, oom)


def _last(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and "W:onnxruntime" not in ln]
    return lines[-1][:240] if lines else ""


def _inputs(ctx: Context, batch: int) -> tuple[Path, np.ndarray]:
    """Model and input batch in a directory readable by the image's non-root user; the host's logits for them."""
    import onnxruntime as ort

    from workloads.models.mlp import export_default_model, sample_inputs

    model = export_default_model(paths.work_dir() / "models")  # cached: shared with serving
    d = ctx.workdir / "in"
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, d / "mlp.onnx")
    x, _ = sample_inputs(batch)
    np.save(d / "x.npy", x)
    for f in (d, d / "mlp.onnx", d / "x.npy"):
        f.chmod(0o755 if f.is_dir() else 0o644)
    (ref,) = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(["logits"], {"input": x})
    return d, ref


def _volume(ctx: Context, name: str) -> Path:
    d = ctx.workdir / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    d.chmod(0o777)  # the container runs as uid 10001
    return d


def read_only_root(ctx: Context, p: ReadOnlyParams) -> Output:
    """d01.e4: --read-only with tmpfs + volumes still writes logs and results; without them it fails clearly."""
    eng, ref = image(p)
    inp, expected = _inputs(ctx, p.batch)
    infer = [ref, "infer", "--model", "/in/mlp.onnx", "--input", "/in/x.npy", "--name", "logits"]
    t = Table.of(
        "read_only",
        [
            ("case", ""),
            ("flags", ""),
            ("exit code", ""),
            ("log on host", ""),
            ("result on host", ""),
            ("max |logits - host|", ""),
            ("what the container said", ""),
        ],
        caption=f"{eng}; image {ref} (uid 10001); exit 3 = a directory the workload writes to is not writable",
    )
    out = Output(tables=[t])
    cases = [
        ("writable root, no mounts", []),
        ("--read-only, no volumes", ["--read-only"]),
        ("--read-only, volumes, /tmp not mounted", ["--read-only", "--read-only-tmpfs=false", "V"]),
        ("--read-only + tmpfs /tmp + volumes", ["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp", "V"]),
    ]
    for label, flags in cases:
        logs, res = _volume(ctx, "logs"), _volume(ctx, "out")
        vols = ["-v", f"{logs}:/var/log/ailab", "-v", f"{res}:/out"]
        args = [f for f in flags if f != "V"] + (vols if "V" in flags else [])
        r = run(eng, ["-v", f"{inp}:/in:ro", *args, *infer])
        log_ok, res_ok = (logs / "infer.log").exists(), (res / "logits.npy").exists()
        diff = float(np.abs(np.load(res / "logits.npy") - expected).max()) if res_ok else None
        t.add(
            label,
            (" ".join(f for f in flags if f != "V") + (" -v logs -v out" if "V" in flags else "")) or "-",
            r.exit_code,
            "yes" if log_ok else "no",
            "yes" if res_ok else "no",
            diff,
            _last(r.stderr) if r.exit_code else json.loads(_last(r.stdout)).get("output", ""),
        )
    probe = run(eng, ["--read-only", "--entrypoint", "touch", ref, "/opt/ailab/probe"])
    out.notes.append(f"writing to the image under --read-only: exit {probe.exit_code}: {_last(probe.stderr)}")
    out.notes.append(
        "podman mounts tmpfs on /tmp, /var/tmp and /run by itself under --read-only "
        "(--read-only-tmpfs=true); the cases that name /tmp turn that off to show what needs it."
    )
    return out


def limits(ctx: Context, p: LimitsParams) -> Output:
    """d01.e5: --memory (OOM kill) and --pids-limit (fork refused), each against a run without the limit."""
    eng, ref = image(p)
    memory, pids, alloc = p.memory, p.pids_limit, p.alloc_mib
    t = Table.of(
        "limits",
        [
            ("case", ""),
            ("flags", ""),
            ("exit code", ""),
            ("podman OOMKilled", ""),
            ("wall time", "s"),
            ("limit seen in container", ""),
            ("last output", ""),
        ],
        caption=f"{eng}; image {ref}; exit 137 = SIGKILL (OOM killer), 4 = fork() refused by the pids limit",
    )
    out = Output(tables=[t])
    cases = [
        ("memory: no limit", [], ["stress-memory", "--mib", str(alloc)]),
        ("memory: limited", [f"--memory={memory}", f"--memory-swap={memory}"], ["stress-memory", "--mib", str(alloc)]),
        ("pids: default limit", [], ["stress-pids", "--max", str(pids * 3), "--hold-s", "10"]),
        ("pids: limited", [f"--pids-limit={pids}"], ["stress-pids", "--max", str(pids * 3), "--hold-s", "10"]),
    ]
    for label, flags, cmd in cases:
        r = run(eng, [*flags, ref, *cmd], inspect=True)
        seen = next((ln.split(": ", 1)[1] for ln in r.stdout.splitlines() if ln.startswith("cgroup ")), "")
        said = _last(r.stdout) if r.exit_code in (0, 4, 137) else _last(r.stderr)  # 125: the engine refused
        t.add(label, " ".join(flags) or "-", r.exit_code, r.oom_killed or None, round(r.seconds, 2), seen, said)
        if r.exit_code == 125:
            out.notes.append(f"{label}: {eng} refused to start the container: {_last(r.stderr)}")
        if r.exit_code == 137 and r.oom_killed == "false":
            out.notes.append(
                f"{label}: killed by SIGKILL (exit 137) after '{said}', yet {eng} inspect reports "
                "OOMKilled=false: with cgroup v1 and runc the OOM event does not reach it here."
            )
    out.notes.append(
        "A fork refused by the pids cgroup fails with EAGAIN and the process lives on (exit 4 is the "
        "entry point reporting it); the memory cgroup instead kills the process (SIGKILL, exit 137)."
    )
    return out
