"""Run the benchmark binaries and the CUDA tools around them: compute-sanitizer, ncu, cuobjdump."""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

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

# Tensor-pipe utilisation on sm_90, by candidate name: ncu has no single documented name for every op type, and
# it refuses a profile that asks for a metric the device lacks, so `available_metrics` asks the device's ncu first
# and only the names it knows are collected. `sm__pipe_tensor_cycles_active` is the tensor pipe over all op types;
# the op-specific pipes are wgmma (GMMA) and HMMA. On the H200's ncu (2026-12-02, d11.e5) the HMMA counter read the
# same as the all-ops pipe for the f16 and FP8 wgmma kernels as for the mma.sync convolution, so it counts wgmma's
# f16/FP8 ops too and is labelled "HMMA ops", not "mma.sync"; that ncu does not list the GMMA pipe. The wgmma issue
# rate shows whether GMMA instructions ran at all. Integer MMA (IMMA) is not used by any kernel here.
TENSOR_ALL = "sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active"
TENSOR_GMMA = "sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active"
TENSOR_HMMA = "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active"
GMMA_ISSUE = "sm__inst_executed_pipe_tensor_op_gmma.avg.pct_of_peak_sustained_active"
TENSOR_METRICS: tuple[tuple[str, str, str], ...] = (
    (TENSOR_ALL, "tensor pipe, all ops", "% of peak"),
    (TENSOR_GMMA, "tensor pipe, wgmma", "% of peak"),
    (TENSOR_HMMA, "tensor pipe, HMMA ops", "% of peak"),
    (GMMA_ISSUE, "wgmma issue", "% of peak"),
)


def base_metric(name: str) -> str:
    """`sm__x.avg.pct_of_peak_sustained_active` -> `sm__x` (what `ncu --query-metrics` lists)."""
    return name.split(".", 1)[0]


def parse_query_metrics(text: str) -> set[str]:
    """The base metric names of `ncu --query-metrics` output (its table: name, type, unit, description)."""
    names = set()
    for line in text.splitlines():
        tok = line.split(maxsplit=1)[0] if line.strip() else ""
        if re.fullmatch(r"[a-z][a-z0-9]*__[a-z0-9_]+", tok):
            names.add(tok)
    return names


def tensor_metrics(known: set[str] | None) -> tuple[tuple[str, str, str], ...]:
    """The TENSOR_METRICS whose base name the device's ncu lists (known None: the query failed, so all of them)."""
    return tuple(m for m in TENSOR_METRICS if known is None or base_metric(m[0]) in known)


def tensor_pipe(row: dict[str, str], collected: list[str] | tuple[str, ...]) -> float:
    """One tensor-pipe utilisation per launch: the all-ops pipe when collected, else the larger op-specific pipe."""
    if TENSOR_ALL in collected:
        return ncu_number(row.get(TENSOR_ALL))
    vals = [ncu_number(row.get(m)) for m in (TENSOR_GMMA, TENSOR_HMMA) if m in collected]
    vals = [v for v in vals if v == v]
    return max(vals) if vals else float("nan")


def tensor_pipe_source(collected: list[str] | tuple[str, ...]) -> str:
    """Which metric the "tensor pipe" column shows (for table captions)."""
    if TENSOR_ALL in collected:
        return TENSOR_ALL
    parts = [m for m in (TENSOR_GMMA, TENSOR_HMMA) if m in collected]
    return f"max({', '.join(parts)})" if parts else "none (ncu on this device lists no tensor-pipe metric)"


@functools.cache
def available_metrics() -> set[str] | None:
    """Base metric names the device's ncu knows (`ncu --query-metrics`); None when the query fails."""
    ncu_bin = tool("ncu")
    if ncu_bin is None:
        return None
    try:
        proc = subprocess.run([ncu_bin, "--query-metrics"], capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired:
        return None
    names = parse_query_metrics(proc.stdout) if proc.returncode == 0 else set()
    return names or None


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


def ncu(
    name: str,
    args: tuple[str, ...],
    kernel_regex: str,
    launch_count: int = 40,
    metrics: tuple[str, ...] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> list[dict[str, str]]:
    """Profile matching kernels once each (harness in AILAB_PROFILE mode); rows of {kernel, id, metric: value}.

    `metrics` (default NCU_METRICS) are collected; `env` is added to the harness's environment (its filters).
    """
    exe = ncu_bin = tool("ncu")
    if ncu_bin is None:
        raise Skip("ncu (Nsight Compute) not found")
    exe = str(_build.binary(name, built()))
    cmd = ncu_command(ncu_bin, exe, args, kernel_regex, launch_count, metrics or tuple(m for m, _, _ in NCU_METRICS))
    # same process group as the caller (an outer `timeout` still reaches it); on this timeout the profiled program,
    # ncu's child, is killed with ncu, not left running on the GPU
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {}), "AILAB_PROFILE": "1"},
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(psutil.NoSuchProcess):
            kids = psutil.Process(proc.pid).children(recursive=True)  # before ncu dies and they are re-parented
            for p in [proc, *kids]:
                with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                    p.kill()
        proc.communicate()
        raise RuntimeError(f"ncu {name} {' '.join(args)} ran past {timeout:.0f} s and was killed") from None
    if proc.returncode != 0:
        raise RuntimeError(f"ncu exited {proc.returncode}: {(out + err)[-2000:]}")
    return parse_ncu_csv(out)


def ncu_command(
    ncu_bin: str, exe: str, args: tuple[str, ...], kernel_regex: str, launch_count: int, metrics: tuple[str, ...]
) -> list[str]:
    """The ncu command line: own clocks, raw CSV in base units, `launch_count` launches of /kernel_regex/."""
    return [
        ncu_bin,
        "--clock-control",
        "none",  # never touch the shared card's clocks
        "--csv",
        "--page",
        "raw",
        "--print-units",
        "base",
        "--metrics",
        ",".join(metrics),
        "-k",
        f"regex:{kernel_regex}",
        "-c",
        str(launch_count),
        exe,
        *args,
    ]


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
