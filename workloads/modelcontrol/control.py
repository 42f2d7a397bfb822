"""What the model-control experiments share: versions written into a live repository the way a deploy should
(staged outside, renamed in), version sets checked before anything starts, waiting for the server to reach a state,
load running in the background while the repository changes, and tritonserver's log lines about (un)loading.

    plan = check_plan(spec, [VersionPolicy("specific", versions=(2,)), ...])   # SpecError before a server starts
    with background_load(served, MODEL, qps=200, duration_s=10) as bg:
        bg.mark("switch to v2", lambda: load_versions(served, spec, (2,)))
    phases(bg.result.timeline, bg.events)
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workloads.serving.modelspec import ModelSpec, SpecError, VersionPolicy, to_config, validate
from workloads.serving.stats import percentile

LOG_EVENTS = {  # tritonserver 2.51 log line -> event name (model and version captured)
    "loading": re.compile(r"loading: ([\w.-]+):(\d+)"),
    "loaded": re.compile(r"successfully loaded '([\w.-]+)'(?: version (\d+))?"),  # 2.51 names no version
    "unloading": re.compile(r"unloading: ([\w.-]+):(\d+)"),
    "unloaded": re.compile(r"successfully unloaded '([\w.-]+)' version (\d+)"),
}
LOG_TIME = re.compile(r"^[IWE](\d{4}) (\d\d):(\d\d):(\d\d\.\d+)")


def check_plan(spec: ModelSpec, policies: Sequence[VersionPolicy]) -> list[ModelSpec]:
    """The spec under each policy, every one validated first: a policy naming a version that is not in the
    repository (spec.versions) is refused with SpecError naming the step and the field, before any server starts."""
    out = []
    for i, vp in enumerate(policies):
        s = dataclasses.replace(spec, version_policy=vp)
        try:
            validate(s)
        except SpecError as exc:
            raise SpecError(f"plan step {i}: {exc}") from exc
        out.append(s)
    return out


def policy_name(vp: VersionPolicy) -> str:
    if vp.kind == "latest":
        return f"latest {vp.num_versions}"
    if vp.kind == "all":
        return "all"
    return f"specific {list(vp.versions)}"


def config_json(spec: ModelSpec) -> str:
    """The spec's ModelConfig as the JSON the repository API's `config` load parameter takes."""
    from google.protobuf import json_format

    return json_format.MessageToJson(to_config(spec), preserving_proto_field_name=True)


def perturb(src: Path, dst: Path, seed: int, scale: float = 0.1) -> None:
    """dst = the ONNX at src with every weight moved by `scale` of its spread (a valid, detectably different model)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(src))
    rng = np.random.default_rng(seed)
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init).copy()
        a += (rng.standard_normal(a.shape) * scale * a.std()).astype(a.dtype)
        init.CopyFrom(numpy_helper.from_array(a, init.name))
    onnx.save(m, str(dst))


def stage_version(model_dir: Path, version: int, staging: Path, seed: int | None = None) -> Path:
    """Write version `version` of the model as a copy of version 1 (weights perturbed with `seed` unless None),
    staged under `staging` (outside the repository) and renamed into place: a poll never sees a half-written
    version. Returns the version directory."""
    tmp = staging / f"{model_dir.name}-{version}-{time.monotonic_ns()}"
    shutil.copytree(model_dir / "1", tmp)
    if seed is not None:
        perturb(model_dir / "1" / "model.onnx", tmp / "model.onnx", seed)
    dst = model_dir / str(version)
    tmp.rename(dst)
    return dst


def wait_until(pred: Callable[[], bool], timeout_s: float = 60.0, interval_s: float = 0.02) -> float | None:
    """Seconds until pred() held (polled every interval_s), or None after timeout_s."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout_s:
        try:
            if pred():
                return time.perf_counter() - t0
        except Exception:  # noqa: BLE001 - a server mid-reload may refuse a status call: keep polling
            pass
        time.sleep(interval_s)
    return None


def version_states(address: str, model: str) -> dict[int, str]:
    """{version: state} of `model` from the repository index (READY, UNAVAILABLE, LOADING, UNLOADING)."""
    from workloads.serving.client import Client

    with Client(address, "grpc", timeout_s=10, retries=0) as c:
        idx = c.repository_index()
    return {int(m["version"]): m.get("state", "") for m in idx if m.get("name") == model and m.get("version")}


def ready(address: str, model: str) -> tuple[int, ...]:
    return tuple(sorted(v for v, s in version_states(address, model).items() if s == "READY"))


@dataclass
class Event:
    name: str
    start: float  # time.perf_counter()
    end: float
    value: Any = None
    error: str = ""


@dataclass
class Background:
    """Load sent by the lab's load generator in a thread while the caller changes the server; events are marked."""

    spec: Any  # loadgen.LoadSpec
    events: list[Event] = field(default_factory=list)
    result: Any = None  # loadgen.LoadResult once finished
    started: float = 0.0
    stopper: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """End the load now instead of at the end of its duration."""
        self.stopper.set()

    def mark(self, name: str, fn: Callable[[], Any]) -> Event:
        """Run fn() now, recording when it started and ended (perf_counter) and what it returned or raised."""
        t0 = time.perf_counter()
        ev = Event(name, t0, t0)
        try:
            ev.value = fn()
        except Exception as exc:  # noqa: BLE001 - a failed control call is an outcome to report
            ev.error = str(exc).split("\n")[0][:300]
        ev.end = time.perf_counter()
        self.events.append(ev)
        return ev

    def relative(self, ev: Event) -> tuple[float, float]:
        """An event's (start, end) in seconds from the measured window's start (the timeline's clock)."""
        return ev.start - self.result.window_start, ev.end - self.result.window_start


@contextmanager
def background_load(served: Any, model: str, **kw: Any) -> Iterator[Background]:
    """Closed or open loop load on `model` (loadgen.LoadSpec keywords) for its whole duration (or until the body
    calls .stop()), with a timeline; the body runs meanwhile; on exit waits for the load to finish (.result)."""
    from workloads.serving import loadgen

    spec = loadgen.LoadSpec(
        url=served.address("grpc"), model=model, protocol="grpc", timeline=True, metrics_url=served.metrics_url, **kw
    )
    bg = Background(spec)
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["res"] = loadgen.run(spec, stop=bg.stopper)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["exc"] = exc

    th = threading.Thread(target=go, name="background-load", daemon=True)
    bg.started = time.perf_counter()
    th.start()
    time.sleep(spec.warmup_s)  # changes start inside the measured window
    try:
        yield bg
    finally:
        th.join()
    if "exc" in box:
        raise box["exc"]
    bg.result = box["res"]


@dataclass
class Window:
    requests: int = 0
    failed: int = 0
    lat: list[float] = field(default_factory=list)

    def pct(self, p: float) -> float:
        return percentile(np.sort(np.asarray(self.lat)), p)

    @property
    def max(self) -> float:
        return max(self.lat) if self.lat else float("nan")


def window(timeline: Sequence[tuple[float, float, str]], t_from: float, t_to: float) -> Window:
    """Requests sent in [t_from, t_to) (timeline clock: s from the window start): counts and latencies (ms)."""
    w = Window()
    for t, ms, err in timeline:
        if t_from <= t < t_to:
            w.requests += 1
            if err:
                w.failed += 1
            else:
                w.lat.append(ms)
    return w


def buckets(timeline: Sequence[tuple[float, float, str]], width_s: float, end_s: float) -> list[tuple[float, Window]]:
    """The timeline cut into consecutive windows of width_s (start s, Window)."""
    n = max(1, int(np.ceil(end_s / width_s)))
    return [(i * width_s, window(timeline, i * width_s, (i + 1) * width_s)) for i in range(n)]


def log_offset(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def log_events(log: Path, offset: int, model: str) -> list[tuple[str, str, int]]:
    """(time of day hh:mm:ss.ffffff, event, version; 0 = not named) for `model` in tritonserver's log after `offset`."""
    with log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    out = []
    for line in text.splitlines():
        m = LOG_TIME.match(line)
        for name, rx in LOG_EVENTS.items():
            hit = rx.search(line)
            if hit and hit.group(1) == model:
                v = int(hit.group(2)) if hit.group(2) else 0  # 0: the line names no version
                out.append((f"{m.group(2)}:{m.group(3)}:{m.group(4)}" if m else "", name, v))
    return out


def seconds_of_day(hms: str) -> float:
    h, m, s = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
