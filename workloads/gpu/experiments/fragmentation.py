"""Allocator fragmentation (d59.e5): a mixed-size allocation pattern under an 8 GiB cap, with and without
expandable_segments, in fresh processes."""

from __future__ import annotations

from pydantic import Field

from ailab.contract import Context, Output, Params, Skip


class FragParams(Params):
    rounds: int = Field(40, gt=0)
    cap_gib: float = Field(8.0, gt=0)


def fragmentation_study(ctx: Context, p: FragParams) -> Output:
    from workloads.engines.tables import table
    from workloads.gpu.fragmentation import run

    if ctx.device != "cuda":
        raise Skip("needs a CUDA GPU (PyTorch's CUDA caching allocator)")
    rows = []
    for exp in (False, True):
        rows.append({"expandable_segments": exp, **run(exp, {"rounds": p.rounds, "cap_gib": p.cap_gib})})
    out = Output()
    out.tables.append(
        table(
            "fragmentation",
            rows,
            caption=f"{p.rounds} rounds of 24 allocations of 1-96 MiB, two "
            f"thirds freed at random each round; cap {p.cap_gib} GiB (set_per_process_memory_fraction); "
            "largest_new_block = biggest single allocation that still fits afterwards (64 MiB steps)",
        )
    )
    return out
