"""Add the missing `substitute` / `derived_from` labels to stored results, never changing a measured value.

Results measured before the lab recorded stand-ins (`substitute`) or re-presented rows (`derived_from`) can be
labelled after the fact. The tool adds only those fields, a `relabelled: {date, by, why}` record and, optionally,
notes computed from the stored rows (`--facts`); it refuses a file that already carries a label or a relabelling,
and checks that every other field is unchanged before it writes.

    python tools/relabel_results.py reports/results/d46/d46.e2.h100.json \\
        --instead-of "Prometheus scraping the DCGM exporter" --used "direct HTTP scrapes of the NVML exporter" \\
        --why "no Prometheus on the GPU machine" --facts gpu_alerts --by observability --reason "issue 13"
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

LABELS = ("substitute", "derived_from")


class RelabelError(ValueError):
    """The file cannot be relabelled; the message names the file and why."""


def _table(rec: dict[str, Any], starts: str) -> tuple[list[str], list[list[Any]]]:
    """Column names and rows of the first table whose name starts with `starts`."""
    for t in rec.get("tables", []):
        if t["name"].startswith(starts):
            return [c["name"] for c in t["columns"]], t["rows"]
    raise RelabelError(f"no table named {starts!r}... (tables: {[t['name'] for t in rec.get('tables', [])]})")


def gpu_alert_facts(rec: dict[str, Any]) -> list[str]:
    """What a day-46 result of the first NVML runner shows, read from its stored rows: quick mode, the load window,
    the peak temperature and whether each GPU alert would have fired."""
    cols, rows = _table(rec, "GPU alerts on the real readings")
    a = {r[cols.index("alert")]: r for r in rows}
    gcols, grows = _table(rec, "GPU ")
    peak = max(r[gcols.index("temperature max")] for r in grows)
    params = rec.get("params", {})
    mode = "quick mode" if rec.get("quick") else "full parameters"
    out = [f"Relabelled: measured in {mode}, {params.get('load_s', '?')} s of matmul load (no inference server)."]
    for name, r in a.items():
        fired = r[cols.index("would fire")]
        cond, hold = r[cols.index("condition")], r[cols.index("for (rule)")]
        longest = r[cols.index("longest run over threshold")]
        verdict = "fired" if fired == "yes" else "never fired"
        extra = f"; peak temperature {peak:g} °C" if name == "GPUTemperatureHigh" else ""
        out.append(f"Relabelled: {name} ({cond} for {hold:g} s) {verdict} in this run: longest run over the "
                   f"threshold {longest:g} s{extra}; evaluated in Python, not by Prometheus.")  # fmt: skip
    return out


FACTS: dict[str, Callable[[dict[str, Any]], list[str]]] = {"gpu_alerts": gpu_alert_facts}


def relabel(
    rec: dict[str, Any],
    *,
    by: str,
    why: str,
    substitute: dict[str, str] | None = None,
    derived_from: list[str] | None = None,
    facts: str | None = None,
    date: str | None = None,
) -> dict[str, Any]:
    """A copy of `rec` with the labels, the relabelling record and computed notes added; nothing else changes."""
    if not (substitute or derived_from):
        raise RelabelError("nothing to add: give a substitute (instead_of, used, why) or derived_from")
    if substitute is not None:
        empty = [k for k in ("instead_of", "used", "why") if not str(substitute.get(k, "")).strip()]
        if empty:
            raise RelabelError(f"substitute {empty}: empty (say what stands in for what, and why)")
    if not by.strip() or not why.strip():
        raise RelabelError("--by and --reason are required: who relabels, and why")
    if rec.get("status") != "ok":
        raise RelabelError(f"status {rec.get('status')!r}: only measured (ok) results carry these labels")
    present = [k for k in (*LABELS, "relabelled") if rec.get(k)]
    if present:
        raise RelabelError(f"already has {present}: relabelling never overwrites a label")
    if facts is not None and facts not in FACTS:
        raise RelabelError(f"facts {facts!r}: unknown (allowed: {', '.join(FACTS)})")
    new = copy.deepcopy(rec)
    if substitute is not None:
        new["substitute"] = {k: substitute[k] for k in ("instead_of", "used", "why")}
    if derived_from:
        new["derived_from"] = list(derived_from)
    new["notes"] = [*rec.get("notes", []), *(FACTS[facts](rec) if facts else [])]
    new["relabelled"] = {"date": date or dt.date.today().isoformat(), "by": by, "why": why}
    check_unchanged(rec, new)
    return new


def check_unchanged(old: dict[str, Any], new: dict[str, Any]) -> None:
    """RelabelError unless `new` is `old` plus labels, a relabelling record and notes appended after the old ones."""
    added = {*LABELS, "relabelled", "notes"}
    for key in set(old) | set(new):
        if key not in added and old.get(key) != new.get(key):
            raise RelabelError(f"field {key!r} would change: relabelling changes no measured value")
    if new.get("notes", [])[: len(old.get("notes", []))] != old.get("notes", []):
        raise RelabelError("notes would change: relabelling only appends notes")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path, help="stored result JSON files")
    ap.add_argument("--instead-of", help="substitute: what the curriculum names")
    ap.add_argument("--used", help="substitute: what the measurement used instead")
    ap.add_argument("--why", help="substitute: why the real thing was not used")
    ap.add_argument("--derived-from", nargs="*", default=[], help="experiment ids whose rows these re-present")
    ap.add_argument("--facts", help=f"notes computed from the stored rows: {', '.join(FACTS)}")
    ap.add_argument("--by", required=True, help="who relabels")
    ap.add_argument("--reason", required=True, help="why the result is relabelled (e.g. the issue)")
    ap.add_argument("--date", help="date of the relabelling (default today, ISO)")
    ap.add_argument("--dry-run", action="store_true", help="print what would be written, write nothing")
    a = ap.parse_args(argv)
    sub = None
    if a.instead_of or a.used or a.why:
        sub = {"instead_of": a.instead_of or "", "used": a.used or "", "why": a.why or ""}
    outs = []
    for f in a.files:  # check every file before writing any
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
            outs.append((f, relabel(rec, by=a.by, why=a.reason, substitute=sub, derived_from=a.derived_from,
                                    facts=a.facts, date=a.date)))  # fmt: skip
        except (OSError, json.JSONDecodeError, RelabelError) as exc:
            print(f"{f}: {exc}", file=sys.stderr)
            return 2
    for f, new in outs:
        text = json.dumps(new, indent=1, ensure_ascii=False) + "\n"  # as the result store writes them
        if a.dry_run:
            print(f"--- {f}\n{text}")
        else:
            f.write_text(text, encoding="utf-8")
            print(f"relabelled {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
