"""Hashed n-gram counts over token ids: the tokenizer model's post-processing hot loop, in pure Python and Numba.

Input is a batch of variable-length id sequences in CSR form: `ids` (int64, all sequences back to back) and
`offsets` (int64, rows + 1; row r is ids[offsets[r]:offsets[r + 1]]). For every n in 1..n_max and every n-gram of a
row, a 64-bit FNV-1a hash of (n, ids...) picks one of `buckets` counters; the output is float32 [rows, buckets].
The Cython (`ngram_cy.pyx`) and C++ (`ngram_cpp.cpp`) versions compute the same hash with the same wrap-around.

This file is copied next to each Python-backend `model.py`: it imports only numpy (and numba, lazily).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

FNV_OFFSET = 14695981039346656037
FNV_PRIME = 1099511628211
MASK = (1 << 64) - 1

Impl = Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]


def to_csr(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, offsets) int64 arrays for a list of id lists."""
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r) for r in rows])
    ids = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(offsets[-1]))
    return ids, offsets


def ngram_python(ids: np.ndarray, offsets: np.ndarray, n_max: int, buckets: int) -> np.ndarray:
    """The baseline: plain Python loops over Python ints (masking emulates uint64 wrap-around)."""
    flat = ids.tolist()
    offs = offsets.tolist()
    out = np.zeros((len(offs) - 1, buckets), dtype=np.float32)
    for r in range(len(offs) - 1):
        seq = flat[offs[r] : offs[r + 1]]
        row = [0] * buckets
        for n in range(1, n_max + 1):
            for i in range(len(seq) - n + 1):
                h = ((FNV_OFFSET ^ n) * FNV_PRIME) & MASK
                for k in range(i, i + n):
                    h = ((h ^ seq[k]) * FNV_PRIME) & MASK
                row[h % buckets] += 1
        out[r] = row
    return out


_numba_kernel: Callable[..., None] | None = None


def _compile_numba() -> Callable[..., None]:
    import numba

    offset, prime = np.uint64(FNV_OFFSET), np.uint64(FNV_PRIME)

    # Every operand is uint64: mixing uint64 with int64 would promote to float64 in Numba and break the hash.
    @numba.njit(nogil=True, cache=False)
    def kernel(ids: np.ndarray, offsets: np.ndarray, n_max: int, buckets: int, out: np.ndarray) -> None:
        nb = np.uint64(buckets)
        for r in range(offsets.shape[0] - 1):
            start, end = offsets[r], offsets[r + 1]
            for n in range(1, n_max + 1):
                for i in range(start, end - n + 1):
                    h = (offset ^ np.uint64(n)) * prime
                    for k in range(i, i + n):
                        h = (h ^ np.uint64(ids[k])) * prime
                    out[r, h % nb] += 1.0

    return kernel


def ngram_numba(ids: np.ndarray, offsets: np.ndarray, n_max: int, buckets: int) -> np.ndarray:
    """Numba (nopython, GIL released); compiled on first call."""
    global _numba_kernel
    if _numba_kernel is None:
        _numba_kernel = _compile_numba()
    out = np.zeros((len(offsets) - 1, buckets), dtype=np.float32)
    _numba_kernel(np.ascontiguousarray(ids, np.int64), np.ascontiguousarray(offsets, np.int64), n_max, buckets, out)
    return out


IMPLS = ("python", "numba", "cython", "cpp")


def load(name: str, build_dir: str | None = None) -> Impl:
    """The implementation `name`; cython and cpp are imported from `build_dir` (see workloads/backends/build.py)."""
    if name == "python":
        return ngram_python
    if name == "numba":
        return ngram_numba
    if name in ("cython", "cpp"):
        if not build_dir:
            raise ValueError(f"impl {name!r} needs build_dir (the compiled extension's directory)")
        import importlib.util
        import pathlib
        import sysconfig

        mod_name = f"ngram_{'cy' if name == 'cython' else 'cpp'}"
        path = pathlib.Path(build_dir) / f"{mod_name}{sysconfig.get_config_var('EXT_SUFFIX')}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None or not path.exists():
            raise ValueError(f"impl {name!r}: no compiled extension at {path}")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod.ngram_features  # type: ignore[no-any-return]
    raise ValueError(f"impl {name!r}: allowed {', '.join(IMPLS)}")
