# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Hashed n-gram counts (see ngram.py for the definition), typed loops with the GIL released."""

import numpy as np

from libc.stdint cimport int64_t, uint64_t

cdef uint64_t FNV_OFFSET = 14695981039346656037ULL
cdef uint64_t FNV_PRIME = 1099511628211ULL


def ngram_features(const int64_t[::1] ids, const int64_t[::1] offsets, int n_max, int buckets):
    cdef Py_ssize_t rows = offsets.shape[0] - 1
    out = np.zeros((rows, buckets), dtype=np.float32)
    cdef float[:, ::1] o = out
    cdef Py_ssize_t r, i, k, start, end
    cdef int n
    cdef uint64_t h
    cdef uint64_t nb = <uint64_t>buckets
    with nogil:
        for r in range(rows):
            start = offsets[r]
            end = offsets[r + 1]
            for n in range(1, n_max + 1):
                for i in range(start, end - n + 1):
                    h = (FNV_OFFSET ^ <uint64_t>n) * FNV_PRIME
                    for k in range(i, i + n):
                        h = (h ^ <uint64_t>ids[k]) * FNV_PRIME
                    o[r, h % nb] += 1
    return out
