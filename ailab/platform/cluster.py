"""Cluster targets: kind (GPUs passed through like nvkind), k3s (hosts from the Ansible inventory) and an
existing cluster; plus the namespaces every week creates first."""

from __future__ import annotations

from typing import Any

import yaml

from ailab.platform import podsecurity
from ailab.platform.config import ConfigError, StackSettings
from ailab.platform.hostcheck import HostProbe
from ailab.platform.model import Plan
from ailab.platform.versions import IMAGES

POD_SECURITY_REASON = "ailab.dev/pod-security-reason"  # why a namespace enforces less than restricted
DEFAULT_K3S_KUBECONFIG = ".lab/k3s/kubeconfig.yaml"  # where the k3s role fetches the server's kubeconfig

# Inside each kind worker, what nvkind does: install the toolkit and make it containerd's default runtime.
NODE_SETUP = r"""set -eu
for node in $(kind get nodes --name {name} | grep worker); do
  docker exec "$node" bash -c '
    umount -R /proc/driver/nvidia 2>/dev/null || true
    apt-get update -qq && apt-get install -y -qq gpg curl >/dev/null
    curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey \
      | gpg --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
    curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list \
      | sed "s#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g" \
      > /etc/apt/sources.list.d/nvidia-container-toolkit.list
    apt-get update -qq && apt-get install -y -qq nvidia-container-toolkit >/dev/null
    nvidia-ctk runtime configure --runtime=containerd --set-as-default --config-source=command
    nvidia-ctk config --set nvidia-container-cli.no-cgroups --in-place
    systemctl restart containerd'
done
"""


def kind_config(s: StackSettings) -> dict[str, Any]:
    """kind Cluster config; GPU workers get /dev/null mounted as /var/run/nvidia-container-devices/all (nvkind)."""
    worker: dict[str, Any] = {"role": "worker", "image": IMAGES["kind-node"]}
    if s.cluster.gpu:
        worker["extraMounts"] = [{"hostPath": "/dev/null", "containerPath": "/var/run/nvidia-container-devices/all"}]
        worker["labels"] = {"nvidia.com/gpu.present": "true"}
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": s.cluster.name,
        "nodes": [{"role": "control-plane", "image": IMAGES["kind-node"]}]
        + [dict(worker) for _ in range(s.cluster.workers)],
    }


def k3s_kubeconfig(s: StackSettings, source: str, probe: HostProbe) -> str:
    """The k3s server's kubeconfig (fetched by the k3s role); ConfigError naming the key when absent."""
    if probe.read_text(s.cluster.inventory) is None:
        raise ConfigError(f"{source}: ailab:cluster.inventory = {s.cluster.inventory!r}: no such Ansible inventory")
    path = s.cluster.kubeconfig or DEFAULT_K3S_KUBECONFIG
    text = probe.read_text(path)
    if text is None:
        raise ConfigError(
            f"{source}: ailab:cluster.kubeconfig = {path!r}: not found; run `ansible-playbook -i {s.cluster.inventory} "
            "ansible/gpu_hosts.yml` first (the k3s role fetches it)"
        )
    return text


def namespaces(s: StackSettings, ns: str, used: set[str]) -> Plan:
    """Namespaces of every manifest and release, labelled with the Pod Security level they enforce.

    Restricted, unless a system pod of podsecurity.HOST_ACCESS lives there (the annotation says which and why);
    the lab's own namespace also gets Istio sidecar injection when the mesh is on. kube-system is the cluster's
    own (exempt from Pod Security admission), never created or relabelled here."""
    p = Plan("base", "ailab:cluster:Namespaces")
    for name in sorted(used | {ns}):
        if name == "kube-system":
            continue
        labels = {"app.kubernetes.io/part-of": "ailab", **podsecurity.namespace_labels(name)}
        if name == ns and s.mesh.enabled:
            labels["istio-injection"] = "enabled"
        metadata: dict[str, Any] = {"name": name, "labels": labels}
        reason = podsecurity.namespace_reason(name)
        if reason:
            metadata["annotations"] = {POD_SECURITY_REASON: reason}
        p.manifests.append({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
    return p


def kind_config_yaml(s: StackSettings) -> str:
    return yaml.safe_dump(kind_config(s), sort_keys=False)
