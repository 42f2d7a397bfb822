"""Import the curriculum markdown into the catalogue's per-day YAML files (run once, then edited by hand).

Usage: python tools/import_curriculum.py ../shared/curriculum/000_dbc641e1d1e361f3.txt ailab/curriculum/days

Only the Chinese source fields are written; English titles/summaries, needs and deliverable mappings
are curated in the YAML files afterwards. Existing files are never overwritten (pass --force to do so).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

SECTION = {
    "🎯": "goals",
    "📌": "key_points",
    "⏱": "time_plan",
    "🖥️": "commands",
    "📂": "deliverables",
    "🔍": "questions",
    "🧪": "experiments",
}


def parse(text: str) -> list[dict]:
    days: list[dict] = []
    week = 0
    cur: dict | None = None
    section: str | None = None
    in_code = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("```"):
            in_code = not in_code
            if cur is not None and section == "commands":
                cur["commands"].append(line)
            continue
        if in_code:
            if cur is not None and section == "commands":
                cur["commands"].append(line)
            continue
        m = re.match(r"^# .*Week (\d+)", line)
        if m:
            week = int(m.group(1))
            continue
        m = re.match(r"^## \*\*Day (\d+) - (.+?)\*\*", line)
        if m:
            cur = {"day": int(m.group(1)), "week": week, "title": m.group(2).strip(), "commands": []}
            for key in SECTION.values():
                cur.setdefault(key, [])
            days.append(cur)
            section = None
            continue
        m = re.match(r"^### (\S+)", line)
        if m and cur is not None:
            section = next((v for k, v in SECTION.items() if m.group(1).startswith(k[0])), None)
            continue
        if cur is None or section is None or section == "commands":
            continue
        item = re.match(r"^\s*(?:[-*]|\d+\.)\s+(.*)$", line)
        if item:
            cur[section].append(item.group(1).strip())
    return days


def to_yaml(day: dict) -> dict:
    d = day["day"]
    return {
        "day": d,
        "week": day["week"],
        "title": {"zh": day["title"], "en": ""},
        "goals": day["goals"],
        "key_points": day["key_points"],
        "deliverables": [{"text": t, "planned": True} for t in day["deliverables"]],
        "questions": day["questions"],
        "experiments": [
            {"id": f"d{d:02d}.e{i}", "text": t, "summary": "", "needs": []} for i, t in enumerate(day["experiments"], 1)
        ],
    }


def main(argv: list[str]) -> int:
    force = "--force" in argv
    args = [a for a in argv if a != "--force"]
    src, dst = Path(args[0]), Path(args[1])
    dst.mkdir(parents=True, exist_ok=True)
    days = parse(src.read_text(encoding="utf-8"))
    for day in days:
        out = dst / f"d{day['day']:02d}.yaml"
        if out.exists() and not force:
            continue
        body = yaml.safe_dump(to_yaml(day), allow_unicode=True, sort_keys=False, width=120)
        out.write_text(
            f"# Day {day['day']} of the curriculum; imported by tools/import_curriculum.py, then curated.\n{body}",
            encoding="utf-8",
        )
    print(f"{len(days)} days, {sum(len(d['experiments']) for d in days)} experiments")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
