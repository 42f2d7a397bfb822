"""Parsers of the CUDA tools' output (ncu CSV, cuobjdump -res-usage, compute-sanitizer), on recorded output."""

from __future__ import annotations

import math
from pathlib import Path

from workloads.kernels import tools

FIX = Path(__file__).parent / "fixtures"


def test_ncu_csv_rows_skip_the_programs_own_output() -> None:
    rows = tools.parse_ncu_csv((FIX / "ncu_vector_add.csv").read_text())
    assert len(rows) == 3  # -c 3
    assert all("vector_add" in r["Kernel Name"] for r in rows)
    assert tools.ncu_number(rows[0]["launch__registers_per_thread"]) > 0


def test_ncu_number_reads_separators_and_missing_values() -> None:
    assert tools.ncu_number("1,234.5") == 1234.5
    assert math.isnan(tools.ncu_number("n/a"))
    assert math.isnan(tools.ncu_number(None))


def test_res_usage_per_kernel() -> None:
    res = tools.parse_res_usage((FIX / "cuobjdump_excerpt.txt").read_text())
    assert res["_ZN7precise10math_heavyEPKfPfm"] == {
        "REG": 27,
        "STACK": 32,
        "SHARED": 0,
        "LOCAL": 0,
        "TEXTURE": 0,
        "SURFACE": 0,
        "SAMPLER": 0,
    }
    assert res["_ZN4fast10math_heavyEPKfPfm"]["REG"] == 31


def test_sanitizer_reports_are_counted() -> None:
    r = tools.sanitizer_result("unguarded", 3, (FIX / "sanitizer_oob.txt").read_text())
    assert r.errors == 3  # the excerpt keeps the first three reports
    assert r.summary == "ERROR SUMMARY: 25 error"
