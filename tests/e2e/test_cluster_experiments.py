"""End to end: a chosen set of the cluster experiments run by `lab run` on a real cluster with a week stack up.

Needs a reachable cluster (KUBECONFIG / ~/.kube/config, or AILAB_E2E_KUBECONFIG / AILAB_E2E_CONTEXT) with the
week stack AILAB_E2E_WEEK (default 1) deployed: `pulumi up -s week01` on kind with nvkind GPUs, as
docs/cluster.md and docs/cluster-experiments.md describe; kubectl on PATH (port-forwards). Nothing of this exists
on the development machines or in CI, so it skips there with the reason.

`make test-e2e` runs it; AILAB_E2E_EXPERIMENTS picks the set (comma-separated ids). Results go to a temporary
results folder (the committed reports/results/ stay as they are); every selected experiment must record `ok`, and
no namespace the runs created may be left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ailab.contract import Skip
from ailab.contract.paths import REPO_ROOT

pytestmark = pytest.mark.cluster

# Runnable on week 1's stack (GPU pods, QoS/OOM, exposure, PDB, chaos) plus the StatefulSet days, which need only a
# default StorageClass (kind ships local-path).
DEFAULT = "d02.e1,d02.e2,d02.e3,d02.e4,d02.e5,d21.e3,d41.e2,d41.e3,d41.e4,d41.e5"
SELECTED = [e for e in os.environ.get("AILAB_E2E_EXPERIMENTS", DEFAULT).split(",") if e]
WEEK = int(os.environ.get("AILAB_E2E_WEEK", "1"))
KUBECONFIG = os.environ.get("AILAB_E2E_KUBECONFIG")
CONTEXT = os.environ.get("AILAB_E2E_CONTEXT")


@pytest.fixture(scope="module")
def cluster() -> object:
    from workloads.cluster.kube import connect

    try:
        found = connect(KUBECONFIG, CONTEXT)
    except Skip as exc:
        pytest.skip(str(exc))
    if found.api.get("v1", "Namespace", "ailab") is None:
        pytest.skip(f"the cluster has no namespace 'ailab': deploy the week stack first (pulumi up -s week{WEEK:02d})")
    return found


def managed_namespaces(found: object) -> list[str]:
    return [
        n["metadata"]["name"] for n in found.api.list("v1", "Namespace", None, "app.kubernetes.io/managed-by=ailab-lab")
    ]


def test_selected_experiments_record_ok_and_leave_nothing_behind(cluster: object, tmp_path: Path) -> None:
    before = set(managed_namespaces(cluster))
    sets = (
        [f"week={WEEK}"]
        + ([f"kubeconfig={KUBECONFIG}"] if KUBECONFIG else [])
        + ([f"kube_context={CONTEXT}"] if CONTEXT else [])
    )
    env = {**os.environ, "AILAB_RESULTS_DIR": str(tmp_path / "results"), "AILAB_REPORTS_DIR": str(tmp_path / "reports")}
    cmd = [str(REPO_ROOT / ".venv/bin/lab"), "run", ",".join(SELECTED), "--quick", "--no-report"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=3 * 3600, check=False)
    records = {}
    for f in (tmp_path / "results").rglob("*.json"):
        rec = json.loads(f.read_text())
        records[rec["id"]] = rec
    problems = [
        f"{e}: {records[e]['status']}: {records[e].get('reason', '')}" if e in records else f"{e}: no result"
        for e in SELECTED
        if e not in records or records[e]["status"] != "ok"
    ]
    assert not problems, "\n".join(problems) + f"\n--- lab run output ---\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
    for e in SELECTED:
        assert records[e]["tables"] and all(t["rows"] for t in records[e]["tables"]), f"{e}: empty tables"
    left = set(managed_namespaces(cluster)) - before
    assert not left, f"namespaces left behind by the runs: {sorted(left)}"
