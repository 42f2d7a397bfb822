"""Misconfigured sequence ids against Triton's sequence batcher (d39.e4): each case states the outcome expected
beforehand (Triton's error text, or what the model returns), and the result records what the server did and
whether it matched. Run on both strategies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.sequences.experiments.conversations import BACKEND_NOTE, Strategies
from workloads.serving.experiments import Int, Num

NO_ID = "must specify a non-zero or non-empty correlation ID"
NO_START = "must specify the START flag on the first request of the sequence"


class SequenceIdParams(Params):
    strategies: Strategies = Field(default=["direct", "oldest"], description="sequence batcher strategies")
    max_sequence_idle_us: Annotated[Int, Field(ge=1_000, le=10_000_000)] = Field(
        default=300_000, description="idle limit of the model; the idle case waits past it"
    )
    idle_wait_s: Annotated[Num, Field(gt=0, le=60)] = Field(default=1.0, description="> max_sequence_idle")
    length: Annotated[Int, Field(ge=2, le=256)] = Field(default=6, description="steps of the shared-id case")


@dataclass(frozen=True)
class Case:
    name: str
    expected: str  # "error: <text>" or "ok: <what>"


CASES = (
    Case("no sequence id", f"error: {NO_ID}"),
    Case("sequence id 0 with START", f"error: {NO_ID}"),
    Case("first request without START", f"error: {NO_START}"),
    Case("END without START", f"error: {NO_START}"),
    Case("request after END, same id, no START", f"error: {NO_START}"),
    Case("request after the idle limit, no START", f"error: {NO_START}"),
    Case("START again on a live id", "ok: STEP 1, 2; after the second START 1, 2 (state reset)"),
    Case("two conversations share one id", "ok: no error, outputs differ from the reference"),
    Case("sequence flags to the stateless model", "ok: flags ignored (no sequence batcher)"),
)


def sequence_ids(ctx: Context, p: SequenceIdParams) -> Output:
    """Each misconfiguration on each strategy: the expected outcome, the observed one, and whether they agree."""
    import time

    import numpy as np
    import tritonclient.grpc as grpcclient

    from workloads.sequences import gru
    from workloads.sequences.config import SequenceBatching
    from workloads.sequences.repository import serve, stateful, stateless
    from workloads.serving.common import host_note
    from workloads.serving.repository import model_cache

    at_start = host_note()
    models = [
        stateful(f"gru_{s}", SequenceBatching(s, max_sequence_idle_us=p.max_sequence_idle_us)) for s in p.strategies
    ]
    models.append(stateless("gru_dynamic"))
    ref = gru.Reference(gru.export(model_cache()))
    xa, xb = gru.conversation(11, p.length), gru.conversation(12, p.length)
    ya = ref.run(xa)
    t = Table.of(
        "sequence_id_cases",
        [("model", ""), ("case", ""), ("expected", ""), ("observed", ""), ("as expected", "")],
        caption="gRPC; 'observed' is the server's error (status and message) or what the model returned",
    )
    with serve(ctx, models) as srv:
        c = grpcclient.InferenceServerClient(srv.address("grpc"))

        def send(model: str, x: np.ndarray, h: bool = False, **kw):
            i = grpcclient.InferInput("X", [1, gru.FEATURES], "FP32")
            i.set_data_from_numpy(x[None, :] if x.ndim == 1 else x)
            ins = [i]
            if h:
                j = grpcclient.InferInput("H_IN", [1, gru.HIDDEN], "FP32")
                j.set_data_from_numpy(np.zeros((1, gru.HIDDEN), np.float32))
                ins.append(j)
            return c.infer(model, ins, **kw)

        def attempt(fn) -> tuple[str, str]:
            try:
                return "ok", fn()
            except Exception as exc:  # noqa: BLE001 - the error is the outcome being observed
                status = exc.status() if hasattr(exc, "status") else type(exc).__name__
                return "error", f"{status} {exc.message() if hasattr(exc, 'message') else exc}"

        def step(r) -> int:
            return int(r.as_numpy("STEP").reshape(-1)[0])

        x = xa[0]
        ids = iter(range(100, 10**6))
        for m in models[:-1]:
            name = m.spec.name

            def restart(name=name) -> str:
                cid = next(ids)
                s1 = step(send(name, x, sequence_id=cid, sequence_start=True))
                s2 = step(send(name, x, sequence_id=cid))
                s3 = step(send(name, x, sequence_id=cid, sequence_start=True))
                s4 = step(send(name, x, sequence_id=cid, sequence_end=True))
                return f"STEP {s1}, {s2}; after the second START {s3}, {s4}"

            def shared(name=name) -> str:
                cid = next(ids)
                ys = []
                for s in range(p.length):  # A and B alternate on one id: each START of B resets A's state
                    ys.append(send(name, xa[s], sequence_id=cid, sequence_start=s == 0).as_numpy("Y")[0])
                    send(name, xb[s], sequence_id=cid, sequence_start=s == 0, sequence_end=s == p.length - 1)
                bad = sum(not np.allclose(y, w, rtol=1e-4, atol=1e-5) for y, w in zip(ys, ya, strict=True))
                return f"no error; {bad} of {p.length} outputs of conversation A differ from its reference"

            def after_end(name=name) -> object:
                cid = next(ids)
                send(name, x, sequence_id=cid, sequence_start=True)
                send(name, x, sequence_id=cid, sequence_end=True)
                return send(name, x, sequence_id=cid)

            def after_idle(name=name) -> object:
                cid = next(ids)
                send(name, x, sequence_id=cid, sequence_start=True)
                time.sleep(p.idle_wait_s)
                return send(name, x, sequence_id=cid)

            runs = {
                CASES[0].name: lambda name=name: send(name, x),
                CASES[1].name: lambda name=name: send(name, x, sequence_id=0, sequence_start=True),
                CASES[2].name: lambda name=name: send(name, x, sequence_id=next(ids)),
                CASES[3].name: lambda name=name: send(name, x, sequence_id=next(ids), sequence_end=True),
                CASES[4].name: after_end,
                CASES[5].name: after_idle,
                CASES[6].name: restart,
                CASES[7].name: shared,
            }
            for case in CASES[:-1]:
                kind, what = attempt(runs[case.name])
                observed = what if isinstance(what, str) else f"ok: STEP {step(what)}"
                t.add(name, case.name, case.expected, observed[:300], _agrees(case, kind, observed))
        case = CASES[-1]
        kind, what = attempt(lambda: send("gru_dynamic", x, h=True, sequence_id=5, sequence_start=True))
        observed = what if isinstance(what, str) else "ok: Y returned"
        t.add("gru_dynamic", case.name, case.expected, observed[:300], _agrees(case, kind, observed))
        c.close()
    notes = [
        at_start,
        BACKEND_NOTE,
        "Triton keeps no record of ended or idle-released sequences: a later request on the same id is simply "
        "'a first request without START'. Nothing detects two clients sharing one id: the batcher treats them as "
        "one sequence, and the state goes wrong silently; ids must be unique per conversation (e.g. 64-bit random).",
    ]
    return Output(tables=[t], notes=notes)


def _agrees(case: Case, kind: str, observed: str) -> str:
    want_kind, _, want = case.expected.partition(": ")
    if want_kind != kind:
        return "NO"
    if kind == "error":
        return "yes" if want in observed else "NO"
    if case.name.startswith("START again"):
        return "yes" if observed == "STEP 1, 2; after the second START 1, 2" else "NO"
    if case.name.startswith("two conversations"):
        return "yes" if not observed.startswith("no error; 0 of") else "NO"
    return "yes"
