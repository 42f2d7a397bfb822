"""The floor between the planes: all that `workloads` may import from `ailab`.

- `experiment`: the runner contract (`Context`, `Output`, `Table`, `Series`, `Skip`, `Substitute`,
  `Generated`).
- `params`: `Params`, the base of every runner's typed parameter model.
- `paths`: where the lab keeps results, reports, state and scratch space.
- `ports`: `free_port()`, a free loopback port this process has not handed out before.
- `durations`: `seconds()` of a duration in Prometheus' notation ("500ms", "1h30m").
- `probes`: what this host has (GPUs, binaries, TensorRT, a container engine, a cluster context).
- `facts`: data files both planes read (image catalogue, operator CRD identity, week facts, MIG profiles).

Nothing here imports another `ailab` package or `workloads` (tests/unit/lab/test_import_rules.py enforces it).
"""

from ailab.contract.experiment import (
    Column,
    Context,
    Generated,
    LocalPlatform,
    Output,
    Series,
    Skip,
    Substitute,
    Table,
)
from ailab.contract.params import NoParams, Params

__all__ = [
    "Column",
    "Context",
    "Generated",
    "LocalPlatform",
    "NoParams",
    "Output",
    "Params",
    "Series",
    "Skip",
    "Substitute",
    "Table",
]
