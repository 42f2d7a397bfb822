"""Picture artifacts (PNG/SVG a runner wrote, e.g. dashboard panels or diagrams) copied beside a report and embedded.

A result names its artifacts as label -> path (usually under `.lab/work/<experiment>/`, which is not committed). A
picture artifact is a file ending in .png/.svg, or a directory holding such files (one picture per file, in name
order). `lab report` copies each picture to `<week>/plots/<prefix>-<label>[--<file>].<ext>` (deterministic names, the
same bytes on every re-render) and embeds it with a caption.

Where the picture comes from, in order: the artifact path itself, unless it lies under `.lab/` and was rewritten after
the result was recorded (a later run, e.g. a quick one, reuses the experiment's work directory; its picture does not
belong to this result); else the copy already committed under reports/weekNN/plots/ (so a checkout without `.lab/`
renders the same report); else the copy already in the output folder. With none of them the report names the missing
picture: a render never fails on a missing artifact.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from ailab.contract.paths import REPO_ROOT, portable, reports_dir, state_dir
from ailab.report.plots import slug

PICTURE_SUFFIXES = (".png", ".svg")
REWRITE_SLACK_S = 5.0  # a file modified this long after the result's end was written by a later run


def is_picture(path: str | Path) -> bool:
    return Path(path).suffix.lower() in PICTURE_SUFFIXES


def _resolve(path: str) -> Path:
    """The file a recorded path names here: itself when it exists, else its repository-relative form in this
    checkout (a result recorded in another clone of the lab)."""
    p = Path(path)
    if p.is_absolute() and p.exists():
        return p
    q = Path(portable(path))
    return q if q.is_absolute() else REPO_ROOT / q


def _epoch(utc: str | None) -> float | None:
    if not utc:
        return None
    try:
        return datetime.fromisoformat(utc).timestamp()
    except ValueError:
        return None


def _fresh(src: Path, recorded: float | None) -> bool:
    """The file exists and, when it lies in the lab's scratch space (`.lab/`, reused by every later run of the
    experiment), was not rewritten after the result was recorded. A picture elsewhere (docs/diagrams/, committed and
    versioned by git, its mtime set by the checkout) is shown as it is now."""
    try:
        mtime = src.stat().st_mtime
    except OSError:
        return False
    if recorded is None or not src.resolve().is_relative_to(state_dir().resolve()):
        return True
    return mtime <= recorded + REWRITE_SLACK_S


def _copies(name_glob: str, out_dir: Path, committed: Path) -> list[str]:
    """Names of copies made by an earlier render (committed ones, or ones in the output folder)."""
    names = {p.name for d in (committed, out_dir / "plots") if d.is_dir() for p in d.glob(name_glob)}
    return sorted(n for n in names if is_picture(n))


def _place(name: str, src: Path | None, out_dir: Path, committed: Path, draw: bool) -> bool:
    """Put the picture `name` into out_dir/plots (when drawing) from `src` or an earlier copy; False if none exists."""
    dest = out_dir / "plots" / name
    origin = src if src is not None else next((c for c in (committed / name, dest) if c.is_file()), None)
    if origin is None:
        return False
    if draw and (not dest.is_file() or dest.read_bytes() != origin.read_bytes()):
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, dest)
    return True


def _embed(name: str, alt: str, source: str) -> list[str]:
    return [f"![{alt}](plots/{name})", "", f"_{alt} (`{source}`)_", ""]


def picture_artifacts(
    artifacts: dict[str, str],
    prefix: str,
    out_dir: Path,
    *,
    draw: bool = True,
    recorded_utc: str | None = None,
    committed_dir: Path | None = None,
) -> tuple[list[str], dict[str, str]]:
    """(markdown embedding every picture artifact, the artifacts that are not pictures).

    `prefix` names the copies (e.g. `d17.e5-cpu`), `out_dir` is the week folder the report is written to,
    `recorded_utc` is the result's end time (pictures rewritten after it are not this result's), `committed_dir`
    the committed plots folder to fall back on (default: reports/<out_dir's name>/plots in the repository).
    """
    committed = committed_dir or reports_dir() / out_dir.name / "plots"
    recorded = _epoch(recorded_utc)
    md: list[str] = []
    others: dict[str, str] = {}
    for label, path in artifacts.items():
        src = _resolve(path)
        base = f"{prefix}-{slug(label) or 'artifact'}"
        if is_picture(path):
            name = base + src.suffix.lower()
            fresh = _fresh(src, recorded)
            if _place(name, src if fresh else None, out_dir, committed, draw):
                md += _embed(name, label, portable(path))
            else:
                why = "was rewritten by a later run" if src.exists() else "was not found"
                md += [
                    f"- picture artifact {label}: `{portable(path)}` {why} when this report was rendered; "
                    "re-run the experiment to show it.",
                    "",
                ]
            continue
        if src.is_dir():
            files = sorted(p for p in src.iterdir() if p.is_file() and is_picture(p))
            if not files:
                others[label] = path
                continue
            stale = [p.name for p in files if not _fresh(p, recorded)]
            pics = {f"{base}--{slug(p.stem) or 'picture'}{p.suffix.lower()}": (None if stale else p) for p in files}
        else:  # the directory is gone (another checkout, a cleaned .lab/): the copies an earlier render made
            stale = []
            pics = dict.fromkeys(_copies(f"{base}--*", out_dir, committed))
            if not pics:
                others[label] = path
                continue
        shown = 0
        for name, pic in pics.items():
            if _place(name, pic, out_dir, committed, draw):
                md += _embed(name, f"{label}: {name.split('--', 1)[1]}", portable(path))
                shown += 1
        if shown < len(pics) or stale:
            why = f"{len(stale)} of its pictures were rewritten by a later run" if stale else "pictures are missing"
            md += [
                f"- picture artifact {label}: `{portable(path)}`: {why}; {shown} of {len(pics)} shown "
                "from an earlier render. Re-run the experiment to refresh them.",
                "",
            ]
    return md, others


__all__ = ["PICTURE_SUFFIXES", "is_picture", "picture_artifacts"]
