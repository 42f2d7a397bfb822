"""Triton's request traces (`--trace-config` triton mode, level TIMESTAMPS): read the trace files, rebuild each
request's tree (an ensemble's steps are child traces with `parent_id`), and turn timestamps into stage spans.

Stages, as Triton's trace documentation defines them (all in ns of the server's steady clock):
  receive         HTTP_RECV_START -> HTTP_RECV_END       (HTTP frontends only; gRPC: GRPC_WAITREAD_*)
  queue           QUEUE_START -> COMPUTE_START           (waiting for a model instance, batching)
  compute input   COMPUTE_START -> COMPUTE_INPUT_END     (inputs copied to the backend)
  infer           COMPUTE_INPUT_END -> COMPUTE_OUTPUT_START (the model's own execution)
  compute output  COMPUTE_OUTPUT_START -> COMPUTE_END    (outputs copied back)
  request         REQUEST_START -> REQUEST_END           (the whole request inside the core)
  send            HTTP_SEND_START -> HTTP_SEND_END
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

STAGES = (
    ("receive", "HTTP_RECV_START", "HTTP_RECV_END"),
    ("request", "REQUEST_START", "REQUEST_END"),
    ("queue", "QUEUE_START", "COMPUTE_START"),
    ("compute input", "COMPUTE_START", "COMPUTE_INPUT_END"),
    ("infer", "COMPUTE_INPUT_END", "COMPUTE_OUTPUT_START"),
    ("compute output", "COMPUTE_OUTPUT_START", "COMPUTE_END"),
    ("send", "HTTP_SEND_START", "HTTP_SEND_END"),
)
COMPUTE_STAGES = ("queue", "compute input", "infer", "compute output")


@dataclass
class Trace:
    id: int
    model: str = ""
    version: int | None = None
    request_id: str = ""
    parent_id: int | None = None
    timestamps: dict[str, int] = field(default_factory=dict)  # name -> ns
    children: list[Trace] = field(default_factory=list)

    def spans(self) -> dict[str, tuple[int, int]]:
        """Stage -> (start ns, end ns) for every stage whose two timestamps this trace has."""
        ts = self.timestamps
        return {name: (ts[a], ts[b]) for name, a, b in STAGES if a in ts and b in ts}


def read(files: list[Path]) -> dict[int, Trace]:
    """Trace id -> Trace from Triton's trace files (each a JSON array of partial records of the same ids)."""
    traces: dict[int, Trace] = {}
    for f in files:
        for rec in json.loads(f.read_text() or "[]"):
            t = traces.setdefault(int(rec["id"]), Trace(int(rec["id"])))
            if "model_name" in rec:
                t.model = rec["model_name"]
                t.version = rec.get("model_version")
                t.request_id = rec.get("request_id", "")
                t.parent_id = rec.get("parent_id")
            for x in rec.get("timestamps", []):
                t.timestamps[x["name"]] = int(x["ns"])
    for t in traces.values():
        if t.parent_id is not None and t.parent_id in traces:
            traces[t.parent_id].children.append(t)
    return traces


def trace_files(trace_file: Path) -> list[Path]:
    """The trace file and its numbered parts (log_frequency > 0), in write order."""
    parts = sorted(trace_file.parent.glob(f"{trace_file.name}.*"), key=lambda p: int(p.suffix[1:] or 0))
    return parts + ([trace_file] if trace_file.exists() else [])


def wait_for(trace_file: Path, request_id: str, children: int = 0, timeout_s: float = 20) -> Trace:
    """The root trace of request `request_id` once it (and `children` child traces) are on disk."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = [
                t for t in read(trace_files(trace_file)).values() if t.request_id == request_id and t.parent_id is None
            ]
        except json.JSONDecodeError:  # a part being written
            found = []
        if found and len(found[0].children) >= children and "REQUEST_END" in found[0].timestamps:
            return found[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no complete trace of request {request_id!r} in {trace_file}* after {timeout_s} s")
        time.sleep(0.1)


def lanes(root: Trace) -> list[tuple[str, str, int, int]]:
    """(model, stage, start ns, end ns) of the root and its children (ensemble steps, in start order)."""
    out = [(root.model, s, a, b) for s, (a, b) in root.spans().items()]
    for c in sorted(root.children, key=lambda c: c.timestamps.get("REQUEST_START", 0)):
        out += [(c.model, s, a, b) for s, (a, b) in c.spans().items()]
    return out
