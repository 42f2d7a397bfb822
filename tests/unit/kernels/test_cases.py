"""The case table (workloads/kernels/cases.py) and the C++ drivers agree: every case a driver answers to is listed,
and every listed case is one its driver answers to (`h::want` / `h::named` in cuda/bench/<binary>.cu)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workloads.kernels import build
from workloads.kernels.cases import CASES, check_cases

BENCH = Path(__file__).parents[3] / "cuda" / "bench"


@pytest.mark.parametrize("binary", sorted(CASES))
def test_listed_cases_are_the_drivers_cases(binary: str) -> None:
    src = (BENCH / f"{binary}.cu").read_text(encoding="utf-8")
    in_driver = set(re.findall(r'h::(?:want|named)\(argc, argv, "([a-z0-9_]+)"\)', src))
    assert in_driver == set(CASES[binary])


def test_every_binary_has_a_case_list() -> None:
    assert set(CASES) == set(build.BINARIES)


def test_unknown_case_names_the_binary_and_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"case 'd23\.e1' is not a case of bench_streams: allowed values are overlap_"):
        check_cases("bench_streams", ["d23.e1"])
    assert check_cases("bench_graphs", ["ceiling", "graph_batches"]) == ["ceiling", "graph_batches"]
