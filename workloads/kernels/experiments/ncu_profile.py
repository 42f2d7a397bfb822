"""ncu (--clock-control none) metrics of the kernels of one harness case, one launch each."""

from __future__ import annotations

import math
import re

from pydantic import Field, model_validator

from ailab.contract import Context, Output, Params, Table
from workloads.kernels import cases as _cases
from workloads.kernels import tools
from workloads.kernels.cases import Binary


class ProfileParams(Params):
    binary: Binary
    case: str | None = Field(default=None, description="the case to run under ncu (none: every case)")
    kernel_regex: str = Field(min_length=1, description="ncu -k regex: the kernels profiled")
    launch_count: int = Field(default=40, gt=0, le=500, description="ncu -c: at most this many launches")

    @model_validator(mode="after")
    def _known_case(self) -> ProfileParams:
        if self.case is not None:
            _cases.check_cases(self.binary, [self.case])
        try:
            re.compile(self.kernel_regex)
        except re.error as exc:
            raise ValueError(f"kernel_regex {self.kernel_regex!r} is not a regular expression: {exc}") from None
        return self


def ncu_profile(ctx: Context, p: ProfileParams) -> Output:
    """One row per profiled launch: duration, DRAM and SM throughput, occupancy, registers, load sectors."""
    tools.require_cuda(ctx)
    args = (*(("--quick",) if ctx.quick else ()), *(("--case", p.case) if p.case else ()))
    rows = tools.ncu(p.binary, args, p.kernel_regex, p.launch_count)
    if not rows:
        raise RuntimeError(f"ncu profiled no kernel matching {p.kernel_regex!r}")
    cols = [("launch", ""), ("kernel", ""), ("grid", ""), ("block", "")]
    cols += [(label, unit) for _, label, unit in tools.NCU_METRICS]
    cols.append(("sectors per load request", ""))
    t = Table.of(f"ncu profile ({p.binary}, kernels /{p.kernel_regex}/)", cols)
    for r in rows:
        vals = [tools.ncu_number(r.get(m)) for m, _, _ in tools.NCU_METRICS]
        sectors, requests = vals[-3], vals[-2]
        name = re.sub(r"\(.*", "", r.get("Kernel Name", "?"))[:60]
        t.add(
            r.get("ID", ""),
            name,
            r.get("Grid Size", ""),
            r.get("Block Size", ""),
            *vals,
            sectors / requests if requests else math.nan,
        )
    return Output(tables=[t], notes=["Profiled with ncu --clock-control none: the card runs at its own clocks."])
