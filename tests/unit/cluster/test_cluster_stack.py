"""The week stack as the runners read it back from `lab render` (real renders, no cluster), and the small pure
helpers the runners use on what the cluster returns."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from ailab.contract import Skip, facts
from workloads.cluster import load
from workloads.cluster.experiments import autoscaling, gitops, qos, scheduling, tenancy
from workloads.cluster.portforward import parse_forward, port_forward
from workloads.cluster.run import weeks_with
from workloads.cluster.stack import StackError, StackView, render, week_of_day

FIX = Path(__file__).with_name("fixtures")
NODES = json.loads((FIX / "nodes.json").read_text())["items"]


@pytest.fixture(scope="module")
def week04(tmp_path_factory: pytest.TempPathFactory) -> StackView:
    return StackView.from_dir(4, render(4, tmp_path_factory.mktemp("week04")))


def test_names_come_from_the_rendered_stack(week04: StackView) -> None:
    assert week04.namespace == "ailab" and week04.port("http") == 8000 and week04.port("metrics") == 8002
    assert week04.deployments == ["triton-canary", "triton-stable"]
    assert week04.prometheus() == ("monitoring", "kube-prometheus-stack-prometheus", 9090)
    assert week04.ingress() == ("istio-ingress", "istio-ingress", 80)
    assert week04.has("mesh") and week04.has("delivery") and not week04.has("tracing")
    assert week04.model == facts.week(4).models[0]
    assert week04.settings("mesh")["weights"] == {"stable": 90, "canary": 10}
    with pytest.raises(StackError, match=r"week 04's stack has no Service 'jaeger' \(it turns on: gpu, serving"):
        week04.one("Service", "jaeger")
    with pytest.raises(StackError, match="installs no 'keda' chart"):
        week04.release("keda")


def test_days_map_to_weeks_and_a_bad_week_fails_with_lab_render_s_message(tmp_path: Path) -> None:
    assert [week_of_day(d) for d in (1, 7, 8, 43, 90)] == [1, 1, 2, 7, 13]
    with pytest.raises(ValueError, match="day 91"):
        week_of_day(91)
    with pytest.raises(RuntimeError, match="lab render week14 failed"):
        render(14, tmp_path / "x")


def test_weeks_with_reads_the_week_facts() -> None:
    assert weeks_with("mesh", "mirror") == "weeks 7"
    assert weeks_with("mesh", "circuitBreaker") == "weeks 7, 13"
    assert weeks_with("no-such-component") == "no week"


def test_pods_are_built_from_the_stack_s_smoke_test_job(week04: StackView) -> None:
    from workloads.cluster import pods

    job = week04.one("Job", "gpu-smoke-test")["spec"]["template"]["spec"]
    p = pods.gpu_pod(week04, "x", 2, ["sleep", "1"])
    c = p["spec"]["containers"][0]
    assert (
        c["image"] == job["containers"][0]["image"] and c["securityContext"] == job["containers"][0]["securityContext"]
    )
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2" and p["spec"]["tolerations"] == job["tolerations"]
    cpu = pods.gpu_pod(week04, "y", 0, ["true"], tolerate=False)
    assert (
        "tolerations" not in cpu["spec"] and "nvidia.com/gpu" not in cpu["spec"]["containers"][0]["resources"]["limits"]
    )


def test_nodeport_address_is_the_first_ready_node() -> None:
    assert load.node_address(NODES) == "172.18.0.2"
    assert load.node_address(NODES[2:] + NODES[1:2]) == "172.18.0.3"  # worker2 is NotReady
    with pytest.raises(LookupError, match="no Ready node"):
        load.node_address(NODES[2:])


def test_infer_body_is_kserve_v2_json() -> None:
    body = json.loads(load.infer_body(np.zeros((2, 1, 28, 28), dtype=np.float32)))
    assert body["inputs"][0]["shape"] == [2, 1, 28, 28] and len(body["inputs"][0]["data"]) == 2 * 784


TOPO = """\
\tGPU0\tGPU1\tNIC0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID
GPU0\t X \tNV18\tSYS\t0-47,96-143\t0\t\tN/A
GPU1\tNV18\t X \tSYS\t48-95,144-191\t1\t\tN/A
NIC0\tSYS\tSYS\t X \t\t\t\t

Legend:
"""


def test_gpu_cpu_affinity_from_nvidia_smi_topo() -> None:
    assert scheduling.gpu_cpu_affinity(TOPO) == {"GPU0": "0-47,96-143", "GPU1": "48-95,144-191"}
    assert scheduling.gpu_cpu_affinity("no table") == {}


def test_small_readers_of_runner_output() -> None:
    assert qos.last_allocated("allocated_mib 64\nallocated_mib 128\nKilled") == 128 and qos.last_allocated("") is None
    assert [n.name for n in tenancy.shared_gpu_nodes(NODES)] == ["ailab-worker"]  # gpu.replicas 2 (time-slicing)
    assert tenancy.fairness(90.0, 100.0) == 0.9 and np.isnan(tenancy.fairness(0.0, 5.0))


def test_the_run_s_own_hpa() -> None:
    p = autoscaling.ScaleParams(cpu_target=50, qps_target=80, max_replicas=6)
    cpu = autoscaling.hpa_manifest("cpu", p, "ailab")
    assert cpu["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 50}
    qps = autoscaling.hpa_manifest("qps", p, "ailab", down_window=60)
    assert qps["spec"]["metrics"][0]["pods"]["metric"]["name"] == p.qps_metric
    assert qps["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 60
    assert qps["spec"]["scaleTargetRef"]["name"] == "triton-stable" and qps["spec"]["maxReplicas"] == 6


class _Res:
    def __init__(self, rows: list[tuple[float, float, str]]) -> None:
        self.timeline, self.spec = rows, {"warmup_s": 1.0}


def test_cold_start_p99_splits_requests_at_the_first_rescale_and_the_last_new_ready_pod() -> None:
    run = autoscaling.Run("stack", t_start=100.0)
    run.steps = [(100.0, 100.0, _Res([(0.5, 10.0, ""), (2.0, 50.0, ""), (3.0, 60.0, "timeout"), (5.0, 12.0, "")]))]
    run.rescales = [autoscaling.scaling.Rescale(102.5, 2, "cpu")]
    run.new_ready = [105.0]
    assert autoscaling.cold_start_p99(run) == {"before": 10.0, "cold start": 50.0, "after": 12.0}


def test_parse_forward_line() -> None:
    assert parse_forward("Forwarding from 127.0.0.1:43567 -> 8000\n") == 43567
    assert parse_forward("Forwarding from [::1]:43567 -> 8000") is None


def fake_kubectl(tmp_path: Path, script: str) -> str:
    exe = tmp_path / "kubectl"
    exe.write_text(f"#!{sys.executable}\n{script}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


def test_port_forward_yields_kubectl_s_port_and_stops_it(tmp_path: Path) -> None:
    """kubectl stands in for itself here (a script printing kubectl's line): no API server to forward to."""
    pidfile = tmp_path / "pid"
    exe = fake_kubectl(
        tmp_path,
        "import os, sys, time\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()) + ' ' + ' '.join(sys.argv[1:]))\n"
        "print('Forwarding from 127.0.0.1:40123 -> 8000', flush=True)\n"
        "print('Forwarding from [::1]:40123 -> 8000', flush=True)\ntime.sleep(60)",
    )
    with port_forward("svc/triton", 8000, "ailab", "/k/config", "kind-ailab", kubectl=exe) as port:
        assert port == 40123
        pid, *args = pidfile.read_text().split(" ")
        assert args == [
            "--kubeconfig",
            "/k/config",
            "--context",
            "kind-ailab",
            "port-forward",
            "-n",
            "ailab",
            "--address",
            "127.0.0.1",
            "svc/triton",
            ":8000",
        ]
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)


def test_port_forward_that_fails_says_why_and_a_missing_kubectl_skips(tmp_path: Path) -> None:
    exe = fake_kubectl(tmp_path, "print('error: services \"triton\" not found'); raise SystemExit(1)")
    with (
        pytest.raises(RuntimeError, match='did not start: error: services "triton" not found'),
        port_forward("svc/triton", 8000, "ailab", kubectl=exe),
    ):
        pass
    with pytest.raises(Skip, match="needs kubectl on PATH"), port_forward("svc/x", 1, "n", kubectl="no-such-kubectl"):
        pass


def test_a_change_to_the_demo_app_is_committed_and_pushed(tmp_path: Path) -> None:
    """A real Git remote (a bare repository) and clone: what the Argo CD runners push."""
    remote, clone = tmp_path / "remote.git", tmp_path / "clone"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "lab",
        "GIT_AUTHOR_EMAIL": "lab@example",
        "GIT_COMMITTER_NAME": "lab",
        "GIT_COMMITTER_EMAIL": "lab@example",
    }

    def git(*a: str, cwd: Path = tmp_path) -> str:
        return subprocess.run(["git", *a], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout

    git("init", "-q", "--bare", "-b", "main", str(remote))
    git("clone", "-q", str(remote), str(clone))
    demo = clone / gitops.DEMO
    demo.mkdir(parents=True)
    src = Path(gitops.__file__).resolve().parents[1] / "gitops_demo" / "deployment.yaml"
    (demo / "deployment.yaml").write_text(src.read_text())
    git("add", "-A", cwd=clone)
    git("commit", "-qm", "demo", cwd=clone)
    git("push", "-q", "origin", "HEAD:main", cwd=clone)
    os.environ.update({k: v for k, v in env.items() if k.startswith("GIT_")})
    try:
        rev = gitops.change(clone, gitops.DEMO, "main", {"image": "docker.io/library/redis:0.0.0-bad"}, "lab: bad")
    finally:
        for k in [k for k in env if k.startswith("GIT_")]:
            os.environ.pop(k, None)
    assert git("rev-parse", "main", cwd=remote).strip() == rev
    pushed = yaml.safe_load(git("show", f"{rev}:{gitops.DEMO}/deployment.yaml", cwd=remote))
    assert pushed["spec"]["template"]["spec"]["containers"][0]["image"] == "docker.io/library/redis:0.0.0-bad"
