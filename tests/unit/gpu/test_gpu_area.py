"""The GPU-sharing area on a CPU host: sysfs parsing, the batching worker's logic, and the specific skips."""

from __future__ import annotations

import pytest
import torch

from ailab.contract import Context, Skip
from workloads.gpu.batching import serve
from workloads.gpu.experiments.fragmentation import FragParams, fragmentation_study
from workloads.gpu.experiments.mig import mig_layouts
from workloads.gpu.experiments.mps_sharing import MpsParams, mps_study
from workloads.gpu.placement import gpu_numa_node, numa_nodes, parse_cpulist


def test_cpulist_parsing():
    assert parse_cpulist("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert parse_cpulist("") == set()


def test_numa_nodes_cover_this_hosts_cpus_and_unknown_gpu_bus_is_none():
    nodes = numa_nodes()
    assert nodes and all(isinstance(c, set) and c for c in nodes.values())
    assert gpu_numa_node("00000000:FF:1F.0") is None


def test_batching_worker_forms_batches_up_to_the_limit():
    model = torch.nn.Linear(8, 4)
    one = serve(model, 8, "cpu", max_batch=1, clients=4, seconds=0.5)
    many = serve(model, 8, "cpu", max_batch=4, clients=4, seconds=0.5, max_delay_ms=5)
    assert one.mean_batch == 1.0 and one.requests > 0
    assert 1.0 < many.mean_batch <= 4.0


def test_mig_is_skipped_with_the_reason(tmp_path):
    with pytest.raises(Skip, match="MIG layout must not be changed"):
        mig_layouts(Context(experiment_id="d48.e1", device="cuda", quick=True, workdir=tmp_path))


@pytest.mark.parametrize(
    ("runner", "params"), [(mps_study, MpsParams(parts=["p99"])), (fragmentation_study, FragParams())]
)
def test_gpu_only_runners_skip_on_cpu(tmp_path, runner, params):
    with pytest.raises(Skip, match="GPU"):
        runner(Context(experiment_id="d47.e5", device="cpu", quick=True, workdir=tmp_path), params)


def test_pci_address_from_torch_device_properties() -> None:
    """torch 2.11 gives the PCI bus as an int beside domain and device ids (a str in some builds)."""
    from types import SimpleNamespace

    from workloads.gpu.placement import pci_address

    assert pci_address(SimpleNamespace(pci_domain_id=0, pci_bus_id=0x19, pci_device_id=0)) == "0000:19:00.0"
    assert pci_address(SimpleNamespace(pci_bus_id="00000000:19:00.0")) == "00000000:19:00.0"
