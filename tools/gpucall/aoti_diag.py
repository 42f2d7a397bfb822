"""Why does loading an AOTInductor package crash in d29.e3's child processes on the H200? One small device-call step.

d29.e3's holding process died of SIGSEGV at its first load (inside the package's `wrapper.so`: std::regex in
`parse_device_str`), also with one package alone in a fresh process, while d04.e5 loads the same kind of package in
the runner's process. The children differ from that process in faulthandler, the preloaded `native_backtrace.c`
library and what was imported before the load. This builds one small package (the d29 CNN at its quick size) in a
plain child, describes its `wrapper.so` (NEEDED libraries, libstdc++ symbols it defines itself, the compiler), and
loads it in a fresh process per variant, each printing the libstdc++ it has mapped before the load:

    plain            python, nothing else
    faulthandler     PYTHONFAULTHANDLER=1
    preload          LD_PRELOAD=<native_backtrace>.so
    hold_env         both (what d29.e3's children run with)
    runner_imports   plain, after importing what the runner's process has imported by then (ailab.runner, ONNX
                     Runtime, the engines experiments)
    hold_child       `python -m workloads.engines.aot_hold hold` itself (the path that crashed; it loads through
                     `aot.load`, so it now has the in-process workaround too)
    same_process     plain, building the package in the same process first (as d04.e5 and d29.e2 did)
    ld_bindings      plain, with LD_DEBUG=bindings: which library each C++ locale facet id (`std::collate<char>::id`
                     ...) the package's code was bound to; a facet id bound to two libraries is a libstdc++ mix
    compiler_stdcxx  plain, with LD_PRELOAD of the libstdc++ the package's compiler links against
                     (`c++ -print-file-name=libstdc++.so.6`): the workaround d29.e3 ran with on the H200
    aot_load         plain, but through `aot.load`, which puts libstdc++ in the global symbol scope in-process first
                     (every other variant calls torch's loader directly, as the crash did)

Usage (GPU machine, repo root, wheels on PYTHONPATH as the suites set them):
    python3 -m tools.gpucall.aoti_diag --out $OUT/aoti [--device cuda]
It writes aoti_diag.json and prints one line per variant; each child is bounded by --timeout-s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from workloads.engines.aot_hold import how_ended

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = (
    "plain",
    "faulthandler",
    "preload",
    "hold_env",
    "runner_imports",
    "hold_child",
    "same_process",
    "ld_bindings",
    "compiler_stdcxx",
    "aot_load",
)
# the mangled names of the C++ locale facets' `id` members (`_ZNSt7collateIcE2idE` is std::collate<char>::id)
FACET_ID = re.compile(r"`(_ZNSt\w*2idE)'")
RUNNER_IMPORTS = "import ailab.runner, onnxruntime, workloads.engines.experiments"

LOAD_SNIPPET = r"""
import sys
def mapped():
    with open('/proc/self/maps') as f:
        return sorted({l.split()[-1] for l in f if 'libstdc++' in l or 'libgcc_s' in l})
print('maps-start', mapped(), flush=True)
@PRE@
import torch
print('maps-torch', mapped(), flush=True)
from pathlib import Path
from workloads.engines import aot
@LOAD@
print('maps-loaded', mapped(), flush=True)
from workloads.engines.aot_hold import cnn
model, sample, dt = cnn(@DEVICE@, True)
x = torch.randn(1, *sample).to(@DEVICE@, dt)
y = runner(x)
print('load-ok', round(secs, 4), tuple(y.shape), flush=True)
"""


RAW_LOAD = """import time
t0 = time.perf_counter()
runner = torch._inductor.aoti_load_package(str(Path(@PATH@)))
secs = time.perf_counter() - t0"""


class DiagError(ValueError):
    """Bad arguments; the message names the field, the value and what is allowed."""


@dataclass
class Outcome:
    variant: str
    returncode: int | None
    how: str
    maps: dict[str, list[str]]
    tail: str


def how(returncode: int | None, timed_out: bool) -> str:
    """'ok', 'timeout', or how the child ended as d29.e3's rows say it ('SIGSEGV (signal 11)', 'exit status N')."""
    if timed_out:
        return "timeout"
    return "ok" if returncode == 0 else how_ended(returncode, False, 0)


def parse_maps(stdout: str) -> dict[str, list[str]]:
    """The 'maps-<stage> [...]' lines a load child printed, by stage (start, torch, loaded)."""
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        m = re.match(r"maps-(\w+) (\[.*\])$", line.strip())
        if m:
            out[m.group(1)] = json.loads(m.group(2).replace("'", '"'))
    return out


def variant_env(variant: str, preload: Path | None) -> dict[str, str]:
    """The environment of one variant's child: this one with the repository on PYTHONPATH, plus its settings."""
    if variant not in VARIANTS:
        raise DiagError(f"field variant = {variant!r}: allowed {', '.join(VARIANTS)}")
    path = os.pathsep.join(x for x in (str(ROOT), os.environ.get("PYTHONPATH", "")) if x)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONFAULTHANDLER")}
    env["PYTHONPATH"] = path
    if variant in ("faulthandler", "hold_env", "hold_child"):
        env["PYTHONFAULTHANDLER"] = "1"
    if variant in ("preload", "hold_env", "hold_child") and preload is not None:
        env["LD_PRELOAD"] = str(preload)
    if variant == "ld_bindings":
        env["LD_DEBUG"] = "bindings"
    if variant == "compiler_stdcxx" and (lib := compiler_libstdcxx()) is not None:
        env["LD_PRELOAD"] = str(lib)
    return env


def compiler_libstdcxx() -> Path | None:
    """The libstdc++.so.6 the C++ compiler on PATH links against (what a package's wrapper was built with)."""
    cc = shutil.which("c++") or shutil.which("g++")
    if cc is None:
        return None
    p = subprocess.run([cc, "-print-file-name=libstdc++.so.6"], capture_output=True, text=True)
    lib = Path(p.stdout.strip())
    return lib.resolve() if p.returncode == 0 and lib.is_absolute() and lib.exists() else None


def variant_argv(variant: str, package: Path, device: str) -> list[str]:
    """The command of one variant's child."""
    if variant == "hold_child":
        spec = {"device": device, "quick": True, "packages": [{"path": str(package), "batch": 1}]}
        return [sys.executable, "-m", "workloads.engines.aot_hold", "hold", json.dumps(spec)]
    pre = RUNNER_IMPORTS if variant == "runner_imports" else ""
    if variant == "same_process":
        spec = {"device": device, "quick": True, "batches": [1], "outdir": str(package.parent / "same")}
        pre = f"from workloads.engines.aot_hold import build; build({spec!r})"
        package = package.parent / "same" / package.name
    # every variant loads the package the way d29.e3 crashed (torch's loader directly) except aot_load, which goes
    # through aot.load and so puts libstdc++ in the global symbol scope first (the in-process workaround)
    load = RAW_LOAD if variant != "aot_load" else "runner, secs = aot.load(Path(@PATH@), @DEVICE@)"
    code = (
        LOAD_SNIPPET.replace("@LOAD@", load)
        .replace("@PRE@", pre)
        .replace("@PATH@", repr(str(package)))
        .replace("@DEVICE@", repr(device))
    )
    return [sys.executable, "-c", code]


def no_core() -> None:
    """A crashing child writes no core file (on the GPU machine a core dump took most of a minute)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def facet_bindings(files: list[Path]) -> dict[str, list[str]]:
    """From LD_DEBUG=bindings output: each facet id symbol and its bindings, 'referencing library -> defining one'."""
    seen: dict[str, set[str]] = {}
    for f in files:
        with open(f, errors="replace") as fh:
            for line in fh:
                m = FACET_ID.search(line)
                if m and " to " in line and "binding file " in line:
                    src, rest = line.split("binding file ", 1)[1].split(" to ", 1)
                    target = rest.split(" [", 1)[0].strip()
                    seen.setdefault(m.group(1), set()).add(f"{src.split(' [', 1)[0].strip()} -> {target}")
    return {k: sorted(v) for k, v in sorted(seen.items())}


def run(argv: list[str], env: dict[str, str], timeout_s: float) -> tuple[int | None, bool, str, str]:
    try:
        p = subprocess.run(
            argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, preexec_fn=no_core
        )
        return p.returncode, False, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return None, True, out, err


def tool(argv: list[str]) -> str:
    """A diagnostic command's output (or why it did not run), trimmed."""
    if shutil.which(argv[0]) is None:
        return f"{argv[0]}: not on PATH"
    p = subprocess.run(argv, capture_output=True, text=True)
    return (p.stdout + p.stderr)[-6000:]


def describe(package: Path, workdir: Path) -> dict[str, str]:
    """The package's wrapper library: NEEDED entries, the libstdc++ symbols it defines itself, the compiler."""
    x = workdir / "extracted"
    with zipfile.ZipFile(package) as z:
        z.extractall(x)
    libs = sorted(x.rglob("*.so"))
    info: dict[str, str] = {"libraries": "\n".join(str(p.relative_to(x)) for p in libs)}
    for lib in libs[:2]:
        key = lib.name[:24]
        info[f"{key} readelf -d"] = tool(["readelf", "-d", str(lib)])
        nm = tool(["nm", "-DC", "--defined-only", str(lib)])
        own = [ln for ln in nm.splitlines() if re.search(r"std::(__cxx11::)?(regex|locale|codecvt|ctype|collate)", ln)]
        info[f"{key} libstdc++ symbols it defines"] = f"{len(own)} lines\n" + "\n".join(own[:40])
    for cc in ("c++", "g++", "gcc"):
        info[f"{cc} --version"] = tool([cc, "--version"]).splitlines()[0] if shutil.which(cc) else "not on PATH"
    info["compiler libstdc++"] = str(compiler_libstdcxx())
    info["ldconfig libstdc++"] = "\n".join(ln for ln in tool(["ldconfig", "-p"]).splitlines() if "libstdc++" in ln)
    return info


def workaround(report: dict) -> str:
    """The library to preload when the diagnosis shows that preloading it is the fix: the plain load crashed and
    the load with the compiler's libstdc++ preloaded ran ('' otherwise)."""
    by = {r["variant"]: r["how"] for r in report.get("variants", [])}
    lib = report.get("package", {}).get("compiler libstdc++", "None")
    fixed = by.get("plain", "ok") != "ok" and by.get("compiler_stdcxx") == "ok"
    return lib if fixed and lib != "None" else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fix-from", type=Path, help="print the workaround a stored aoti_diag.json shows, and stop")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--timeout-s", type=float, default=240.0)
    ap.add_argument("--variants", default="", help=f"comma-separated subset of {', '.join(VARIANTS)} (default all)")
    ap.add_argument("--parallel", type=int, default=1, help="variants run at once")
    args = ap.parse_args(argv)
    if args.fix_from is not None:
        print(workaround(json.loads(args.fix_from.read_text())) if args.fix_from.exists() else "")
        return 0
    if args.out is None:
        raise DiagError("field out: required (the folder the diagnosis writes)")
    if args.device not in ("cpu", "cuda"):
        raise DiagError(f"field device = {args.device!r}: allowed cpu, cuda")
    if args.timeout_s <= 0:
        raise DiagError(f"field timeout_s = {args.timeout_s!r}: allowed > 0")
    if args.parallel < 1:
        raise DiagError(f"field parallel = {args.parallel!r}: allowed >= 1")
    chosen = [v for v in args.variants.split(",") if v] if args.variants else list(VARIANTS)
    for v in chosen:
        variant_env(v, None)  # refuses an unknown name before anything runs
    from workloads.engines.aot_hold import native_backtrace_lib

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    spec = {"device": args.device, "quick": True, "batches": [1], "outdir": str(out / "pk")}
    build_argv = [sys.executable, "-m", "workloads.engines.aot_hold", "build", json.dumps(spec)]
    rc, timed_out, bout, berr = run(build_argv, variant_env("plain", None), args.timeout_s)
    report: dict = {"device": args.device, "build": how(rc, timed_out), "build_tail": (bout + berr)[-3000:]}
    package = out / "pk" / "cnn_b1.pt2"
    print(f"build: {report['build']}", flush=True)
    if package.exists():
        report["package"] = describe(package, out)
        preload = native_backtrace_lib()
        report["preload"] = str(preload) if preload else "could not be built"
        (out / "aoti_diag.json").write_text(json.dumps(report, indent=1))  # kept if the variants time out
        outcomes: list[dict] = []

        def one(v: str) -> None:
            env = variant_env(v, preload)
            if v == "ld_bindings":
                env["LD_DEBUG_OUTPUT"] = str(out / "ld")
            rc, timed_out, o, e = run(variant_argv(v, package, args.device), env, args.timeout_s)
            res = Outcome(v, rc, how(rc, timed_out), parse_maps(o), (o + e)[-4000:])
            if v == "ld_bindings":
                files = sorted(out.glob("ld.*"))
                report["facet_id_bindings"] = facet_bindings(files)
                for f in files:
                    f.unlink()
            outcomes.append(asdict(res))
            report["variants"] = sorted(outcomes, key=lambda r: VARIANTS.index(r["variant"]))
            (out / "aoti_diag.json").write_text(json.dumps(report, indent=1))
            print(f"{v}: {res.how}; libstdc++ before load: {res.maps.get('torch', res.maps.get('start', '?'))}")

        # the variants are independent processes; run together they fit one device call
        with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
            list(pool.map(one, chosen))
    (out / "aoti_diag.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
