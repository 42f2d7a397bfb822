"""MIG (d48): not run on lent machines."""

from __future__ import annotations

from ailab.contract import Context, Output, Skip


def mig_layouts(ctx: Context) -> Output:
    raise Skip(
        "needs MIG rights: the lent GPU's MIG layout must not be changed (creating 1g/7g instances would alter "
        "a shared machine); run on an owned A100/H100/H200 with the gpu_sharing role's MIG profiles"
    )
