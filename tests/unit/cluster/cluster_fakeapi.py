"""A fake Kubernetes API server for the cluster tests: the only thing they fake, because no API server can run in
this workplace. It keeps objects in a dict and answers get/list/apply/patch/delete as the API server does for
these calls (server-side apply creating or updating, JSON merge patch, a namespace's deletion taking its objects),
can replay recorded object states for a name (`script`), can be told to fail a call, and records every call."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from workloads.cluster.session import Ref


def merge(obj: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return patch
    out = dict(obj) if isinstance(obj, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


class FakeApi:
    def __init__(self, objects: list[dict] | None = None, fail: dict[str, Exception] | None = None) -> None:
        self.objects: dict[Ref, dict] = {}
        self.scripts: dict[tuple[str, str], Iterator[dict]] = {}  # (kind, name) -> recorded states, replayed by get
        self.logs_by_pod: dict[str, str] = {}
        self.applied: list[dict] = []  # every manifest applied, as sent
        self.reject: dict[str, Exception] = {}  # object name -> what the API server answers to its apply
        self.listed: dict[str, list[dict]] = {}  # kind -> recorded list answer (Nodes, Events)
        self.calls: list[tuple[str, str]] = []
        self.fail = fail or {}
        self.version = 0
        for o in objects or []:
            self._store(o)

    def _store(self, o: dict) -> dict:
        self.version += 1
        o = copy.deepcopy(o)
        o["metadata"]["resourceVersion"] = str(self.version)
        self.objects[Ref.of(o)] = o
        return copy.deepcopy(o)

    def _call(self, op: str, what: str) -> None:
        self.calls.append((op, what))
        if f"{op} {what}" in self.fail:
            raise self.fail[f"{op} {what}"]

    def apply(self, manifest: dict) -> dict:
        ref = Ref.of(manifest)
        self._call("apply", str(ref))
        self.applied.append(copy.deepcopy(manifest))
        if manifest["metadata"]["name"] in self.reject:
            raise self.reject[manifest["metadata"]["name"]]
        cur = self.objects.get(ref)
        if cur is None:  # what the API server fills in on create
            self.version += 1
            cur = {"metadata": {"uid": f"uid-{self.version}", "creationTimestamp": "2026-12-02T11:00:00Z"}}
        return self._store(merge(cur, manifest))

    def script(self, kind: str, name: str, states: list[dict]) -> None:
        """After `name` is created, each get returns the next recorded state (the last one repeats)."""

        def replay() -> Iterator[dict]:
            yield from states
            while True:
                yield states[-1]

        self.scripts[(kind, name)] = replay()

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        ref = Ref(api_version, kind, name, namespace)
        if ref in self.objects and (kind, name) in self.scripts:
            state = next(self.scripts[(kind, name)])
            self.objects[ref] = merge(self.objects[ref], state)
        o = self.objects.get(ref)
        return copy.deepcopy(o) if o else None

    def list(self, api_version: str, kind: str, namespace: str | None = None, selector: str = "") -> list[dict]:
        if kind in self.listed:
            return copy.deepcopy(self.listed[kind])
        return [
            copy.deepcopy(o)
            for r, o in self.objects.items()
            if r.kind == kind and (namespace is None or r.namespace == namespace)
        ]

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, body: dict) -> dict:
        ref = Ref(api_version, kind, name, namespace)
        self._call("patch", str(ref))
        return self._store(merge(self.objects[ref], body))

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        ref = Ref(api_version, kind, name, namespace)
        self._call("delete", str(ref))
        if ref.kind == "Namespace":  # namespace deletion takes its objects with it
            for r in [r for r in self.objects if r.namespace == name]:
                del self.objects[r]
        return self.objects.pop(ref, None) is not None

    def has_kind(self, api_version: str, kind: str) -> bool:
        return kind != "VirtualService"

    def logs(self, name: str, namespace: str, container: str | None = None, tail: int = 200) -> str:
        return self.logs_by_pod.get(name, "")

    def evict(self, name: str, namespace: str) -> tuple[bool, str]:
        return True, ""

    def raw(self, path: str) -> dict:
        return {}
