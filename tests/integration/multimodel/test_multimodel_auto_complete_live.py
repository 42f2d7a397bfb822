"""What lets the multimodel quick runs start tritonserver with --disable-auto-complete-config (auto_complete_config:
false): every model of theirs is served with the same config either way, on a real tritonserver 2.51. Nothing is
mocked. Two servers started and stopped (one with the python backend's auto-complete stubs): about 15 s here."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.contract import Context
from ailab.runner import local_platform
from workloads.multimodel.experiments import AUTO_COMPLETE_OFF, server_args
from workloads.multimodel.models import fixed_cost, large, small
from workloads.serving import harness
from workloads.serving.modelspec import DynamicBatching, InstanceGroup, RateLimiter, rate_limit_args

pytestmark = pytest.mark.integration

SPECS = [
    small("small"),
    large("large", instance_groups=(InstanceGroup(count=2),)),
    fixed_cost("a", 20.0, count=2, rate_limiter=RateLimiter({"R": 1}, priority=2, global_resources=("R",))),
    fixed_cost("prio", 10.0, count=1, max_batch_size=4,
               dynamic_batching=DynamicBatching(preferred_batch_sizes=(4,), priority_levels=2,
                                                default_priority_level=2)),
]  # fmt: skip


def _configs(ctx: Context, workdir: Path, auto_complete: bool) -> dict[str, dict]:
    import tritonclient.grpc as grpcclient

    args = server_args(auto_complete, rate_limit_args(SPECS, {"R": 2}))
    assert (AUTO_COMPLETE_OFF in args) is not auto_complete
    with harness.serve(ctx, SPECS, workdir=workdir, args=args, warm_requests=0) as srv:
        c = grpcclient.InferenceServerClient(srv.address("grpc"))
        try:
            return {s.name: c.get_model_config(s.name, as_json=True)["config"] for s in SPECS}
        finally:
            c.close()


def test_the_served_configs_are_the_same_without_auto_completion(tmp_path: Path) -> None:
    ctx = Context("multimodel-tests", "cpu", False, tmp_path, platform=local_platform)
    default = _configs(ctx, tmp_path / "default", auto_complete=True)
    off = _configs(ctx, tmp_path / "off", auto_complete=False)
    assert set(default) == {s.name for s in SPECS}
    assert off == default
