"""Run CUDA experiments through the lab's runner without the CLI (the GPU image lacks other areas' CLI deps).

Same calls as `lab run SEL --device cuda`: resolve, provenance.collect, run_one, results stored with provenance.
The catalogue is loaded without importing every area's runner modules (the GPU image lacks some areas'
dependencies); the selected experiments' runners are imported, and their parameters validated, by run_one.
Usage (repo root on the GPU machine, see gpu_suite.sh): python3 cuda/gpu_run.py d08,d09 [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ailab.curriculum.loader import load_catalogue
from ailab.results import provenance
from ailab.runner import resolve, run_one


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print("usage: python3 cuda/gpu_run.py SELECTION [--quick]", file=sys.stderr)
        return 2
    quick = "--quick" in argv[1:]
    prov = provenance.collect()
    failed = 0
    for exp in resolve(argv[0], load_catalogue(check_runners=False)):
        t0 = time.perf_counter()
        o = run_one(exp, "cuda", quick, prov)
        failed += o.status == "failed"
        print(f"{o.experiment_id} {o.status} {time.perf_counter() - t0:.1f}s {o.reason[:300]}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
