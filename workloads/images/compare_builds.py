"""Compare the cuda-kernels image's binaries with the host build on the GPU machine: same rows, checks passed, times
within noise; writes the comparison as JSON and renders it into docs/kernels.md (never typed by hand).

Input: a directory as workloads/images/cuda_kernels_gpu_check.sh writes it on the GPU machine ($OUT/image):
`<build>.<binary>.<rep>.jsonl` for build in (host, image), the harness's JSON lines of the same quick cases, run
alternately (host, image, image, host), plus `env.txt` (machine facts, source digests, SASS digests) and `runs.txt`.
The script takes that layout from `plan()` here (`--plan` prints it), so the two cannot disagree.
The rows of both builds are matched on their identity columns (kernel, N, layout, ...: every column that is not a
measurement), then:
- same rows: every row of one build has its match in the other (same kernels, sizes and tables);
- checks passed: where a row has a `rel. error`, it is finite and <= CHECK_TOL in both builds;
- times within noise: the ratio image/host of the row's median time over the repetitions is within the row's
  tolerance, max(FLOOR, NOISE_K x the larger rep-to-rep spread of the same row in either build, max/min - 1).
  The quick cases time kernels of a few to a few hundred microseconds, where run-to-run differences of several percent
  are ordinary (clock ramp, the shared GPU's other work, launch jitter at ~10 us); the spread between two runs of
  the same binary in the same call is the noise each row shows, and the tolerance is three times that, never below
  10 %. A row measured once has no spread: its tolerance is the floor and the result says the noise was not measured.
Rows without a time column (the copy / FMA ceilings) compare their one measured value the same way.

Usage: python -m workloads.images.compare_builds DIR [--json OUT.json] [--builds build.json] [--docs docs/kernels.md]
       python -m workloads.images.compare_builds --plan   (the GPU check's runs and file names, one a line)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workloads.kernels import jsonl

BUILDS = ("host", "image")
CHECK_TOL = 1e-2  # the same "check passed" bound workloads/kernels/targets.py applies to the GEMM rows
FLOOR = 0.10
NOISE_K = 3.0
MEASURED_UNITS = {"ms", "us", "s", "GB/s", "G/s", "TFLOP/s", "GFLOP/s", "%", "MB", "MiB"}
NOT_IDENTITY = {"rel. error", "chosen"}  # the autotuner's pick may differ between runs
# The GPU check's layout, read by workloads/images/cuda_kernels_gpu_check.sh through `--plan` (one place for both):
# each binary runs one quick case (the copy/FMA ceilings come with it), REPS times per build.
CASES = {"bench_memory": "vector_add_variants", "bench_gemm": "tensor_core_gemm"}
REPS = 2
ENV_FILE = "env.txt"  # key=value machine facts (date, gpu, source_host/source_image, sass_<binary>), then raw output
RUNS_FILE = "runs.txt"  # one line per run: build, binary, repetition, exit status, seconds into the call
SOURCE_FILE = "SOURCE"  # in the copied-out image binaries (.lab/imagebin): the digest of the cuda/ sources compiled
SOURCE_SUFFIXES = (".cu", ".cuh", ".h", ".cpp")
FILE_RE = re.compile(rf"^({'|'.join(BUILDS)})\.([A-Za-z0-9_]+)\.(\d+)\.jsonl$")


def run_file(build: str, binary: str, rep: int) -> str:
    """The file one run's harness output goes to (what load() reads back)."""
    return f"{build}.{binary}.{rep}.jsonl"


def plan(reps: int = REPS) -> list[tuple[str, str, int, str, str]]:
    """(build, binary, repetition, case, file) in run order. Each repetition runs every binary of one build, then of
    the other; odd repetitions start with the host build, even ones with the image (host, image, image, host), so a
    drift over the call (clock ramp, the shared GPU's other work) falls on both builds alike."""
    out = []
    for rep in range(1, reps + 1):
        for build in BUILDS if rep % 2 else BUILDS[::-1]:
            out += [(build, binary, rep, case, run_file(build, binary, rep)) for binary, case in CASES.items()]
    return out


def plan_lines() -> list[str]:
    """`--plan`'s output, read by the device script: `<kind> <fields...>` separated by single spaces."""
    lines = [f"env {ENV_FILE}", f"runs {RUNS_FILE}", f"source {SOURCE_FILE}"]
    lines += [f"run {b} {binary} {rep} {case} {f}" for b, binary, rep, case, f in plan()]
    lines += [f"sass {binary}" for binary in CASES]
    return lines


def source_digest(parent: Path) -> str:
    """sha256 over `<sha256>  cuda/<path>` lines of parent/cuda's sources in byte order, the same as
    `find cuda -type f \\( -name '*.cu' -o -name '*.cuh' -o -name '*.h' -o -name '*.cpp' -o -name CMakeLists.txt \\)
    -not -path '*/build/*' | LC_ALL=C sort | xargs sha256sum | sha256sum` run in parent. The image records it as a
    label (copied out as SOURCE_FILE), the device script computes it for the host build: compare() checks they match."""
    files = sorted(
        p.relative_to(parent).as_posix()
        for p in (parent / "cuda").rglob("*")
        if p.is_file()
        and (p.suffix in SOURCE_SUFFIXES or p.name == "CMakeLists.txt")
        and "build" not in p.relative_to(parent).parts[:-1]
    )
    listing = "".join(f"{hashlib.sha256((parent / f).read_bytes()).hexdigest()}  {f}\n" for f in files)
    return hashlib.sha256(listing.encode()).hexdigest()


BEGIN = "<!-- cuda-kernels-image-check:begin (rendered by python -m workloads.images.compare_builds; do not edit) -->"
END = "<!-- cuda-kernels-image-check:end -->"


class CompareError(ValueError):
    """The input directory is missing files or holds something that is not harness output; the message says which."""


@dataclass
class RowResult:
    binary: str
    case: str
    table: str
    key: str  # identity columns, "name=value, ..."
    measure: str  # the compared column, e.g. "time [ms]"
    host: float | None
    image: float | None
    ratio: float | None  # image / host of the medians
    tolerance: float
    noise_measured: bool
    rel_error_host: float | None
    rel_error_image: float | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Comparison:
    verdict: str  # MET / NOT MET
    rows: list[RowResult]
    runs: dict[str, dict[str, int]]  # build -> binary -> repetitions found
    errors: list[str]  # harness error lines, unreadable files
    env: str
    tolerance: dict[str, Any]

    def summary(self) -> list[dict[str, Any]]:
        """One line per (binary, case): rows compared, checks passed, rows within tolerance, ratio median/worst."""
        out: dict[tuple[str, str], list[RowResult]] = {}
        for r in self.rows:
            out.setdefault((r.binary, r.case), []).append(r)
        lines = []
        for (binary, case), rs in out.items():
            ratios = [r.ratio for r in rs if r.ratio is not None]
            checked = [r for r in rs if r.rel_error_host is not None or r.rel_error_image is not None]
            lines.append(
                {
                    "binary": binary,
                    "case": case,
                    "rows": len(rs),
                    "matched": sum(r.host is not None and r.image is not None for r in rs),
                    "checked": len(checked),
                    "checks_passed": sum(not any("check" in p for p in r.problems) for r in checked),
                    "within_tolerance": sum(r.ok for r in rs),
                    "within_floor": sum(r.ratio is not None and abs(r.ratio - 1) <= FLOOR for r in rs),
                    "ratio_median": statistics.median(ratios) if ratios else None,
                    "ratio_worst": max(ratios, key=lambda x: abs(math.log(x)) if x > 0 else math.inf)
                    if ratios
                    else None,
                }
            )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "tolerance": self.tolerance,
            "runs": self.runs,
            "errors": self.errors,
            "env": self.env,
            "summary": self.summary(),
            "rows": [asdict(r) | {"ok": r.ok} for r in self.rows],
        }


def load(directory: Path) -> tuple[dict[str, dict[str, list[jsonl.Parsed]]], list[str]]:
    """Parsed runs by build and binary (repetitions in order) and the errors found (harness error lines)."""
    if not directory.is_dir():
        raise CompareError(f"directory {directory}: does not exist (expected the image check's $OUT/image)")
    runs: dict[str, dict[str, list[tuple[int, jsonl.Parsed]]]] = {b: {} for b in BUILDS}
    errors: list[str] = []
    for f in sorted(directory.iterdir()):
        m = FILE_RE.match(f.name)
        if not m:
            continue
        build, binary, rep = m.group(1), m.group(2), int(m.group(3))
        text = f.read_text(errors="replace")
        # the harness writes JSON lines only; anything else (a shell's "Killed", a loader error) is an error line
        good, bad = [], []
        for line in text.splitlines():
            (good if line.startswith("{") else bad).append(line)
        try:
            parsed = jsonl.parse("\n".join(good))
        except jsonl.ParseError as exc:
            raise CompareError(f"{f.name}: {exc}") from exc
        errors += [f"{f.name}: {line[:200]}" for line in bad if line.strip()]
        errors += [f"{f.name}: {json.dumps(o)[:200]}" for o in parsed.other if "error" in o]
        runs[build].setdefault(binary, []).append((rep, parsed))
    if not any(runs[b] for b in BUILDS):
        raise CompareError(f"directory {directory}: no <host|image>.<binary>.<rep>.jsonl files")
    return {b: {k: [p for _, p in sorted(v, key=lambda t: t[0])] for k, v in runs[b].items()} for b in BUILDS}, errors


def _identity(rec: jsonl.Record) -> tuple[str, str]:
    """(identity key, compared column) of a row: the identity is every column that is not a measurement (nor
    NOT_IDENTITY); the compared column is `time` where the row has one, else its first measurement."""
    ident, measured = [], []
    for (name, unit), value in zip(rec.columns, rec.row, strict=True):
        if name in NOT_IDENTITY:
            continue
        if unit in MEASURED_UNITS and isinstance(value, int | float):
            measured.append(f"{name} [{unit}]")
        else:
            ident.append(f"{name}={value}")
    timed = [m for m in measured if m.startswith("time [")]
    return ", ".join(ident), (timed or measured or [""])[0]


def _value(rec: jsonl.Record, measure: str) -> float | None:
    name = measure.rsplit(" [", 1)[0]
    v = rec.get(name)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def _rows(parsed: list[jsonl.Parsed]) -> dict[tuple[str, str, str], tuple[str, list[jsonl.Record]]]:
    """(case, table, key) -> (measure, the row's record in each repetition)."""
    out: dict[tuple[str, str, str], tuple[str, list[jsonl.Record]]] = {}
    for p in parsed:
        for rec in p.records:
            key, measure = _identity(rec)
            slot = out.setdefault((rec.case, rec.table, key), (measure, []))
            slot[1].append(rec)
    return out


def _spread(values: list[float]) -> float | None:
    vals = [v for v in values if v > 0]
    return max(vals) / min(vals) - 1 if len(vals) >= 2 else None


def compare(directory: Path) -> Comparison:
    runs, errors = load(directory)
    env_file = directory / ENV_FILE
    env = env_file.read_text(errors="replace")[:20000] if env_file.exists() else ""
    rows: list[RowResult] = []
    for binary in sorted(set(runs["host"]) | set(runs["image"])):
        host, image = _rows(runs["host"].get(binary, [])), _rows(runs["image"].get(binary, []))
        for case, table, key in sorted(set(host) | set(image)):
            h, i = host.get((case, table, key)), image.get((case, table, key))
            measure = (h or i)[0]  # type: ignore[index]
            hv = [v for r in (h[1] if h else []) if (v := _value(r, measure)) is not None]
            iv = [v for r in (i[1] if i else []) if (v := _value(r, measure)) is not None]
            spreads = [s for s in (_spread(hv), _spread(iv)) if s is not None]
            tol = max(FLOOR, NOISE_K * max(spreads)) if spreads else FLOOR
            hm, im = (statistics.median(hv) if hv else None), (statistics.median(iv) if iv else None)
            ratio = im / hm if hm and im is not None else None
            errs = {}
            for name, got in (("host", h), ("image", i)):
                vals = [r.get("rel. error") for r in (got[1] if got else [])]
                vals = [float(v) for v in vals if isinstance(v, int | float)]
                errs[name] = max(vals, key=lambda x: x if math.isfinite(x) else math.inf) if vals else None
            r = RowResult(
                binary, case, table, key, measure, hm, im, ratio, tol, bool(spreads), errs["host"], errs["image"]
            )
            if h is None or i is None:
                r.problems.append(f"row only in the {'host' if i is None else 'image'} build")
            for name, e in errs.items():
                if e is not None and not (math.isfinite(e) and e <= CHECK_TOL):
                    r.problems.append(f"{name} check failed: rel. error {e:g} > {CHECK_TOL:g}")
            if h is not None and i is not None and (hm is None or im is None):
                r.problems.append(f"no finite {measure} in one build")
            if ratio is not None and abs(ratio - 1) > tol:
                r.problems.append(f"image/host {ratio:.3f} outside 1 +- {tol:.2f}")
            rows.append(r)
    reps = {b: {k: len(v) for k, v in runs[b].items()} for b in BUILDS}
    facts = dict(ln.split("=", 1) for ln in env.splitlines() if "=" in ln and not ln.startswith((" ", "\t")))
    src_host, src_image = facts.get("source_host", "").strip(), facts.get("source_image", "").strip()
    if src_host and src_host != src_image:
        errors.append(
            f"the builds compiled different cuda/ sources (host {src_host[:12]}, image {src_image[:12] or 'unknown'}):"
            " rebuild the image from the tree the GPU machine built"
        )
    missing_bins = sorted(set(runs["host"]) ^ set(runs["image"]))
    if missing_bins:
        errors.append(f"binaries run by one build only: {', '.join(missing_bins)}")
    ok = bool(rows) and all(r.ok for r in rows) and not errors
    tolerance = {
        "check_rel_error": CHECK_TOL,
        "floor": FLOOR,
        "noise_k": NOISE_K,
        "rule": "|image/host - 1| <= max(floor, noise_k x rep-to-rep spread of the row in either build)",
    }
    return Comparison("MET" if ok else "NOT MET", rows, reps, errors, env, tolerance)


CHECK_DIR = "reports/checks/cuda-kernels-image"  # compare.json, build.json and the GPU run's raw files (raw/)


def _render_builds(builds: list[dict[str, Any]] | None) -> list[str]:
    if not builds:
        return [
            f"No image build recorded yet (`python -m workloads.images.cuda_kernels --record {CHECK_DIR}/build.json`)."
        ]
    lines = [
        f"Builds of the image on this 2-core CPU host, recorded by `python -m workloads.images.cuda_kernels "
        f"--record {CHECK_DIR}/build.json` (wall time of `podman build`; the host is shared with other work, "
        "see the load; revision is git HEAD at build time, the context the working tree; a build with the layer "
        "cache recompiles cuda/ when its sources changed):",
        "",
        "| date | revision | layer cache | build | image size | steps rebuilt | load (1 min) before / after |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in builds:
        lines.append(
            f"| {b['date']} | {b['revision']} | {b['cache']} | {b['build_s']:.0f} s | {b['size_bytes'] / 1e6:.0f} MB "
            f"| {b['steps_rebuilt']} | {b['load_1m_before']} / {b['load_1m_after']} on {b['cpus']} CPUs |"
        )
    return lines


def _sources(env: dict[str, str]) -> str:
    """The cuda/ source digest both builds compiled (the provenance that matters here), or both when they differ."""
    h, i = env.get("source_host", "").strip(), env.get("source_image", "").strip()
    if not h:
        return "not recorded"
    return f"{h[:12]} in both builds" if h == i else f"host {h[:12]} / image {i[:12] or 'unknown'}"


def render(c: Comparison | dict[str, Any] | None, source: str = "", builds: list[dict[str, Any]] | None = None) -> str:
    """The markdown block for docs/kernels.md (between BEGIN and END) from the build records and a comparison (or
    its JSON); None: says what to run."""
    lines = [BEGIN, *_render_builds(builds), ""]
    if c is None:
        lines.append(
            "No GPU comparison recorded yet: run `workloads/images/cuda_kernels_gpu_check.sh` on the GPU machine "
            "(carrying .lab/imagebin), then `python -m workloads.images.compare_builds <its $OUT/image> --json "
            f"{CHECK_DIR}/compare.json --builds {CHECK_DIR}/build.json --docs docs/kernels.md`."
        )
        lines.append(END)
        return "\n".join(lines)
    d = c.to_json() if isinstance(c, Comparison) else c
    env = dict(ln.split("=", 1) for ln in d.get("env", "").splitlines() if "=" in ln and not ln.startswith(" "))
    t = d["tolerance"]
    lines.append(
        f"**Image binaries vs host build on the GPU machine: {d['verdict']}** ({env.get('gpu', 'GPU unknown')}, "
        f"{env.get('date', 'date unknown')}, cuda/ sources {_sources(env)}; "
        f"source `{source or 'compare.json'}`). "
        f"A row passes when both builds have it, its rel. error is finite and <= {t['check_rel_error']:g} in both, "
        f"and image/host of its median time is within max({t['floor']:.0%}, {t['noise_k']:g} x the row's "
        "rep-to-rep spread in either build)."
    )
    sass = {k.removeprefix("sass_"): v for k, v in env.items() if k.startswith("sass_")}
    if sass:
        lines.append("")
        lines.append(
            "Machine code (cuobjdump -sass on the GPU machine; the host build there uses that machine's nvcc): "
            + "; ".join(f"{k}: {v}" for k, v in sorted(sass.items()))
            + "."
        )
    lines.append("")
    lines.append(
        f"| binary | case | rows | in both | checks passed | within tolerance | within {FLOOR:.0%} | image/host median "
        "| worst |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for s in d["summary"]:
        med = f"{s['ratio_median']:.3f}" if s["ratio_median"] is not None else "-"
        worst = f"{s['ratio_worst']:.3f}" if s["ratio_worst"] is not None else "-"
        lines.append(
            f"| {s['binary']} | {s['case']} | {s['rows']} | {s['matched']} | {s['checks_passed']}/{s['checked']} "
            f"| {s['within_tolerance']}/{s['rows']} | {s.get('within_floor', '-')}/{s['rows']} | {med} | {worst} |"
        )
    bad = [r for r in d["rows"] if not r["ok"]]
    if bad or d["errors"]:
        lines.append("")
        lines.append("Rows and runs that did not pass:")
        lines += [f"- {r['binary']} {r['case']} [{r['key']}]: {'; '.join(r['problems'])}" for r in bad[:20]]
        lines += [f"- {e}" for e in d["errors"][:10]]
    if any(not r["noise_measured"] for r in d["rows"]):
        lines.append("")
        lines.append("Some rows ran once per build: their noise was not measured, the floor applied.")
    lines.append(END)
    return "\n".join(lines)


def write_docs(doc: Path, block: str) -> None:
    """Replace the block between BEGIN and END in `doc` (both markers must be there, once)."""
    text = doc.read_text()
    b, e = text.find(BEGIN), text.find(END)
    if b < 0 or e < b or text.count(BEGIN) != 1:
        raise CompareError(f"{doc}: needs exactly one block between {BEGIN!r} and {END!r}")
    doc.write_text(text[:b] + block + text[e + len(END) :])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", type=Path, nargs="?", help="the image check's output ($OUT/image of the device call)")
    ap.add_argument("--json", type=Path, help="write the comparison here (without DIRECTORY: read it from here)")
    ap.add_argument("--builds", type=Path, help="the build records (cuda_kernels --record) to render with it")
    ap.add_argument("--docs", type=Path, help="render into this markdown file's block")
    ap.add_argument("--plan", action="store_true", help="print the GPU check's runs and file names and exit")
    a = ap.parse_args(argv)
    if a.plan:
        print("\n".join(plan_lines()))
        return 0
    data: dict[str, Any] | None = None
    try:
        if a.directory is not None:
            c = compare(a.directory)
            data = c.to_json()
            if a.json:
                a.json.parent.mkdir(parents=True, exist_ok=True)
                a.json.write_text(json.dumps(data, indent=1) + "\n")
            for s in c.summary():
                print(json.dumps(s))
            for e in c.errors:
                print(f"run error: {e}")
            print(f"verdict: {c.verdict}")
        elif a.json and a.json.exists():
            data = json.loads(a.json.read_text())
        builds = json.loads(a.builds.read_text()) if a.builds and a.builds.exists() else None
        if a.docs:
            write_docs(a.docs, render(data, str(a.json) if a.json else "", builds))
    except CompareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0 if data is None or data["verdict"] == "MET" else 1


if __name__ == "__main__":
    sys.exit(main())
