"""Triton's model control modes on the local tritonserver 2.51: `poll` picking up versions added to and removed from
a live repository (d25.e1), and `explicit` load / reload with a config override / unload over the repository API
(d25.e2). Model `clf` is the Day-3 MLP on the python backend."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.serving.experiments import AutoComplete, Int, server_args

MODEL = "clf"


class PollParams(Params):
    poll_secs: Annotated[list[Annotated[Int, Field(ge=1, le=60)]], Field(min_length=1)] = Field(
        default=[1, 2, 5], description="--repository-poll-secs values, one server each"
    )
    repeats: Annotated[Int, Field(ge=1, le=20)] = Field(default=3, description="add/remove cycles per poll interval")
    timeout_s: Annotated[Int, Field(ge=5, le=300)] = Field(default=60, description="longest wait for one pick-up")
    auto_complete_config: AutoComplete = True


def poll_pickup(ctx: Context, p: PollParams) -> Output:
    """Add version 2 to / remove it from a live repository in poll mode; time until the server serves exactly the
    new set, split into detection (change -> Triton's 'loading'/'unloading' log line) and the rest."""
    import shutil
    import time
    from pathlib import Path

    from workloads.modelcontrol import control
    from workloads.serving import harness
    from workloads.serving.common import host_note
    from workloads.serving.repository import mlp_spec

    at_start = host_note()
    spec = mlp_spec(MODEL, versions=(1,))  # version_policy latest 1: the highest version on disk serves
    rows = Table.of(
        "pickups",
        [
            ("poll interval", "s"),
            ("change", ""),
            ("cycle", ""),
            ("detected (first log line)", "s"),
            ("until only the new version READY", "s"),
            ("READY after", ""),
            ("served", "version"),
        ],
        caption="change made at t=0 by renaming a staged version directory in (add) or out (remove) of the live "
        "repository; 'detected' = wall-clock time of tritonserver's first log line about the model after the change; "
        "'until only ... READY' polled on the repository index every 20 ms",
    )
    summary = Table.of(
        "summary",
        [
            ("poll interval", "s"),
            ("change", ""),
            ("pick-ups", ""),
            ("detected median", "s"),
            ("detected max", "s"),
            ("ready median", "s"),
            ("ready max", "s"),
            ("detected within one interval", ""),
        ],
        caption="medians and maxima over the cycles (nearest-rank median)",
    )
    from workloads.serving.stats import percentile

    for secs in p.poll_secs:
        wd = ctx.workdir / f"poll{secs}"
        staging = wd / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        args = server_args(p.auto_complete_config, [f"--repository-poll-secs={secs}"])
        got: dict[str, list[tuple[float, float]]] = {"add v2": [], "remove v2": []}
        with harness.serve(ctx, [spec], workdir=wd, control_mode="poll", args=args, warm_requests=0) as srv:
            addr = srv.address("grpc")
            log = Path(srv.platform.record("triton").log)
            mdir = srv.repo / MODEL
            for cycle in range(1, p.repeats + 1):
                for change, want in (("add v2", (2,)), ("remove v2", (1,))):
                    offset = control.log_offset(log)
                    wall = time.time()
                    if change == "add v2":
                        control.stage_version(mdir, 2, staging, seed=cycle)
                    else:
                        (mdir / "2").rename(staging / f"removed-{cycle}")
                    ready_s = control.wait_until(
                        lambda want=want, addr=addr: (
                            control.ready(addr, MODEL) == want
                            and "UNLOADING" not in control.version_states(addr, MODEL).values()
                        ),
                        p.timeout_s,
                    )
                    # the log holds the old version's unload line (it closes the change; were it written after
                    # the next change's offset, it would read as that change's detection)
                    gone = 1 if change == "add v2" else 2
                    control.wait_until(
                        lambda gone=gone, offset=offset, log=log: any(
                            e[1] == "unloaded" and e[2] == gone for e in control.log_events(log, offset, MODEL)
                        ),
                        2.0,
                    )
                    ev = control.log_events(log, offset, MODEL)
                    detected = _first_log_s(ev, wall)
                    served = _served(addr)
                    rows.add(
                        secs,
                        change,
                        cycle,
                        round(detected, 3) if detected is not None else "none",
                        round(ready_s, 3) if ready_s is not None else f"> {p.timeout_s}",
                        str(list(control.ready(addr, MODEL))),
                        served if served is not None else "none",
                    )
                    if detected is not None and ready_s is not None:
                        got[change].append((detected, ready_s))
            shutil.rmtree(staging, ignore_errors=True)
        for change, vals in got.items():
            det = sorted(d for d, _ in vals)
            rdy = sorted(r for _, r in vals)
            summary.add(
                secs,
                change,
                f"{len(vals)} of {p.repeats}",
                round(percentile(det, 50), 3),
                round(det[-1], 3) if det else "-",
                round(percentile(rdy, 50), 3),
                round(rdy[-1], 3) if rdy else "-",
                "yes" if det and det[-1] <= secs + 0.1 else "NO",
            )
    notes = [
        at_start,
        "Versions are written the way a deploy into a polled repository should be: staged outside the repository and "
        "renamed in, so no poll sees a half-copied version.",
        "Version policy `latest 1`: adding v2 swaps v1 out, removing v2 brings v1 back (a rollback by deletion).",
        "'detected within one interval' allows 0.1 s for the log line's own delay.",
    ]
    return Output(tables=[summary, rows], notes=notes)


def _first_log_s(events: list[tuple[str, str, int]], wall: float) -> float | None:
    import time

    from workloads.modelcontrol import control

    if not events or not events[0][0]:
        return None
    midnight = time.mktime((*time.localtime(wall)[:3], 0, 0, 0, 0, 0, -1))
    return midnight + control.seconds_of_day(events[0][0]) - wall


def _served(addr: str) -> int | None:
    from workloads.modelcontrol.update import _served_version

    return _served_version(addr)


class ExplicitParams(Params):
    repeats: Annotated[Int, Field(ge=1, le=20)] = Field(default=5, description="load/reload/unload cycles")
    reload_instances: Annotated[Int, Field(ge=1, le=8)] = Field(
        default=2, description="instance count in the reload's config override"
    )
    auto_complete_config: AutoComplete = True


def explicit_control(ctx: Context, p: ExplicitParams) -> Output:
    """Explicit mode: nothing loaded at start; load, reload with a config override, unload, each timed, with what
    a request gets in each state."""
    import dataclasses
    import time

    from workloads.modelcontrol import control
    from workloads.serving import harness
    from workloads.serving.common import host_note
    from workloads.serving.repository import InstanceGroup, mlp_spec
    from workloads.serving.stats import percentile

    at_start = host_note()
    spec = mlp_spec(MODEL)
    override = dataclasses.replace(spec, instance_groups=(InstanceGroup(count=p.reload_instances),))
    steps = Table.of(
        "steps",
        [
            ("cycle", ""),
            ("action", ""),
            ("call", "s"),
            ("until state reached", "s"),
            ("state after", ""),
            ("instances (server config)", ""),
            ("a request then gets", ""),
        ],
        caption="gRPC repository API: load_model (with a `config` JSON override for the reload), unload_model; "
        "'until state reached' = from the call until the repository index shows the expected state",
    )
    times: dict[str, list[float]] = {}
    args = server_args(p.auto_complete_config)
    with harness.serve(ctx, [spec], control_mode="explicit", load_models=[], args=args, warm_requests=0) as srv:
        import tritonclient.grpc as grpcclient

        addr = srv.address("grpc")
        c = grpcclient.InferenceServerClient(addr)

        def state() -> str:
            st = control.version_states(addr, MODEL)
            if st:
                return ", ".join(f"v{v} {s}" for v, s in sorted(st.items()))
            idx = [m for m in c.get_model_repository_index(as_json=True).get("models", []) if m["name"] == MODEL]
            return idx[0].get("state") or "not loaded" if idx else "absent"

        def instances() -> str:
            try:
                cfg = c.get_model_config(MODEL, as_json=True)["config"]
                return str(sum(int(g.get("count", 1)) for g in cfg.get("instance_group", [])))
            except Exception:  # noqa: BLE001 - no config while unloaded
                return "-"

        def probe() -> str:
            v = _served(addr)
            if v is not None:
                return f"ok (version {v})"
            try:
                from workloads.serving import loadgen

                x = loadgen.default_inputs(1)["input"]
                i = grpcclient.InferInput("input", list(x.shape), "FP32")
                i.set_data_from_numpy(x)
                c.infer(MODEL, [i])
                return "ok"
            except Exception as exc:  # noqa: BLE001 - the error is the observation
                return f"error: {str(exc)[:160]}"

        steps.add(0, "start (nothing loaded)", "-", "-", state(), instances(), probe())
        for cycle in range(1, p.repeats + 1):
            for action, fn, want in (
                ("load", lambda: c.load_model(MODEL), lambda: control.ready(addr, MODEL) == (1,)),
                (
                    f"reload, override instance_group count {p.reload_instances}",
                    lambda: c.load_model(MODEL, config=control.config_json(override)),
                    lambda: instances() == str(p.reload_instances) and control.ready(addr, MODEL) == (1,),
                ),
                (
                    "unload",
                    lambda: c.unload_model(MODEL),
                    lambda: not {"READY", "UNLOADING"} & set(control.version_states(addr, MODEL).values()),
                ),
            ):
                t0 = time.perf_counter()
                fn()
                call = time.perf_counter() - t0
                reached = control.wait_until(want, 60)
                total = call + reached if reached is not None else None
                times.setdefault(action, []).append(total if total is not None else float("nan"))
                steps.add(
                    cycle,
                    action,
                    round(call, 3),
                    round(total, 3) if total is not None else "> 60",
                    state(),
                    instances(),
                    probe(),
                )
        missing = "nope"
        try:
            c.load_model(missing)
            outcome = "loaded (unexpected)"
        except Exception as exc:  # noqa: BLE001 - the error is the observation
            outcome = f"error: {str(exc).split(chr(10))[0][:200]}"
        steps.add("-", f"load {missing!r} (not in the repository)", "-", "-", "-", "-", outcome)
        c.close()
    summary = Table.of(
        "summary",
        [("action", ""), ("cycles", ""), ("median", "s"), ("max", "s")],
        caption="call + wait until the state was reached, over the cycles (nearest-rank median)",
    )
    for action, vals in times.items():
        s = sorted(vals)
        summary.add(action, len(s), round(percentile(s, 50), 3), round(s[-1], 3))
    notes = [
        at_start,
        "tritonserver --model-control-mode=explicit with no --load-model: the model exists in the repository "
        "but is not loaded until asked for.",
        "Unloading takes the whole model (every version); in 2.51 the unload call returns before the instances are "
        "gone, hence 'until state reached'.",
    ]
    return Output(tables=[summary, steps], notes=notes)
