"""The cuda-kernels image without an engine: the Dockerfile's structure, the PyPI toolchain pins, the context's
wheels, and the host-vs-image comparison on recorded H100 harness output (tests/unit/kernels/fixtures/).

The GPU runs themselves cannot happen here: the comparison is fed the harness's real JSON lines, copied and edited
per test to stand for the image build's run."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workloads.images import catalog, compare_builds, context, cuda_kernels

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "kernels" / "fixtures"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "kernels.md"
CHECKS = Path(__file__).resolve().parents[2] / "reports" / "checks" / "cuda-kernels-image"
COMPARE_JSON, BUILD_JSON = CHECKS / "compare.json", CHECKS / "build.json"
DOCKERFILE = cuda_kernels.DOCKERFILE.read_text()


def _stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE, flags=re.M)


def test_dockerfile_defaults_to_the_local_debian_base_and_keeps_both_base_args() -> None:
    preamble = _stages()[0]
    assert f"ARG BASE_IMAGE={catalog.LOCAL_BASE}" in preamble
    assert f"ARG RUNTIME_IMAGE={catalog.LOCAL_BASE}" in preamble
    froms = re.findall(r"^FROM (\S+) AS (\w+)", DOCKERFILE, flags=re.M)
    assert froms == [("${BASE_IMAGE}", "builder"), ("${RUNTIME_IMAGE}", "runtime")]


def test_builder_installs_the_compilers_from_apt_and_the_toolchain_from_the_bind_mounted_wheels() -> None:
    builder = _stages()[1]
    apt = next(line for line in builder.splitlines() if "apt-get install" in line)
    assert {"g++", "cmake", "ninja-build"} <= set(apt.split())
    assert "--mount=type=bind,source=wheels,target=/wheels" in builder
    assert "PIP_NO_INDEX=1" in builder  # the build never reaches an index
    assert "-r /tmp/req/requirements.txt" in builder
    assert "COPY wheels" not in DOCKERFILE  # the 420 MB cuBLAS wheel must not become a layer
    assert "cmake -S /src/cuda" in builder and "strip" in builder


def test_runtime_stage_holds_only_binaries_and_libraries_as_a_fixed_non_root_user() -> None:
    runtime = _stages()[2]
    copies = re.findall(r"^COPY (.*)$", runtime, flags=re.M)
    assert copies == ["--from=builder /out/lib /opt/ailab/lib", "--from=builder /out/bin /opt/ailab/bin"]
    assert "USER 10001:10001" in runtime
    assert "pip" not in runtime and "apt-get" not in runtime
    assert f"LD_LIBRARY_PATH={cuda_kernels.LIB_DIR}" in runtime


def test_toolchain_pins_are_exact_and_on_the_cuda_13_0_line() -> None:
    pins = {}
    for line in cuda_kernels.REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"{line!r} is not pinned exactly"
            pins[name] = version
    assert set(pins) >= {
        "nvidia-cuda-nvcc",
        "nvidia-cuda-runtime",
        "nvidia-cuda-crt",
        "nvidia-nvvm",
        "nvidia-cublas",
        "nvidia-cuda-cupti",
    }
    # the toolkit components carry the CUDA version; cuBLAS has its own numbering (13.1.x shipped with CUDA 13.0 U2/U3)
    for name, version in pins.items():
        if name != "nvidia-cublas":
            assert version.startswith("13.0."), f"{name}=={version} is not CUDA 13.0"
    assert pins["nvidia-cublas"].startswith("13.1.")


def test_context_links_exactly_the_pinned_wheels(tmp_path: Path) -> None:
    house = tmp_path / "house"
    house.mkdir()
    req = cuda_kernels.REQUIREMENTS
    names = []
    for line in req.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            names.append(f"{name.replace('-', '_')}-{version}-py3-none-manylinux_2_27_x86_64.whl")
    for n in [*names, "nvidia_cuda_nvrtc-13.5.37-py3-none-manylinux_2_27_x86_64.whl"]:
        (house / n).write_bytes(b"")
    found = sorted(w.name for w in context.resolve_wheels([req], house))
    assert found == sorted(names)  # the newer nvrtc pip could pull in is left out
    (house / names[0]).unlink()
    with pytest.raises(context.ContextError, match="no wheel for nvidia-cuda-nvcc"):
        context.resolve_wheels([req], house)


def _write(d: Path, build: str, binary: str, rep: int, text: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{build}.{binary}.{rep}.jsonl").write_text(text)


def _scaled(text: str, factor: float, match: str | None = None) -> str:
    """The harness lines with the `time` column (and nothing else) multiplied by factor, on rows containing match."""
    out = []
    for line in text.splitlines():
        obj = json.loads(line)
        if "row" in obj and (match is None or match in line):
            names = [c[0] for c in obj["columns"]]
            if "time" in names:
                k = names.index("time")
                obj["row"][k] = obj["row"][k] * factor
        out.append(json.dumps(obj))
    return "\n".join(out) + "\n"


MEM = (FIXTURES / "bench_memory_vector_add_variants.jsonl").read_text()
GEMM = (FIXTURES / "bench_gemm_sweep.jsonl").read_text()


def _same_twice(d: Path) -> None:
    for rep in (1, 2):
        for build in ("host", "image"):
            _write(d, build, "bench_memory", rep, MEM)
            _write(d, build, "bench_gemm", rep, GEMM)


def test_identical_runs_match_every_row(tmp_path: Path) -> None:
    _same_twice(tmp_path)
    c = compare_builds.compare(tmp_path)
    assert c.verdict == "MET"
    assert c.runs == {"host": {"bench_gemm": 2, "bench_memory": 2}, "image": {"bench_gemm": 2, "bench_memory": 2}}
    n_rows = sum(1 for line in (MEM + GEMM).splitlines() if '"row"' in line)
    assert len(c.rows) == n_rows  # every fixture row has a distinct identity
    assert all(r.ratio == 1.0 and r.tolerance == compare_builds.FLOOR for r in c.rows)
    gemm = next(s for s in c.summary() if s["binary"] == "bench_gemm" and s["case"] == "sweep")
    assert gemm["checks_passed"] == gemm["checked"] > 0


def test_a_slower_row_in_the_image_build_is_named(tmp_path: Path) -> None:
    _same_twice(tmp_path)
    _write(tmp_path, "image", "bench_gemm", 1, _scaled(GEMM, 1.5, '"double buffering"'))
    _write(tmp_path, "image", "bench_gemm", 2, _scaled(GEMM, 1.5, '"double buffering"'))
    c = compare_builds.compare(tmp_path)
    assert c.verdict == "NOT MET"
    bad = [r for r in c.rows if not r.ok]
    assert bad and all("kernel=double buffering" in r.key for r in bad)
    assert all("image/host 1.500 outside 1 +- 0.10" in r.problems[0] for r in bad)


def test_tolerance_follows_the_measured_rep_to_rep_noise(tmp_path: Path) -> None:
    _write(tmp_path, "host", "bench_memory", 1, MEM)
    _write(tmp_path, "host", "bench_memory", 2, _scaled(MEM, 1.08))  # 8 % between two runs of the same binary
    _write(tmp_path, "image", "bench_memory", 1, _scaled(MEM, 1.2))
    _write(tmp_path, "image", "bench_memory", 2, _scaled(MEM, 1.2))
    c = compare_builds.compare(tmp_path)
    timed = [r for r in c.rows if r.measure == "time [ms]"]
    assert timed and all(math.isclose(r.tolerance, 0.24) for r in timed)
    assert all(r.ok for r in timed)  # 1.2 / 1.04 = 1.154 is inside 1 +- 0.24
    mem = next(s for s in c.summary() if s["case"] == "vector_add_variants")
    assert mem["within_tolerance"] == mem["rows"] and mem["within_floor"] == 0
    _write(tmp_path, "image", "bench_memory", 1, _scaled(MEM, 1.35))
    _write(tmp_path, "image", "bench_memory", 2, _scaled(MEM, 1.35))
    assert compare_builds.compare(tmp_path).verdict == "NOT MET"


def test_missing_rows_failed_checks_and_harness_errors_fail_the_comparison(tmp_path: Path) -> None:
    lines = GEMM.splitlines()
    dropped = [ln for ln in lines if '"WMMA naive' not in ln]
    assert len(dropped) < len(lines)
    _write(tmp_path, "host", "bench_gemm", 1, GEMM)
    _write(tmp_path, "image", "bench_gemm", 1, "\n".join(dropped) + "\n")
    c = compare_builds.compare(tmp_path)
    assert any(r.problems == ["row only in the host build"] and "WMMA naive" in r.key for r in c.rows)
    assert all(not r.noise_measured for r in c.rows)  # one run each: the floor applied

    poisoned = GEMM.replace("1.51084e-07", "null", 1)  # the harness writes a non-finite error as null
    _write(tmp_path, "image", "bench_gemm", 1, poisoned)
    c = compare_builds.compare(tmp_path)
    assert [r.problems for r in c.rows if not r.ok] == [["image check failed: rel. error nan > 0.01"]]

    _write(tmp_path, "image", "bench_gemm", 1, '{"error":"cublas status 1","call":"cublasCreate(&hb)"}\n')
    c = compare_builds.compare(tmp_path)
    assert c.verdict == "NOT MET"
    assert c.errors == ['image.bench_gemm.1.jsonl: {"error": "cublas status 1", "call": "cublasCreate(&hb)"}']


def test_bad_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(compare_builds.CompareError, match="does not exist"):
        compare_builds.compare(tmp_path / "nope")
    with pytest.raises(compare_builds.CompareError, match=re.escape("no <host|image>")):
        compare_builds.compare(tmp_path)
    _write(tmp_path, "host", "bench_memory", 1, '{"case":"x","row":[1]}\n')
    with pytest.raises(compare_builds.CompareError, match=r"host.bench_memory.1.jsonl: line 1: row record lacks"):
        compare_builds.compare(tmp_path)


def test_render_and_write_docs_replace_only_the_block(tmp_path: Path) -> None:
    _same_twice(tmp_path / "run")
    (tmp_path / "run" / "env.txt").write_text(
        "date=2026-12-02T06:05:00Z\ngpu=NVIDIA H200\nsource_host=abcdef0123456789\nsource_image=abcdef0123456789\n"
        "sass_bench_memory=identical (host 1f, image 1f)\n"
    )
    c = compare_builds.compare(tmp_path / "run")
    doc = tmp_path / "doc.md"
    doc.write_text(f"# t\nbefore\n{compare_builds.render(None)}\nafter\n")
    compare_builds.write_docs(doc, compare_builds.render(c, "x.json"))
    text = doc.read_text()
    assert text.startswith("# t\nbefore\n") and text.endswith("\nafter\n")
    assert (
        "**Image binaries vs host build on the GPU machine: MET** (NVIDIA H200, 2026-12-02T06:05:00Z, "
        "cuda/ sources abcdef012345 in both builds;" in text
    )
    assert "| bench_memory | vector_add_variants |" in text
    assert "bench_memory: identical (host 1f, image 1f)." in text
    with pytest.raises(compare_builds.CompareError, match="needs exactly one block"):
        compare_builds.write_docs(tmp_path / "run" / "env.txt", "x")


def test_build_records_are_appended_and_rendered(tmp_path: Path) -> None:
    from workloads.images import build

    r = build.BuildResult("localhost/ailab-cuda-kernels:x", 412.34, 812_000_000, [build.Step(1, 3, "RUN cmake", False)])
    path = tmp_path / "b" / "build.json"
    first = cuda_kernels.record(path, r, True, (3.5, 2.0, 1.0))
    cuda_kernels.record(path, r, False, (1.0, 1.0, 1.0))
    rows = json.loads(path.read_text())
    assert [x["cache"] for x in rows] == ["none (--no-cache)", "layer cache"]
    assert first["build_s"] == 412.3 and first["steps_rebuilt"] == 1 and first["load_1m_before"] == 3.5
    block = compare_builds.render(None, builds=rows)
    assert "| none (--no-cache) | 412 s | 812 MB | 1 | 3.5 / " in block
    assert "No GPU comparison recorded yet" in block


def test_docs_block_is_the_rendering_of_the_committed_records() -> None:
    """docs/kernels.md's image section is rendered from reports/checks/cuda-kernels-image/ (compare.json, build.json),
    or says that none is recorded: the numbers there are never typed by hand."""
    text = DOCS.read_text()
    b, e = text.index(compare_builds.BEGIN), text.index(compare_builds.END) + len(compare_builds.END)
    data = json.loads(COMPARE_JSON.read_text()) if COMPARE_JSON.exists() else None
    builds = json.loads(BUILD_JSON.read_text()) if BUILD_JSON.exists() else None
    source = str(COMPARE_JSON.relative_to(DOCS.parents[1]))
    assert text[b:e] == compare_builds.render(data, source, builds)


def test_source_digest_is_the_device_scripts_shell_digest(tmp_path: Path) -> None:
    src = tmp_path / "cuda"
    (src / "bench").mkdir(parents=True)
    (src / "build").mkdir()
    (src / "CMakeLists.txt").write_text("project(x)\n")
    (src / "bench" / "a.cu").write_text("int main() {}\n")
    (src / "bench" / "B.cuh").write_text("// upper case sorts first in byte order\n")
    (src / "build" / "x.cu").write_text("ignored: a build directory\n")
    (src / "NOTES.md").write_text("ignored: not a source\n")
    shell = (
        "find cuda -type f \\( -name '*.cu' -o -name '*.cuh' -o -name '*.h' -o -name '*.cpp' -o -name CMakeLists.txt "
        "\\) -not -path '*/build/*' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1"
    )
    got = subprocess.run(["sh", "-c", shell], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert cuda_kernels.source_digest(tmp_path) == got.strip()


def test_builds_of_different_sources_are_not_compared_as_equal(tmp_path: Path) -> None:
    _same_twice(tmp_path)
    (tmp_path / "env.txt").write_text("source_host=aaaa\nsource_image=bbbb\n")
    c = compare_builds.compare(tmp_path)
    assert c.verdict == "NOT MET"
    assert c.errors == [
        "the builds compiled different cuda/ sources (host aaaa, image bbbb): rebuild the image from the tree the "
        "GPU machine built"
    ]
    (tmp_path / "env.txt").write_text("source_host=aaaa\nsource_image=aaaa\n")
    assert compare_builds.compare(tmp_path).verdict == "MET"


def test_committed_cuda_sources_are_staged_from_git(tmp_path: Path) -> None:
    (tmp_path / "cuda").mkdir()
    (tmp_path / "cuda" / "stale.cu").write_text("// replaced\n")
    cuda_kernels.stage_committed_cuda(tmp_path, "HEAD")
    assert (tmp_path / "cuda" / "CMakeLists.txt").is_file() and not (tmp_path / "cuda" / "stale.cu").exists()
    listed = subprocess.run(
        ["git", "-C", str(DOCS.parents[1]), "ls-tree", "-r", "--name-only", "HEAD", "cuda"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "cuda").rglob("*") if p.is_file()) == sorted(
        listed
    )
    with pytest.raises(cuda_kernels.build.ImagesError, match="git ref 'no-such-ref'"):
        cuda_kernels.stage_committed_cuda(tmp_path, "no-such-ref")


SCRIPT = Path(__file__).resolve().parents[2] / "workloads" / "images" / "cuda_kernels_gpu_check.sh"


def test_the_plan_names_the_files_load_reads_in_alternating_order() -> None:
    plan = compare_builds.plan()
    for build, binary, rep, _, name in plan:
        m = compare_builds.FILE_RE.match(name)
        assert m and m.groups() == (build, binary, str(rep)), name
    runs = [(b, binary, rep) for b, binary, rep, _, _ in plan]
    assert sorted(runs) == sorted(
        (b, binary, rep)
        for b in compare_builds.BUILDS
        for binary in compare_builds.CASES
        for rep in range(1, compare_builds.REPS + 1)
    )
    firsts = [b for i, (b, _, _) in enumerate(runs) if i % len(compare_builds.CASES) == 0]
    assert firsts == ["host", "image", "image", "host"][: len(firsts)]  # each build runs first as often
    lines = compare_builds.plan_lines()
    assert f"env {compare_builds.ENV_FILE}" in lines and f"source {cuda_kernels.SOURCE_FILE}" in lines
    assert all(len(line.split(" ")) == 6 for line in lines if line.startswith("run "))  # the script reads 5 fields


def test_device_script_writes_the_layout_compare_builds_reads(tmp_path: Path) -> None:
    """The GPU check's script run here end to end (~2 s: a bash script starting python three times). What cannot exist
    here is faked: the two builds' binaries are shell scripts printing recorded H100 harness output (one of the image's
    runs exits with an error status), and cuobjdump prints the file it is given under a per-path `identifier` line."""
    bins = {"host": tmp_path / "host", "image": tmp_path / "img"}
    fixture = {"bench_memory": "bench_memory_vector_add_variants.jsonl", "bench_gemm": "bench_gemm_sweep.jsonl"}
    assert set(fixture) == set(compare_builds.CASES)
    calls = tmp_path / "calls.log"
    for build, d in bins.items():
        d.mkdir()
        for binary, name in fixture.items():
            fail = (
                'if [ "$(grep -c img/bench_gemm "$L")" -eq 2 ]; then exit 3; fi\n'
                if (build, binary) == ("image", "bench_gemm")
                else ""
            )
            (d / binary).write_text(f'#!/bin/sh\nL={calls}\necho "$0 $*" >> $L\ncat {FIXTURES / name}\n{fail}')
            (d / binary).chmod(0o755)
    (bins["image"] / cuda_kernels.SOURCE_FILE).write_text(compare_builds.source_digest(DOCS.parents[1]) + "\n")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "cuobjdump").write_text('#!/bin/sh\necho "\tidentifier = $2"\ncat "$2"\n')
    (tools / "cuobjdump").chmod(0o755)
    out = tmp_path / "out"
    env = {
        "PATH": f"{tools}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "OUT": str(out),
        "GIT_TGZ": str(tmp_path / "none.tgz"),  # no bare clone: the prelude leaves git alone
        "SKIP_BUILD": "1",
        "HOST_BIN": str(bins["host"]),
        "IMAGE_BIN": str(bins["image"]),
    }
    p = subprocess.run(["bash", str(SCRIPT)], cwd=DOCS.parents[1], env=env, capture_output=True, text=True, timeout=60)
    assert "verdict: NOT MET" in p.stdout, p.stdout + p.stderr
    d = out / "image"
    expected = {f for *_, f in compare_builds.plan()} | {compare_builds.ENV_FILE, compare_builds.RUNS_FILE}
    assert {f.name for f in d.iterdir()} == expected
    ran = [line.split() for line in calls.read_text().splitlines()]
    assert ran == [
        [str(bins[b] / binary), "--quick", "--case", case] for b, binary, _, case, _ in compare_builds.plan()
    ]
    c = compare_builds.compare(d)
    assert c.runs == {b: {binary: compare_builds.REPS for binary in compare_builds.CASES} for b in bins}
    assert c.errors == ["image.bench_gemm.2.jsonl: exit status 3"]  # the failed run is named, nothing else
    assert all(r.ok for r in c.rows)
    runs = (d / compare_builds.RUNS_FILE).read_text().splitlines()
    assert [r.split(":")[0] for r in runs] == [
        f"{b} {binary} rep {rep}" for b, binary, rep, _, _ in compare_builds.plan()
    ]
    assert "image bench_gemm rep 2: rc=3" in runs[5]
    facts = dict(ln.split("=", 1) for ln in (d / "env.txt").read_text().splitlines() if ln[:1].isalpha() and "=" in ln)
    assert facts["source_host"] == facts["source_image"] != ""
    assert facts["sass_bench_memory"].startswith("identical (host ")  # the per-path identifier line left out
    assert facts["sass_bench_gemm"].startswith("differs (host ")  # the image's fake differs by its exit line
    block = compare_builds.render(c, "x.json")
    assert "| bench_memory | vector_add_variants | 12 | 12 |" in block


def test_recorded_raw_inputs_give_the_committed_comparison() -> None:
    """reports/checks/cuda-kernels-image/compare.json is what compare_builds makes of the recorded raw/ files today, and
    the script and docs name what produced them."""
    assert compare_builds.compare(CHECKS / "raw").to_json() == json.loads(COMPARE_JSON.read_text())
    assert SCRIPT.stat().st_mode & 0o111 and subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    rel = str(SCRIPT.relative_to(DOCS.parents[1]))
    assert rel in DOCS.read_text() and rel in compare_builds.render(None)
    assert "python -m workloads.images.compare_builds" in SCRIPT.read_text()


def test_runtime_stage_base_follows_the_build_base() -> None:
    spec = catalog.image(cuda_kernels.NAME)
    assert cuda_kernels.runtime_base(catalog.LOCAL_BASE) == catalog.LOCAL_BASE
    assert cuda_kernels.runtime_base(spec.gpu_base) == spec.build_args["RUNTIME_IMAGE"] != spec.gpu_base
    assert cuda_kernels.runtime_base("example/cuda:devel") == "example/cuda:devel"


def test_build_arguments_of_the_one_build_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What build_image hands podman: --arg values, the runtime base (from --arg RUNTIME_IMAGE when given, pulled or
    built first) and the source label; the engine calls are faked (a cold build takes ten minutes here)."""
    from workloads.images import build

    ensured, built = [], {}
    monkeypatch.setattr(build, "ensure_base", lambda eng, base: ensured.append(base))
    monkeypatch.setattr(build, "base_python", lambda eng, base: None)
    monkeypatch.setattr(build, "git_revision", lambda: "abc1234")
    (tmp_path / "src" / "cuda").mkdir(parents=True)
    monkeypatch.setattr(cuda_kernels.context, "stage", lambda spec, args, python=None: tmp_path)
    monkeypatch.setattr(build, "build", lambda eng, ctx, df, ref, args, **k: built.update(args) or ref)
    assert cuda_kernels.build_image("podman") == catalog.image(cuda_kernels.NAME).ref
    assert ensured == [catalog.LOCAL_BASE]
    assert built["BASE_IMAGE"] == built["RUNTIME_IMAGE"] == catalog.LOCAL_BASE
    assert built["CUDA_SOURCE"] == compare_builds.source_digest(tmp_path / "src") and built["REVISION"] == "abc1234"
    ensured.clear()
    cuda_kernels.build_image("podman", args={"RUNTIME_IMAGE": "r:1", "X": "y", "BASE_IMAGE": "ignored"})
    assert ensured == [catalog.LOCAL_BASE, "r:1"]
    assert (built["RUNTIME_IMAGE"], built["X"], built["BASE_IMAGE"]) == ("r:1", "y", catalog.LOCAL_BASE)
