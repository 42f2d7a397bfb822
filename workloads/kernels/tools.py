"""Run the benchmark binaries and the CUDA tools around them: compute-sanitizer, ncu, cuobjdump."""

from __future__ import annotations

import csv
import functools
import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ailab.contract import Context, Skip
from workloads.kernels import build as _build
from workloads.kernels.jsonl import Parsed, parse

# metrics every ncu profile here collects (one set, so every profile table has the same columns)
NCU_METRICS: tuple[tuple[str, str, str], ...] = (
    ("gpu__time_duration.sum", "duration", "ns"),
    ("dram__throughput.avg.pct_of_peak_sustained_elapsed", "DRAM throughput", "% of peak"),
    ("dram__bytes.sum.per_second", "DRAM bandwidth", "byte/s"),
    ("sm__throughput.avg.pct_of_peak_sustained_elapsed", "SM throughput", "% of peak"),
    ("sm__warps_active.avg.pct_of_peak_sustained_active", "achieved occupancy", "%"),
    ("launch__registers_per_thread", "registers", "per thread"),
    ("l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum", "global load sectors", ""),
    ("l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum", "global load requests", ""),
    ("smsp__sass_average_branch_targets_threads_uniform.pct", "branch uniformity", "%"),
)


# The skip reason of every CUDA runner on a host or run without CUDA (docs/kernels.md quotes it; a test checks that).
NO_CUDA = "needs a CUDA GPU (run with --device cuda on a GPU host)"


def require_cuda(ctx: Context) -> None:
    """Skip with NO_CUDA unless the run is on the CUDA device."""
    if ctx.device != "cuda":
        raise Skip(NO_CUDA)


def tool(name: str) -> str | None:
    """A CUDA tool on PATH or in /usr/local/cuda/bin."""
    return shutil.which(name) or next((str(p) for p in [Path("/usr/local/cuda/bin") / name] if p.exists()), None)


@functools.cache
def built() -> Path:
    """Build cuda/ once per process (Ninja makes a rebuild of an unchanged tree a no-op)."""
    try:
        return _build.build()
    except _build.BuildError as exc:
        raise Skip(f"cuda/ could not be built here: {exc}") from exc


@functools.cache
def run_bench(name: str, args: tuple[str, ...] = (), timeout: float = 900) -> Parsed:
    """Run one benchmark binary and parse its JSON lines; cached so experiments sharing a sweep run it once."""
    exe = _build.binary(name, built())
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return parse(proc.stdout)


@dataclass(frozen=True)
class SanitizerRun:
    kernel: str
    exit_code: int
    errors: int  # "Invalid __global__ write/read" reports
    summary: str


def sanitize(fixed: bool) -> tuple[SanitizerRun, SanitizerRun]:
    """Run oob_vector_add plain and under compute-sanitizer memcheck (guarded kernel when `fixed`)."""
    exe = str(_build.binary("oob_vector_add", built()))
    san = tool("compute-sanitizer")
    if san is None:
        raise Skip("compute-sanitizer not found")
    args = ["--fixed"] if fixed else []
    kernel = "guarded" if fixed else "unguarded"
    plain = subprocess.run([exe, *args], capture_output=True, text=True, timeout=120, check=False)
    checked = subprocess.run(
        [san, "--tool", "memcheck", "--error-exitcode", "3", exe, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return (
        SanitizerRun(kernel, plain.returncode, 0, plain.stdout.strip()[-300:]),
        sanitizer_result(kernel, checked.returncode, checked.stdout + checked.stderr),
    )


def sanitizer_result(kernel: str, code: int, text: str) -> SanitizerRun:
    """Count the memcheck error reports in compute-sanitizer's output."""
    errors = len(re.findall(r"Invalid __global__ (?:write|read)", text))
    m = re.search(r"ERROR SUMMARY: (\d+) error", text)
    return SanitizerRun(kernel, code, errors, m.group(0) if m else text.strip().splitlines()[-1:][0] if text else "")


def ncu(name: str, args: tuple[str, ...], kernel_regex: str, launch_count: int = 40) -> list[dict[str, str]]:
    """Profile matching kernels once each (harness in AILAB_PROFILE mode); rows of {kernel, id, metric: value}."""
    exe = ncu_bin = tool("ncu")
    if ncu_bin is None:
        raise Skip("ncu (Nsight Compute) not found")
    exe = str(_build.binary(name, built()))
    cmd = [
        ncu_bin,
        "--clock-control",
        "none",  # never touch the shared card's clocks
        "--csv",
        "--page",
        "raw",
        "--print-units",
        "base",
        "--metrics",
        ",".join(m for m, _, _ in NCU_METRICS),
        "-k",
        f"regex:{kernel_regex}",
        "-c",
        str(launch_count),
        exe,
        *args,
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, check=False, env={**os.environ, "AILAB_PROFILE": "1"}
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ncu exited {proc.returncode}: {(proc.stdout + proc.stderr)[-2000:]}")
    return parse_ncu_csv(proc.stdout)


def parse_ncu_csv(text: str) -> list[dict[str, str]]:
    """ncu --csv --page raw: a header row, a units row, then one row per profiled launch."""
    lines = [ln for ln in text.splitlines() if ln.startswith('"')]
    if not lines:
        return []
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    header, body = rows[0], rows[2:] if len(rows) > 1 and rows[1] and rows[1][0] == "" else rows[1:]
    out = []
    for r in body:
        rec = dict(zip(header, r, strict=False))
        out.append(rec)
    return out


def ncu_number(v: str | None) -> float:
    """A number from ncu's CSV ('1,234.5', 'n/a' -> NaN)."""
    try:
        return float(str(v).replace(",", ""))
    except (TypeError, ValueError):
        return float("nan")


def resource_usage(name: str) -> dict[str, dict[str, int]]:
    """Per kernel (mangled name): REG, STACK, SHARED, LOCAL from `cuobjdump -res-usage` (the compiler's report)."""
    dump = tool("cuobjdump")
    if dump is None:
        raise Skip("cuobjdump not found")
    exe = str(_build.binary(name, built()))
    out = subprocess.run([dump, "-res-usage", exe], capture_output=True, text=True, timeout=120, check=False).stdout
    return parse_res_usage(out)


def parse_res_usage(text: str) -> dict[str, dict[str, int]]:
    res: dict[str, dict[str, int]] = {}
    current = None
    for line in text.splitlines():
        if m := re.match(r"\s*Function ([^:\s]+):", line):
            current = m.group(1)
        elif current and "REG:" in line:
            res[current] = {k: int(v) for k, v in re.findall(r"(\w+):(\d+)", line) if not k.startswith("CONSTANT")}
            current = None
    return res
