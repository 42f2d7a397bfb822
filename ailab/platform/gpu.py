"""GPU component: NVIDIA device plugin (MIG strategy, time-slicing, MPS, per-node configs) with GFD/NFD,
or the GPU Operator (device-plugin config, MIG manager layouts, CDI), plus a GPU smoke-test Job."""

from __future__ import annotations

from typing import Any

import yaml

from ailab.platform.config import DeviceConfig, SharingMethod, StackSettings
from ailab.platform.model import GPU_TOLERATIONS, HelmRelease, NodeLabel, Plan, PlanInputs, meta, resources
from ailab.platform.podsecurity import LAB_UID, container_context, restricted_pod
from ailab.platform.versions import IMAGES

PLUGIN_NS = "nvidia"
OPERATOR_NS = "gpu-operator"
DEVICE_PLUGIN_CM = "ailab-device-plugin-config"
MIG_PARTED_CM = "ailab-mig-parted-config"
SMOKE_JOB = "gpu-smoke-test"


def _sharing(method: SharingMethod) -> dict[str, Any]:
    return {
        "renameByDefault": method.rename_by_default,
        "failRequestsGreaterThanOne": method.fail_requests_greater_than_one,
        "resources": [{"name": r.name, "replicas": r.replicas} for r in method.shared()],
    }


def device_plugin_config(cfg: DeviceConfig) -> dict[str, Any]:
    """The k8s-device-plugin config file (version v1) for one MIG strategy / sharing choice."""
    doc: dict[str, Any] = {
        "version": "v1",
        "flags": {"migStrategy": cfg.mig_strategy, "failOnInitError": True},
    }
    if cfg.sharing and cfg.sharing.time_slicing:
        doc["sharing"] = {"timeSlicing": _sharing(cfg.sharing.time_slicing)}
    elif cfg.sharing and cfg.sharing.mps:
        doc["sharing"] = {"mps": _sharing(cfg.sharing.mps)}
    return doc


def config_files(s: StackSettings) -> dict[str, str]:
    """Named device-plugin config files: `default` plus one per node config, as YAML text."""
    files = {"default": device_plugin_config(s.gpu)}
    files.update({name: device_plugin_config(c) for name, c in s.gpu.node_configs.items()})
    return {name: yaml.safe_dump(doc, sort_keys=False) for name, doc in files.items()}


def mig_parted_config(s: StackSettings) -> dict[str, Any]:
    """mig-parted config (the MIG manager's `config.yaml`): one entry per layout plus all-disabled."""
    mig = s.gpu.mig
    configs: dict[str, Any] = {"all-disabled": [{"devices": "all", "mig-enabled": False}]}
    for name, profiles in (mig.layouts if mig else {}).items():
        configs[name] = [{"devices": "all", "mig-enabled": True, "mig-devices": dict(profiles)}]
    return {"version": "v1", "mig-configs": configs}


def runtime_class(s: StackSettings) -> str | None:
    """RuntimeClass GPU pods name: k3s agents keep runc as default and register `nvidia` (the k3s role)."""
    return "nvidia" if s.cluster.target == "k3s" else None


def with_runtime_class(s: StackSettings, pod: dict[str, Any]) -> dict[str, Any]:
    rc = runtime_class(s)
    return {**pod, "runtimeClassName": rc} if rc else pod


def device_plugin_release(s: StackSettings) -> HelmRelease:
    """nvidia-device-plugin chart with the named config files, GFD and NFD."""
    values: dict[str, Any] = {"runtimeClassName": runtime_class(s)} if runtime_class(s) else {}
    return HelmRelease(
        "nvidia-device-plugin",
        PLUGIN_NS,
        values
        | {
            "config": {"map": config_files(s), "default": "default"},
            "gfd": {"enabled": s.gpu.gfd},
            "nfd": {"enabled": s.gpu.gfd},
            "tolerations": GPU_TOLERATIONS,
        },
    )


def operator_release(s: StackSettings) -> HelmRelease:
    """gpu-operator chart; driver and toolkit stay off where the host (kind: nvkind, k3s: Ansible) provides them."""
    host_provides = s.cluster.target in ("kind", "k3s")
    mig = s.gpu.mig
    return HelmRelease(
        "gpu-operator",
        OPERATOR_NS,
        {
            "driver": {"enabled": not host_provides},
            "toolkit": {"enabled": not host_provides},
            "cdi": {"enabled": True, "default": False},
            "devicePlugin": {"config": {"name": DEVICE_PLUGIN_CM, "default": "default"}},
            "mig": {"strategy": "mixed" if s.gpu.mig_strategy == "mixed" else "single"},
            "migManager": {"enabled": mig is not None, "config": {"name": MIG_PARTED_CM, "default": "all-disabled"}},
            "gfd": {"enabled": s.gpu.gfd},
            "nfd": {"enabled": s.gpu.gfd},
            "dcgmExporter": {
                "enabled": s.monitoring.enabled and s.monitoring.dcgm,
                "serviceMonitor": {"enabled": s.monitoring.enabled},
            },
        },
    )


def smoke_job(s: StackSettings, namespace: str) -> dict[str, Any]:
    """A Job whose pod requests one GPU (requests = limits) and prints `nvidia-smi -L`."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(SMOKE_JOB, namespace, {"app": SMOKE_JOB}),
        "spec": {
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": {"app": SMOKE_JOB}},
                "spec": with_runtime_class(
                    s,
                    # the CUDA base image defaults to root, but nvidia-smi needs only the device nodes the container
                    # toolkit injects (world-usable): it runs as the lab's UID, no token (no API calls)
                    restricted_pod(
                        {
                            "restartPolicy": "Never",
                            "tolerations": GPU_TOLERATIONS,
                            "containers": [
                                {
                                    "name": "nvidia-smi",
                                    "image": IMAGES["cuda-base"],
                                    "command": ["nvidia-smi", "-L"],
                                    "resources": resources("100m", "128Mi", gpu=1, gpu_resource=s.gpu.gpu_resource()),
                                    "securityContext": container_context(LAB_UID),
                                }
                            ],
                        }
                    ),
                ),
            },
        },
    }


def plan(s: StackSettings, at: PlanInputs) -> Plan:
    """GPU component for the stack's settings."""
    namespace = at.namespace
    p = Plan("gpu", "ailab:gpu:Gpu")
    if s.gpu.mode == "device-plugin":
        p.releases.append(device_plugin_release(s))
    else:
        p.manifests.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": meta(DEVICE_PLUGIN_CM, OPERATOR_NS),
                "data": config_files(s),
            }
        )
        if s.gpu.mig:
            p.manifests.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": meta(MIG_PARTED_CM, OPERATOR_NS),
                    "data": {"config.yaml": yaml.safe_dump(mig_parted_config(s), sort_keys=False)},
                }
            )
        p.releases.append(operator_release(s))
    for name, cfg in s.gpu.node_configs.items():
        p.node_labels += [NodeLabel(n, {"nvidia.com/device-plugin.config": name}) for n in cfg.nodes]
    if s.gpu.mig:
        p.node_labels += [NodeLabel(n, {"nvidia.com/mig.config": layout}) for n, layout in s.gpu.mig.nodes.items()]
    if s.gpu.smoke_test:
        p.manifests.append(smoke_job(s, namespace))
    p.outputs["gpuMode"] = s.gpu.mode
    return p
