"""Run a week stack's real program (pulumi/__main__.py) under Pulumi mocks and record what it registers.

Mocked: the Pulumi engine (no CLI here) and the Kubernetes API. Helm releases register but render nothing
under mocks, so tests assert on their inputs (chart, version, values).
"""

from __future__ import annotations

import asyncio
import json
import runpy
from dataclasses import dataclass, field
from typing import Any

from pulumi_kubernetes.yaml.yaml import _parse_yaml_object

import pulumi
from ailab.contract.paths import REPO_ROOT
from ailab.platform import hostcheck
from ailab.platform import stack as stack_module

MOCK_PASSWORD = "mock-generated-password"
MAIN = REPO_ROOT / "pulumi" / "__main__.py"

GPU_READY_HOST = {
    hostcheck.DOCKER_DAEMON: json.dumps(
        {"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}, "default-runtime": "nvidia"}
    ),
    hostcheck.TOOLKIT_CONFIG: "accept-nvidia-visible-devices-as-volume-mounts = true\n",
}


def fake_probe(files: dict[str, str], binaries: tuple[str, ...] = ("nvidia-ctk",)) -> hostcheck.HostProbe:
    """A host with exactly these files and binaries."""
    return hostcheck.HostProbe(which=lambda name: f"/usr/bin/{name}" if name in binaries else None, read_text=files.get)


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the engine marks a secret value in mocked inputs


def unsecret(value: Any) -> Any:
    """Mocked inputs with Pulumi secrets unwrapped to their plain values."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return unsecret(value["value"])
        return {k: unsecret(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unsecret(v) for v in value]
    return value


@dataclass
class Registered:
    """One resource the program registered: Pulumi type, name, inputs (camelCase, as the engine sees them)."""

    typ: str
    name: str
    inputs: dict[str, Any]
    raw: dict[str, Any]  # with secrets still wrapped


@dataclass
class Recorder(pulumi.runtime.Mocks):
    resources: list[Registered] = field(default_factory=list)
    # (kind, name, names of the resources it depends_on) for every manifest the components register
    depends: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.resources.append(Registered(args.typ, args.name, unsecret(dict(args.inputs)), dict(args.inputs)))
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = MOCK_PASSWORD  # the provider would generate it
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str) -> dict[str, Any]:
        """Inputs of the resource of this type whose metadata.name (or resource name) is `name`."""
        found = [r.inputs for r in self.of_type(typ) if (r.inputs.get("metadata") or {}).get("name", r.name) == name]
        assert len(found) == 1, f"{typ} {name}: {len(found)} registered"
        return found[0]

    def release(self, key: str) -> dict[str, Any]:
        found = [r.inputs for r in self.of_type("kubernetes:helm.sh/v3:Release") if r.name == key]
        assert len(found) == 1, f"release {key}: {len(found)} registered"
        return found[0]

    def kinds(self) -> set[str]:
        return {r.typ for r in self.resources}


def run_program(
    stack: str, config: dict[str, Any], probe: hostcheck.HostProbe, monkeypatch: Any, rec: Recorder | None = None
) -> Recorder:
    """Run pulumi/__main__.py for `stack` with `config` (stack-file keys) and return what it registered."""
    rec = rec if rec is not None else Recorder()
    # Pulumi's mocks need a current event loop; an earlier test's asyncio.run() leaves the main thread without one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(rec, project="ailab", stack=stack, preview=False)
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    monkeypatch.setattr(hostcheck, "default_probe", lambda: probe)

    def spy(obj: dict, opts: pulumi.ResourceOptions, transformations: list, prefix: str) -> list:
        def record(o: dict, o_opts: pulumi.ResourceOptions) -> None:
            deps = [d._name for d in (o_opts.depends_on or [])]  # type: ignore[union-attr]
            rec.depends.append((o["kind"], o["metadata"]["name"], deps))

        return _parse_yaml_object(obj, opts, [*transformations, record], prefix)

    monkeypatch.setattr(stack_module, "_parse_yaml_object", spy)

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(MAIN), run_name="__main__")

    program()
    return rec


def manifests(plans: list) -> list[dict[str, Any]]:
    """Every manifest of a week's plans (ailab.platform.model.Plan)."""
    return [m for p in plans for m in p.manifests]
