"""cuda/gpu_suite.sh's smoke section: each issue-22 kernel family is smoke-run alone (the others left out through
AILAB_SKIP_<family>) and a family whose run fails or times out is left out of the full run. bench_gemm is replaced
by a shell stand-in (no GPU here) that fails for one chosen family."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

SUITE = Path(__file__).parents[3] / "cuda" / "gpu_suite.sh"
FAKE = """#!/bin/bash
echo "{\\"case\\":\\"$3\\",\\"skips\\":\\"$(env | grep -o '^AILAB_SKIP_[A-Z0-9]*' | sort | tr '\\n' ' ')\\"}"
fam=${FAIL_FAMILY:-none}
v=AILAB_SKIP_$fam
[ "$fam" != none ] && [ -z "${!v}" ] && [ "$3" = "${FAIL_CASE:-$3}" ] && exit 3
exit 0
"""


def smoke_section() -> str:
    text = SUITE.read_text(encoding="utf-8")
    m = re.search(r"^# smoke runs of the newest kernels.*?^done$", text, re.S | re.M)
    assert m, "smoke section not found in cuda/gpu_suite.sh"
    return m.group(0)


def run_smoke(tmp_path: Path, fail: str | None, case: str | None = None) -> tuple[set[str], str]:
    fake = tmp_path / "bin" / "bench_gemm"
    fake.parent.mkdir()
    fake.write_text(FAKE)
    fake.chmod(0o755)
    script = tmp_path / "smoke.sh"
    script.write_text(smoke_section() + '\nenv | grep -o "^AILAB_SKIP_[A-Z0-9]*" | sort\n')
    env = {"PATH": "/usr/bin:/bin", "B": str(fake.parent), "OUT": str(tmp_path)}
    if fail:
        env["FAIL_FAMILY"] = fail
    if case:
        env["FAIL_CASE"] = case
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=60, check=True)
    skips = {line for line in proc.stdout.splitlines() if line.startswith("AILAB_SKIP_")}
    return skips, (tmp_path / "smoke.log").read_text()


def test_every_family_is_smoke_run_alone_and_kept_when_it_passes(tmp_path: Path) -> None:
    skips, log = run_smoke(tmp_path, None)
    assert skips == set()
    # the first two runs leave every new family out; each later run leaves out all families but one
    runs = [line for line in log.splitlines() if line.startswith("{")]
    firsts = runs[:2]
    assert all("AILAB_SKIP_CLUSTER AILAB_SKIP_FP8 AILAB_SKIP_M64 AILAB_SKIP_M64NN AILAB_SKIP_NN" in r for r in firsts)
    assert "== smoke FP8: bench_gemm --quick --case fp8_gemm" in log
    assert "== smoke M64: bench_gemm --quick --case gemm_shapes" in log
    assert '"case":"fp8_gemm","skips":"AILAB_SKIP_CLUSTER AILAB_SKIP_M64 AILAB_SKIP_M64NN AILAB_SKIP_NN ' in log
    assert "== smoke M64NN: bench_gemm --quick --case gemm_shapes" in log


@pytest.mark.parametrize(
    ("family", "case"), [("FP8", None), ("CLUSTER", "tensor_core_gemm"), ("NN", "gemm_shapes"), ("M64NN", None)]
)
def test_a_failing_family_is_left_out_and_only_it(tmp_path: Path, family: str, case: str | None) -> None:
    skips, log = run_smoke(tmp_path, family, case)
    assert skips == {f"AILAB_SKIP_{family}"}
    assert f"left out (AILAB_SKIP_{family}=1)" in log
