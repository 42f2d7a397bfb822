"""Bad stack settings are refused with the stack file key, the value and what is allowed, before any resource.

The Pulumi engine is mocked (no CLI here); the kind host check reads a fake host.
"""

from __future__ import annotations

import pytest
from pulumi_harness import GPU_READY_HOST, Recorder, fake_probe, run_program

import pulumi
from ailab.platform import weeks
from ailab.platform.config import ConfigError, parse_settings
from ailab.platform.hostcheck import CONTAINERD_CONFIG, DOCKER_DAEMON, TOOLKIT_CONFIG, check_kind_gpu

SRC = "Pulumi.week07.yaml"


def base(**sections: object) -> dict[str, object]:
    cfg: dict[str, object] = {"ailab:week": 7}
    cfg.update({f"ailab:{k}": v for k, v in sections.items()})
    return cfg


@pytest.mark.parametrize(
    ("config", "key", "words"),
    [
        (
            base(gpu={"sharing": {"mps": {"replicas": 0}}}),
            "ailab:gpu.sharing.mps.replicas = 0",
            "greater than or equal to 1",
        ),
        (
            base(gpu={"sharing": {"timeSlicing": {"replicas": 0}}}),
            "ailab:gpu.sharing.timeSlicing.replicas = 0",
            "greater than or equal to 1",
        ),
        (
            base(gpu={"sharing": {"timeSlicing": {"replicas": 2}, "mps": {"replicas": 2}}}),
            "ailab:gpu.sharing",
            "both on",
        ),
        (base(gpu={"migStrategy": "single", "sharing": {"mps": {"replicas": 2}}}), "ailab:gpu", "mps on MIG devices"),
        (
            base(gpu={"nodeConfigs": {"m": {"migStrategy": "mixed", "sharing": {"mps": {"replicas": 2}}}}}),
            "ailab:gpu.nodeConfigs.m",
            "mps on MIG devices",
        ),
        (base(gpu={"migStrategy": "double"}), "ailab:gpu.migStrategy = 'double'", "'none', 'single' or 'mixed'"),
        (
            base(gpu={"mode": "operator", "mig": {"layouts": {"x": {"9g.99gb": 1}}}}),
            "ailab:gpu.mig.layouts",
            "unknown MIG profile '9g.99gb'",
        ),
        (base(gpu={"mig": {"layouts": {"x": {"1g.10gb": 7}}}}), "ailab:gpu", "set mode operator"),
        (
            base(mesh={"enabled": True, "weights": {"stable": 90, "canary": 20}}, serving={"canary": True}),
            "ailab:mesh.weights",
            "sum to 100",
        ),
        (base(mesh={"enabled": True, "weights": {"stable": 90, "canary": 10}}), "ailab", "set serving.canary true"),
        ({"ailab:week": 14}, "ailab:week = 14", "allowed: 1-13"),
        (base(gpus={}), "ailab:gpus", "unknown key"),
        (base(cache={"storage": "lots"}), "ailab:cache.storage = 'lots'", "pattern"),
    ],
)
def test_bad_setting_names_the_key(config: dict, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_settings(config, SRC)
    assert f"{SRC}: {key}" in str(exc.value)
    assert words in str(exc.value)


def test_every_stack_file_parses_and_says_its_week() -> None:
    for w in range(1, 14):
        assert weeks.settings(w).week == w


@pytest.mark.parametrize("week", ["week14", "week00", "5x", "latest"])
def test_unknown_week_is_refused(week: str) -> None:
    with pytest.raises(ConfigError, match="allowed: week01 … week13"):
        weeks.stack_name(week)


def test_week_names_normalise() -> None:
    assert [weeks.stack_name(x) for x in ("5", 5, "week5", "week05")] == ["week05"] * 4


@pytest.mark.parametrize(
    ("files", "binaries", "missing"),
    [
        ({}, (), "nvidia-ctk not on PATH"),
        ({TOOLKIT_CONFIG: GPU_READY_HOST[TOOLKIT_CONFIG]}, ("nvidia-ctk",), "no NVIDIA container runtime"),
        (
            {DOCKER_DAEMON: '{"runtimes": {"nvidia": {}}}', TOOLKIT_CONFIG: GPU_READY_HOST[TOOLKIT_CONFIG]},
            ("nvidia-ctk",),
            "default-runtime nvidia",
        ),
        (
            {DOCKER_DAEMON: GPU_READY_HOST[DOCKER_DAEMON]},
            ("nvidia-ctk",),
            "accept-nvidia-visible-devices-as-volume-mounts",
        ),
    ],
)
def test_kind_gpu_host_check(files: dict, binaries: tuple, missing: str) -> None:
    with pytest.raises(ConfigError) as exc:
        check_kind_gpu(SRC, fake_probe(files, binaries))
    assert f"{SRC}: ailab:cluster.gpu" in str(exc.value) and missing in str(exc.value)


def test_kind_gpu_host_check_accepts_docker_or_containerd() -> None:
    check_kind_gpu(SRC, fake_probe(GPU_READY_HOST))
    containerd = {
        CONTAINERD_CONFIG: '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]\n',
        TOOLKIT_CONFIG: GPU_READY_HOST[TOOLKIT_CONFIG],
    }
    check_kind_gpu(SRC, fake_probe(containerd))


@pytest.mark.parametrize(
    ("config", "probe", "words"),
    [
        (base(gpu={"sharing": {"mps": {"replicas": 0}}}), fake_probe(GPU_READY_HOST), "ailab:gpu.sharing.mps.replicas"),
        (base(), fake_probe({}), "ailab:cluster.gpu"),
        (
            base(cluster={"target": "k3s", "inventory": "inv.yml"}),
            fake_probe({"inv.yml": "all: {}"}),
            "ailab:cluster.kubeconfig",
        ),
        (base(cluster={"target": "k3s", "inventory": "nope.yml"}), fake_probe({}), "ailab:cluster.inventory"),
    ],
)
def test_program_refuses_before_any_resource(config: dict, probe, words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole program (pulumi/__main__.py) fails with the key and registers nothing at all."""
    rec = Recorder()
    with pytest.raises(pulumi.RunError, match=words.replace(".", r"\.")) as exc:
        run_program("week07", config, probe, monkeypatch, rec)
    assert "Pulumi.week07.yaml" in str(exc.value)
    assert rec.resources == []


def test_program_refuses_stack_not_named_for_a_week(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(pulumi.RunError, match="unknown week"):
        run_program("dev", base(), fake_probe(GPU_READY_HOST), monkeypatch)
