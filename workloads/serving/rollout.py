"""d05.e5's drill (the runner: workloads/serving/experiments/canary.py): explicit model control: canary rollout
with a client-side traffic split, a health gate, and rollbacks.

One model `clf` with four versions on disk: 1 (the Day-3 MLP), 2 (the same network with perturbed weights: valid,
detectably different), 3 (NaN weights: loads, answers NaN) and 4 (a corrupt file: its load fails). tritonserver
starts with --model-control-mode=explicit and nothing loaded; every change is a repository-API load with a config
override whose version_policy names the versions to serve, made before-break: traffic moves first, then the
versions it left are dropped, so the serving version should see no failed request at any switch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from google.protobuf import json_format
from onnx import numpy_helper

from ailab.contract import Context, Output, Table
from workloads.serving import harness
from workloads.serving.canary import Gate, Traffic, gate
from workloads.serving.client import Client
from workloads.serving.common import host_note
from workloads.serving.modelspec import to_config
from workloads.serving.repository import VersionPolicy, mlp_spec

if TYPE_CHECKING:
    from workloads.serving.experiments.canary import CanaryParams

MODEL = "clf"
GAP = "(between phases: warm-up, probes, counter reads)"
KINDS = {1: "Day-3 MLP", 2: "perturbed weights", 3: "NaN weights", 4: "corrupt file"}


def write_versions(model_dir: Path, seed: int = 2) -> None:
    """Give versions 2-4 their own files (the repository builder copies version 1's network to each)."""
    base = onnx.load(str(model_dir / "1" / "model.onnx"))
    rng = np.random.default_rng(seed)
    v2, v3 = onnx.ModelProto(), onnx.ModelProto()
    v2.CopyFrom(base)
    v3.CopyFrom(base)
    for init in v2.graph.initializer:  # 10 % of each tensor's spread: same classes for ~99 % of the digits
        a = numpy_helper.to_array(init).copy()
        a += (rng.standard_normal(a.shape) * 0.1 * a.std()).astype(a.dtype)
        init.CopyFrom(numpy_helper.from_array(a, init.name))
    for init in v3.graph.initializer:
        if init.name.endswith("weight") and init.name.startswith("fc3"):
            a = np.full(numpy_helper.to_array(init).shape, np.nan, dtype=np.float32)
            init.CopyFrom(numpy_helper.from_array(a, init.name))
    onnx.save(v2, str(model_dir / "2" / "model.onnx"))
    onnx.save(v3, str(model_dir / "3" / "model.onnx"))
    (model_dir / "4" / "model.onnx").write_bytes(b"not an onnx file\n")


@dataclass
class Switch:
    name: str
    versions: tuple[int, ...]  # the version_policy loaded
    load_s: float = 0.0  # load call until it returned
    settle_s: float = 0.0  # load call until exactly `versions` were READY (the others unloaded)
    error: str = ""
    ready_after: tuple[int, ...] = ()
    log_loaded: tuple[int, ...] = ()  # versions tritonserver's log says it (re)loaded during the switch
    log_unloaded: tuple[int, ...] = ()


@dataclass
class Controller:
    """Loads version sets through the repository API and reads what the server reports."""

    served: harness.Served
    spec: Any
    switches: list[Switch] = field(default_factory=list)

    def config(self, versions: tuple[int, ...]) -> str:
        spec = dataclasses.replace(self.spec, version_policy=VersionPolicy("specific", versions=versions))
        return json_format.MessageToJson(to_config(spec), preserving_proto_field_name=True)

    def ready(self) -> tuple[int, ...]:
        with Client(self.served.address("grpc"), "grpc", timeout_s=30) as c:
            idx = c.repository_index()
        return tuple(sorted(int(m["version"]) for m in idx if m.get("state") == "READY" and "version" in m))

    def states(self) -> dict[int, str]:
        with Client(self.served.address("grpc"), "grpc", timeout_s=30) as c:
            return {int(m["version"]): m.get("state", "") for m in c.repository_index() if "version" in m}

    def load(self, name: str, versions: tuple[int, ...]) -> Switch:
        """POST v2/repository/models/clf/load with the config override; wait until exactly `versions` serve."""
        sw = Switch(name, versions)
        log = Path(self.served.platform.record("triton").log)
        offset = log.stat().st_size
        t0 = time.perf_counter()
        with Client(self.served.address("grpc"), "grpc", timeout_s=120) as c:
            try:
                c.c.load_model(MODEL, config=self.config(versions))
            except Exception as exc:  # noqa: BLE001 - a failed load is an outcome the gate acts on
                sw.error = re.sub(r"\s*Load model from .*", "", str(exc).split("\n")[0])[:200]  # no host paths
        sw.load_s = time.perf_counter() - t0
        while time.perf_counter() - t0 < 60:  # unloads finish after the load call returns (UNLOADING)
            st = self.states()
            if not any(s == "UNLOADING" for s in st.values()):
                break
            time.sleep(0.02)
        sw.settle_s = time.perf_counter() - t0
        sw.ready_after = self.ready()
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
        sw.log_loaded = tuple(int(v) for v in re.findall(rf'"loading: {MODEL}:(\d+)"', text))
        sw.log_unloaded = tuple(int(v) for v in re.findall(rf"unloaded '{MODEL}' version (\d+)", text))
        self.switches.append(sw)
        return sw

    def server_counts(self) -> dict[int, int]:
        """Successful inferences per loaded version, from the statistics extension."""
        with Client(self.served.address("grpc"), "grpc", timeout_s=30) as c:
            st = c.c.get_inference_statistics(MODEL, as_json=True)
        return {
            int(m["version"]): int(m["inference_stats"]["success"].get("count", 0)) for m in st.get("model_stats", [])
        }

    def warm(self, version: int, x: np.ndarray, n: int) -> None:
        """n requests to a freshly loaded version before it takes traffic (its first ones are slow; see d07.e2)."""
        with Client(self.served.address("grpc"), "grpc", timeout_s=30) as c:
            for _ in range(n):
                c.infer(MODEL, {"input": x}, version=str(version))

    def probe(self, version: int, x: np.ndarray) -> np.ndarray | None:
        with Client(self.served.address("grpc"), "grpc", timeout_s=30) as c:
            try:
                return c.infer(MODEL, {"input": x}, version=str(version))["logits"]
            except Exception:  # noqa: BLE001 - an unservable version fails the output check
                return None


async def rollout(s: CanaryParams, ctl: Controller, x: np.ndarray, traffic: Traffic) -> dict[str, Any]:
    """The whole drill, while `traffic` keeps sending; returns the gates' verdicts and the server's per-phase counts."""
    gates: list[Gate] = []
    server: dict[str, dict[int, int]] = {}

    async def switch(name: str, versions: tuple[int, ...]) -> Switch:
        traffic.phase = f"switch: {name}"
        sw = await asyncio.to_thread(ctl.load, name, versions)
        traffic.phase = GAP
        return sw

    async def steady(name: str) -> None:
        # traffic is held (nothing in flight) while the counters are read, so they bracket the phase exactly
        await traffic.quiesce()
        c0 = await asyncio.to_thread(ctl.server_counts)
        traffic.phase = name
        traffic.resume()
        await asyncio.sleep(s.phase_s)
        await traffic.quiesce()
        c1 = await asyncio.to_thread(ctl.server_counts)
        traffic.phase = GAP
        traffic.resume()
        server[name] = {v: c1[v] - c0.get(v, 0) for v in c1}

    async def canary(version: int, stable: int) -> Gate:
        sw = await switch(f"add canary v{version}", (stable, version))
        if sw.error:
            g = Gate(version, stable, "rollback", [f"load failed: {sw.error}"], load_failed=True)
        else:
            await asyncio.to_thread(ctl.warm, version, x[:1], s.warmup_requests)  # no cold first requests in p99
            traffic.weights = {stable: s.split[0], version: s.split[1]}
            phase = f"canary v{version} {s.split[0]}/{s.split[1]}"
            await steady(phase)
            ref = await asyncio.to_thread(ctl.probe, stable, x)
            out = await asyncio.to_thread(ctl.probe, version, x)
            g = gate(s, traffic.stats(phase, stable), traffic.stats(phase, version), ref, out, version, stable)
        gates.append(g)
        traffic.weights = {g.canary if g.decision == "promote" else stable: 100}
        if g.decision == "promote":
            await asyncio.sleep(0.2)  # in-flight requests to the old version finish before it is dropped
            await switch(f"promote v{version}", (version,))
        elif not g.load_failed:
            await switch(f"roll back v{version}", (stable,))  # unloads the canary; stable keeps serving
        return g

    await switch(f"load v{s.stable}", (s.stable,))
    await asyncio.to_thread(ctl.warm, s.stable, x[:1], s.warmup_requests)
    traffic.weights = {s.stable: 100}
    traffic.started.set()
    await steady(f"v{s.stable} serving")
    current = s.stable
    g = await canary(s.canary, current)
    if g.decision == "promote":
        current = s.canary
        await steady(f"v{current} serving")
    for bad in s.bad:
        await canary(bad, current)
    if current != s.stable:  # release rollback: the previous release back, before-break as well
        await switch(f"reload v{s.stable}", (current, s.stable))
        await asyncio.to_thread(ctl.warm, s.stable, x[:1], s.warmup_requests)
        traffic.weights = {s.stable: 100}
        await asyncio.sleep(0.2)
        await switch(f"release rollback to v{s.stable}", (s.stable,))
    await steady(f"v{s.stable} serving (final)")
    traffic.stop.set()
    return {"gates": gates, "server": server}


def drill(ctx: Context, s: CanaryParams) -> Output:
    """Explicit model control: load v1, canary v2 with a traffic split and gate, bad versions rolled back."""
    at_start = host_note()
    spec = mlp_spec(MODEL, versions=(1, 2, 3, 4), version_policy=VersionPolicy("specific", versions=(s.stable,)))
    from workloads.models.mlp import sample_inputs

    x = sample_inputs(s.probe_size)[0]
    with harness.serve(ctx, [spec], control_mode="explicit", load_models=[], warm_requests=0) as srv:
        write_versions(srv.repo / MODEL)
        ctl = Controller(srv, spec)
        traffic = Traffic(s, srv.address("grpc"), MODEL, x[:1])

        async def main() -> dict[str, Any]:
            sender = asyncio.create_task(traffic.run())
            try:
                return await rollout(s, ctl, x, traffic)
            finally:
                traffic.stop.set()
                await sender

        res = asyncio.run(main())
        final = ctl.states()
    return report(s, ctl, traffic, res, final, at_start)


def report(
    s: CanaryParams,
    ctl: Controller,
    traffic: Traffic,
    res: dict[str, Any],
    final: dict[int, str],
    at_start: str,
) -> Output:
    """The drill's tables and notes; `at_start` is the host note taken before anything started."""
    phases = Table.of(
        "phases",
        [
            ("phase", ""),
            ("version", ""),
            ("requests", ""),
            ("failed", ""),
            ("bad outputs", ""),
            ("p50", "ms"),
            ("p99", "ms"),
            ("served by (response model_version)", ""),
            ("server count (statistics)", ""),
        ],
        caption=f"gRPC closed loop, concurrency {s.concurrency}, client-side split by model_version; "
        "'bad outputs' = responses with a NaN/Inf or a wrong shape; server count = the statistics extension's "
        "success count of that version over the steady phase, read with no request in flight ('-' over a switch)",
    )
    for phase in traffic.phase_order():
        srv = res["server"].get(phase)
        for v in sorted(traffic.versions_in(phase)):
            st = traffic.stats(phase, v)
            served = ", ".join(f"v{k} {n}" for k, n in sorted(st.served.items())) or "-"
            phases.add(
                phase,
                v,
                st.n,
                st.failed,
                st.bad_outputs,
                round(st.pct(50), 3),
                round(st.pct(99), 3),
                served,
                srv.get(v, "-") if srv is not None else "-",
            )
    sw = Table.of(
        "switches",
        [
            ("switch", ""),
            ("version_policy loaded", ""),
            ("load call", "s"),
            ("until settled", "s"),
            ("requests during", ""),
            ("failed during", ""),
            ("failed on serving version", ""),
            ("READY after", ""),
            ("log: loaded / unloaded", ""),
            ("load error", ""),
        ],
        caption="each switch = POST v2/repository/models/clf/load with a config override (version_policy specific); "
        "'settled' = no version UNLOADING any more",
    )
    for x in ctl.switches:
        phase = f"switch: {x.name}"
        all_v = traffic.versions_in(phase)
        n = sum(traffic.stats(phase, v).n for v in all_v)
        failed = sum(traffic.stats(phase, v).failed for v in all_v)
        serving = traffic.serving_at(phase)
        sw.add(
            x.name,
            str(list(x.versions)),
            round(x.load_s, 3),
            round(x.settle_s, 3),
            n,
            failed,
            sum(traffic.stats(phase, v).failed for v in serving),
            str(list(x.ready_after)),
            f"{list(x.log_loaded)} / {list(x.log_unloaded)}",
            x.error or "-",
        )
    gt = Table.of(
        "gates",
        [
            ("canary", ""),
            ("stable", ""),
            ("canary error rate", "%"),
            ("canary p99", "ms"),
            ("p99 limit", "ms"),
            ("output check", ""),
            ("decision", ""),
            ("why", ""),
        ],
        caption=f"gate: error rate <= {100 * s.max_error_rate:g} %, p99 <= {s.max_p99_ratio:g} x stable p99 + "
        f"{s.p99_slack_ms:g} ms, every output finite with shape [n, 10], top-1 agreement with stable on "
        f"{s.probe_size} digits >= {100 * s.min_agreement:g} %",
    )
    for g in res["gates"]:
        gt.add(
            f"v{g.canary} ({KINDS[g.canary]})",
            f"v{g.stable}",
            round(100 * g.error_rate, 3),
            round(g.p99_ms, 3),
            round(g.p99_limit_ms, 3),
            g.output_check,
            g.decision,
            "; ".join(g.reasons) or "all checks passed",
        )
    ready = sorted(v for v, st in final.items() if st == "READY")
    notes = [
        at_start,
        f"Final state (repository index): {', '.join(f'v{v} {st}' for v, st in sorted(final.items()))}; "
        f"READY: {ready}.",
        "Versions are chosen per request by the client (weighted random, seed "
        f"{s.seed}); every response's model_version is checked against the version asked for.",
        "Triton's unload API takes the whole model, so one version is dropped by loading a config override whose "
        "version_policy leaves it out; a load that fails (v4) leaves the versions already loaded serving.",
        "A config override is a new model config: tritonserver's log ('log: loaded') shows it re-creating versions "
        "it keeps on some switches and swapping them in once ready; 'failed on serving version' shows whether the "
        "swap was seamless for the traffic.",
        "The NaN version (v3) passes the error-rate and latency checks: only the output check catches it.",
    ]
    return Output(tables=[phases, sw, gt], notes=notes)
