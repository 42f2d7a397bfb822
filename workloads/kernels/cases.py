"""The cases each harness binary answers to (`--case NAME`), named by idea; bindings name experiments' cases from here.

The C++ drivers in cuda/bench/ are the source: tests/unit/kernels/test_cases.py checks that this table and the
`h::want` / `h::named` names in each driver agree, so a case renamed on one side fails the tests.
"""

from __future__ import annotations

from typing import Literal

Binary = Literal["bench_memory", "bench_gemm", "bench_streams", "bench_graphs", "oob_vector_add", "bench_conv"]

# "ceiling" is not a case one can select: every driver run prints its ceiling rows under that name.
CASES: dict[str, tuple[str, ...]] = {
    "bench_memory": (
        "vector_add_variants",
        "block_size_occupancy",
        "thread_block_shape",
        "shared_staging",
        "bank_conflicts",
        "fast_math",
        "constant_memory",
        "branch_divergence",
        "register_cap",
        "unroll",
        "aos_soa",
        "coalescing",
    ),
    "bench_gemm": (
        "sweep",
        "sgemm_autotune",
        "tile_sizes",
        "wmma_vs_tiling",
        "double_buffering",
        "tiled_vs_naive",
        "tensor_core_gemm",
        "gemm_shapes",
        "fp8_gemm",
        "tiles",
        "fp16",
        "cpu",
        "profile",
    ),
    "bench_streams": (
        "overlap_two_streams",
        "overlap",
        "concurrent_streams",
        "event_sync",
        "too_many_streams",
        "unified_memory",
        "overlap_trace",
    ),
    "bench_graphs": ("plain_launches", "graph_vs_plain", "graph_batches", "graph_reuse", "graph_trace"),
    "bench_conv": ("conv", "stages"),
    "oob_vector_add": (),
}
ROWS_OF_EVERY_RUN = ("ceiling",)


def check_cases(binary: str, cases: list[str]) -> list[str]:
    """`cases` unchanged if `binary` answers to each of them; else ValueError naming the bad one and the allowed."""
    allowed = (*CASES[binary], *ROWS_OF_EVERY_RUN)
    for c in cases:
        if c not in allowed:
            raise ValueError(f"case {c!r} is not a case of {binary}: allowed values are {', '.join(allowed)}")
    return cases
