"""d08.e2: an out-of-bounds vector_add run plain (silent) and under compute-sanitizer memcheck (caught)."""

from __future__ import annotations

import math

from ailab.contract import Context, Output, Table
from workloads.kernels import tools


def out_of_bounds(ctx: Context) -> Output:
    """The unguarded and the guarded kernel, each plain and under memcheck: exit codes and reported accesses."""
    tools.require_cuda(ctx)
    t = Table.of(
        "out-of-bounds writes: plain run vs compute-sanitizer memcheck",
        [("kernel", ""), ("run", ""), ("exit code", ""), ("invalid accesses reported", ""), ("summary", "")],
    )
    for fixed in (False, True):
        plain, checked = tools.sanitize(fixed)
        t.add(plain.kernel, "plain", plain.exit_code, math.nan, plain.summary)
        t.add(checked.kernel, "compute-sanitizer memcheck", checked.exit_code, checked.errors, checked.summary)
    return Output(
        tables=[t],
        notes=["1000 elements, 4 blocks of 256 threads: 24 threads of the unguarded kernel write past the end."],
    )
