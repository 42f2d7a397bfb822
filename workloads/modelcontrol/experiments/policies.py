"""Two versions of one model in one repository under each version policy (d34.e1): which versions the server loads,
which one answers a request that names none, what a request for each version gets, how different their outputs
are, and what the server and its backend stubs hold in memory. Explicit control: each policy is a load with a
config override, checked against the versions on disk before the server starts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.serving.experiments import Int

MODEL = "clf"
PolicyName = Literal["latest 1", "latest 2", "specific 1", "specific 2", "specific 1,2", "all"]


class PolicyParams(Params):
    policies: Annotated[list[PolicyName], Field(min_length=1)] = Field(
        default=["latest 1", "latest 2", "specific 1", "specific 2", "all"], description="version policies, in order"
    )
    probe_size: Annotated[Int, Field(ge=1, le=1024)] = Field(default=256, description="digits compared v1 vs v2")


def policy(name: str):  # -> VersionPolicy
    from workloads.serving.modelspec import VersionPolicy

    kind, _, arg = name.partition(" ")
    if kind == "latest":
        return VersionPolicy("latest", num_versions=int(arg))
    if kind == "specific":
        return VersionPolicy("specific", versions=tuple(int(v) for v in arg.split(",")))
    return VersionPolicy("all")


def version_policies(ctx: Context, p: PolicyParams) -> Output:
    """Each policy loaded in turn over two versions on disk (v2 = v1's network with perturbed weights)."""
    import time

    import numpy as np
    import tritonclient.grpc as grpcclient

    from workloads.modelcontrol import control
    from workloads.models.mlp import sample_inputs
    from workloads.serving import harness
    from workloads.serving.common import host_note
    from workloads.serving.repository import mlp_spec

    at_start = host_note()
    base = mlp_spec(MODEL, versions=(1, 2))
    plan = control.check_plan(base, [policy(n) for n in p.policies])  # refused here, before a server starts
    x = sample_inputs(p.probe_size)[0]
    t = Table.of(
        "policies",
        [
            ("version_policy", ""),
            ("load", "s"),
            ("READY", ""),
            ("no version named -> served by", ""),
            ("request v1", ""),
            ("request v2", ""),
            ("top-1 agreement v1/v2", "%"),
            ("server RSS", "MiB"),
            ("backend stubs RSS", "MiB"),
        ],
        caption=f"explicit load with a config override per policy, one after another on one server; agreement on "
        f"{p.probe_size} digits when both versions are READY; RSS after the load settled (python backend: one stub "
        "process per loaded version instance)",
    )
    with harness.serve(ctx, [base], control_mode="explicit", load_models=[], warm_requests=0) as srv:
        addr = srv.address("grpc")
        staging = ctx.workdir / "staging"
        staging.mkdir(exist_ok=True)
        control.perturb(srv.repo / MODEL / "1" / "model.onnx", staging / "v2.onnx", seed=2)
        (staging / "v2.onnx").replace(srv.repo / MODEL / "2" / "model.onnx")
        c = grpcclient.InferenceServerClient(addr)

        def infer(version: str, batch: np.ndarray) -> tuple[np.ndarray | None, str]:
            """Logits for the batch (sent in requests of max_batch_size) and the version that answered."""
            outs, served = [], ""
            for k in range(0, len(batch), base.max_batch_size):
                part = batch[k : k + base.max_batch_size]
                i = grpcclient.InferInput("input", list(part.shape), "FP32")
                i.set_data_from_numpy(part)
                try:
                    r = c.infer(MODEL, [i], model_version=version)
                except Exception as exc:  # noqa: BLE001 - the error is the observation
                    return None, f"error: {str(exc)[:120]}"
                outs.append(r.as_numpy("logits"))
                served = str(r.get_response().model_version)
            return np.concatenate(outs), served

        for name, spec in zip(p.policies, plan, strict=True):
            t0 = time.perf_counter()
            c.load_model(MODEL, config=control.config_json(spec))
            control.wait_until(lambda: "UNLOADING" not in control.version_states(addr, MODEL).values(), 60)
            load_s = time.perf_counter() - t0
            ready = control.ready(addr, MODEL)
            _, default_v = infer("", x[:1])
            y1, r1 = infer("1", x)
            y2, r2 = infer("2", x)
            agree = (
                round(100 * float(np.mean(y1.argmax(1) == y2.argmax(1))), 2)
                if y1 is not None and y2 is not None
                else "-"
            )
            # replaced versions' stub processes exit after the unload: wait for one stub per READY version
            stubs_settled = control.wait_until(lambda n=len(ready): len(harness.tree(srv.pid)) - 1 == n, 15, 0.1)
            server, stubs = harness.rss_mib(srv.pid)
            t.add(
                name,
                round(load_s, 3),
                str(list(ready)),
                default_v if default_v.startswith("error") else f"v{default_v}",
                "ok" if y1 is not None else r1,
                "ok" if y2 is not None else r2,
                agree,
                round(server, 1),
                round(stubs, 1) if stubs_settled is not None else f"{stubs:.1f} (old stubs still running)",
            )
        c.close()
    notes = [
        at_start,
        "A request that names no version is served by the highest READY version, whatever the policy.",
        "Triton's repository is <model>/<version>/ directories; the policy (config.pbtxt version_policy) decides which "
        "are loaded: latest N (default N=1), specific [..], or all.",
    ]
    return Output(tables=[t], notes=notes)
