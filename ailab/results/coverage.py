"""What the lab has measured, per week: every experiment falls in exactly one kind.

Kinds, in the order `lab coverage` prints them:
- measured on GPU / on CPU: an `ok` result measured with what the curriculum names;
- substitute: an `ok` result measured with a stand-in (its `substitute` says what and why);
- derived: an `ok` result that re-presents rows of another experiment's run (`derived_from`);
- generated: an `ok` result that is a diagram or document drawn from the code's own definitions, not a measurement
  and not a person's writing (its `generated` names the command, the definitions and the files; e.g. the
  architecture diagrams of `lab diagrams`);
- needs cluster / TensorRT / multi-GPU / GPU: no `ok` result, and the experiment (as bound, else as written)
  needs what this kind of host lacks;
- writing task: a text only a person can write (the lab can only fill a template with measured facts);
- not run: bound and runnable here, but no result yet (or only skipped/failed attempts);
- planned: no runner yet and no special needs.
Unreadable result files are reported by name, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ailab.curriculum import Catalogue, Experiment, Need
from ailab.results.store import Result, load_day

KINDS = (
    "measured_gpu",
    "measured_cpu",
    "substitute",
    "derived",
    "generated",
    "needs_cluster",
    "needs_tensorrt",
    "needs_multi_gpu",
    "needs_gpu",
    "writing",
    "not_run",
    "planned",
)
LABELS = {
    "measured_gpu": "measured on GPU",
    "measured_cpu": "measured on CPU",
    "substitute": "substitute",
    "derived": "derived",
    "generated": "generated",
    "needs_cluster": "needs cluster",
    "needs_tensorrt": "needs TensorRT",
    "needs_multi_gpu": "needs multi-GPU",
    "needs_gpu": "needs GPU",
    "writing": "writing task",
    "not_run": "not run",
    "planned": "planned",
}
SHORT = {
    "measured_gpu": "GPU",
    "measured_cpu": "CPU",
    "substitute": "subst",
    "derived": "derived",
    "generated": "gen",
    "needs_cluster": "cluster",
    "needs_tensorrt": "TRT",
    "needs_multi_gpu": "multi",
    "needs_gpu": "n:GPU",
    "writing": "writing",
    "not_run": "not run",
    "planned": "planned",
}
# the first unmet need in this order names why an experiment is not measured
_NEED_ORDER = ((Need.cluster, "needs_cluster"), (Need.tensorrt, "needs_tensorrt"), (Need.multi_gpu, "needs_multi_gpu"))


def needs_phrase(needs: list[Need], hardware_only: bool = False) -> str:
    """'needs cluster', 'needs TensorRT', 'needs 2 or more GPUs', 'needs GPU', ... or '' (host-independent);
    `hardware_only` names only what this kind of machine cannot have (cluster, TensorRT, GPUs)."""
    words = [
        (Need.cluster, "needs cluster"),
        (Need.tensorrt, "needs TensorRT"),
        (Need.multi_gpu, "needs 2 or more GPUs"),
        (Need.gpu, "needs GPU"),
    ]
    if not hardware_only:
        words += [
            (Need.container_engine, "needs a container engine"),
            (Need.local_platform, "needs the local platform"),
        ]
    for need, word in words:
        if need in needs:
            return word
    return ""


def generated_problem(data: dict) -> str | None:
    """What is wrong with a result's `generated` record (None when it has none, or a well-formed one: the command
    `by`, the definitions `sources` and the `files` it generated, each non-empty)."""
    gen = data.get("generated")
    if gen is None:
        return None
    if not isinstance(gen, dict):
        return f"`generated` is a {type(gen).__name__}, expected an object with by, sources and files"
    if not isinstance(gen.get("by"), str) or not gen["by"].strip():
        return "`generated.by` must name the command that generated the files"
    for key in ("sources", "files"):
        value = gen.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            return f"`generated.{key}` must be a non-empty list of non-empty strings"
    return None


def is_generated(data: dict) -> bool:
    """Whether a result is a generated document: it carries a well-formed `generated` record."""
    return data.get("generated") is not None and generated_problem(data) is None


def classify(exp: Experiment, results: list[Result]) -> str:
    """The one kind of `exp` given its stored results."""
    # a malformed `generated` record counts for nothing (coverage() names the file), never as a measurement
    ok = [r for r in results if r.error is None and r.status == "ok" and generated_problem(r.data) is None]
    real = [
        r for r in ok if not r.data.get("derived_from") and not r.data.get("substitute") and not is_generated(r.data)
    ]
    if any(r.host_class != "cpu" for r in real):
        return "measured_gpu"
    if real:
        return "measured_cpu"
    if any(r.data.get("substitute") for r in ok):
        return "substitute"
    if any(r.data.get("derived_from") for r in ok):
        return "derived"
    if ok:  # only generated results are left
        return "generated"
    if exp.writing:
        return "writing"
    needs = exp.effective_needs
    for need, kind in _NEED_ORDER:
        if need in needs:
            return kind
    if Need.gpu in needs:
        return "needs_gpu"
    return "planned" if exp.binding is None else "not_run"


@dataclass
class WeekCoverage:
    week: int
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    experiments: dict[str, str] = field(default_factory=dict)  # id -> kind


@dataclass
class Coverage:
    weeks: list[WeekCoverage]
    unreadable: list[tuple[Path, str]]  # (file, what is wrong)

    @property
    def totals(self) -> dict[str, int]:
        return {k: sum(w.counts[k] for w in self.weeks) for k in KINDS}

    def to_dict(self) -> dict:
        return {
            "weeks": [{"week": w.week, **w.counts} for w in self.weeks],
            "totals": self.totals,
            "experiments": {e: k for w in self.weeks for e, k in w.experiments.items()},
            "unreadable": [{"file": str(p), "error": why} for p, why in self.unreadable],
        }


def coverage(cat: Catalogue, results_root: Path | None = None) -> Coverage:
    weeks, bad = [], []
    for n in cat.weeks:
        wc = WeekCoverage(n)
        for day in cat.week(n):
            results = load_day(day.id, results_root)
            bad += [(r.path, r.error) for r in results if r.error]
            bad += [(r.path, why) for r in results if r.error is None and (why := generated_problem(r.data))]
            for exp in day.experiments:
                kind = classify(exp, [r for r in results if r.id == exp.id])
                wc.counts[kind] += 1
                wc.experiments[exp.id] = kind
        weeks.append(wc)
    return Coverage(weeks, bad)
