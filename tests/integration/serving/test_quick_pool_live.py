"""The quick runs' platform pool with real tritonservers: `lab run --quick` lends a started server to the next
experiment that asks for the same models and options, never to a full-size run, and kills them all when it closes,
python stubs and their shared-memory regions included."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from ailab.local.pool import SHM_DIR, SHM_PREFIX, PlatformPool
from ailab.runner import local_context
from workloads.serving import harness
from workloads.serving.repository import mlp_spec

pytestmark = pytest.mark.integration


def test_quick_pool_lends_the_same_server_only_for_the_same_models_and_stops_all(tmp_path: Path) -> None:
    both = [mlp_spec("mlp"), mlp_spec("mlp_b")]
    seen: list[psutil.Process] = []
    regions: set[str] = set()

    def serve(exp: str, specs: list, quick: bool = True) -> tuple[int, str | None]:
        ctx = local_context(exp, tmp_path / exp, quick=quick, pool=pool)
        with harness.serve(ctx, specs, warm_requests=1) as srv:
            procs = harness.tree(srv.pid)
            seen.extend(procs)
            regions.update(a for p in procs for a in p.cmdline() if a.startswith(SHM_PREFIX))
            return srv.pid, srv.reused_from

    with PlatformPool() as pool:
        first, lent = serve("t.e1", both)
        assert lent is None
        assert serve("t.e2", both) == (first, "t.e1")  # same specs: the same process
        assert serve("t.e3", both[:1]) == (first, "t.e1")  # a model of it, byte for byte: lent too
        assert "tritonserver reused from t.e1 (quick pool" in pool.reused("t.e3")[0]
        assert "it also serves mlp_b" in pool.reused("t.e3")[0]
        other, lent = serve("t.e4", [mlp_spec("mlp", max_batch_size=4)])  # another config.pbtxt: a server of its own
        assert other != first and lent is None
        full, lent = serve("t.e5", both, quick=False)  # full-size results must not depend on what ran before
        assert full not in (first, other) and lent is None
        assert pool.reused("t.e5") == []
        assert first in pool.pids()
    assert seen and not [p for p in seen if _running(p)], "servers or python stubs left after close"
    ours = {p.pid for p in seen}
    assert not [c for c in psutil.Process().children() if c.pid in ours], "a killed server left unreaped"
    assert len(regions) >= 3, regions  # one per stub: two models on the first server, one on the second at least
    assert not [r for r in regions if (SHM_DIR / r).exists()], "python-backend shared memory left after close"


def _running(p: psutil.Process) -> bool:
    """Alive: a killed stub stays a zombie (dead, holding nothing) until the process that adopted it reaps it."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
