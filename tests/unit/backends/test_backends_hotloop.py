"""The n-gram hot loop: four implementations (Python, Numba, Cython, C++/pybind11) return exactly the same counts.

The Cython and C++ extensions are compiled from the repository's sources by workloads/backends/build.py (cached under
.lab/build/backends/); one test builds them afresh at -O0 into a temporary directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workloads.backends import build
from workloads.backends.hotloop import ngram


@pytest.fixture(scope="module")
def build_dir() -> Path:
    return build.build("-O3")


def rows(seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    out = [[int(x) for x in rng.integers(0, 50_000, rng.integers(0, 300))] for _ in range(24)]
    return [*out, [], [7], [7, 7]]  # empty, shorter than n_max, repeated ids


@pytest.mark.parametrize("impl", ["numba", "cython", "cpp"])
@pytest.mark.parametrize(("n_max", "buckets"), [(1, 16), (3, 4096), (5, 1000)])
def test_every_implementation_matches_pure_python(build_dir: Path, impl: str, n_max: int, buckets: int) -> None:
    ids, off = ngram.to_csr(rows(n_max))
    want = ngram.ngram_python(ids, off, n_max, buckets)
    got = ngram.load(impl, str(build_dir))(ids, off, n_max, buckets)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_counts_every_ngram_once() -> None:
    data = rows(1)
    ids, off = ngram.to_csr(data)
    out = ngram.ngram_python(ids, off, 3, 64)
    expected = [sum(max(0, len(r) - n + 1) for n in (1, 2, 3)) for r in data]
    assert out.sum(axis=1).tolist() == expected
    np.testing.assert_array_equal(out[-2], ngram.ngram_python(*ngram.to_csr([[7]]), 3, 64)[0])
    assert out[-1].max() == 2  # the unigram 7 twice lands in one bucket


def test_hash_depends_on_order_and_n() -> None:
    a = ngram.ngram_python(*ngram.to_csr([[1, 2], [2, 1]]), 2, 1 << 20)
    assert not np.array_equal(a[0], a[1])  # bigram (1,2) != (2,1)
    uni = ngram.ngram_python(*ngram.to_csr([[3]]), 1, 1 << 20)
    assert uni.sum() == 1 and ngram.ngram_python(*ngram.to_csr([[3]]), 2, 1 << 20).sum() == 1


def test_fresh_build_at_o0(tmp_path: Path) -> None:
    d = build.build("-O0", root=tmp_path)
    assert d.parent == tmp_path and sorted(p.suffix for p in d.iterdir()) == [".so", ".so"]
    ids, off = ngram.to_csr(rows(2))
    want = ngram.ngram_python(ids, off, 3, 512)
    for impl in ("cython", "cpp"):
        np.testing.assert_array_equal(ngram.load(impl, str(d))(ids, off, 3, 512), want)
    assert build.build("-O0", root=tmp_path) == d  # same sources and flags: reused, not rebuilt


def test_bad_names_are_refused() -> None:
    with pytest.raises(ValueError, match=r"impl 'rust': allowed python, numba, cython, cpp"):
        ngram.load("rust")
    with pytest.raises(ValueError, match=r"impl 'cython' needs build_dir"):
        ngram.load("cython")
    with pytest.raises(ValueError, match=r"impl 'cpp': no compiled extension at"):
        ngram.load("cpp", "/nonexistent")
    with pytest.raises(ValueError, match=r"opt '-Ofast': allowed -O0, -O1, -O2, -O3"):
        build.build_dir_for("-Ofast")
