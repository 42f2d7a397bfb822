"""The real promtool and amtool binaries (Debian's prometheus / prometheus-alertmanager packages)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml


class ToolMissingError(RuntimeError):
    """promtool or amtool is not installed."""


def binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise ToolMissingError(f"{name}: not found on PATH (apt-get install prometheus prometheus-alertmanager)")
    return found


def run(name: str, *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run promtool/amtool; (exit code, stdout+stderr)."""
    p = subprocess.run([binary(name), *args], capture_output=True, text=True, timeout=timeout, check=False)
    return p.returncode, (p.stdout + p.stderr).strip()


def check_exprs(exprs: dict[str, str]) -> dict[str, str]:
    """PromQL expressions (name -> expr) that do not parse, with promtool's message; {} when all parse.

    promtool checks a rules file as a whole, so the failing ones are found by checking each alone.
    """

    def check(items: dict[str, str]) -> tuple[int, str]:
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "exprs.yaml"
            rules = [{"record": f"check:expr_{i}", "expr": e} for i, e in enumerate(items.values())]
            f.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
            return run("promtool", "check", "rules", str(f))

    rc, _ = check(exprs)
    if rc == 0:
        return {}
    bad = {}
    for name, e in exprs.items():
        rc, out = check({name: e})
        if rc != 0:
            bad[name] = out.splitlines()[-1] if out else "does not parse"
    return bad


def check_config(path: Path) -> tuple[int, str]:
    """`promtool check config`; Debian's Prometheus is built without Kubernetes discovery, so a config that
    uses it is checked with each `kubernetes_sd_configs` swapped for an empty static config (relabeling,
    rule files and everything else are still checked)."""
    cfg = yaml.safe_load(path.read_text()) or {}
    jobs = cfg.get("scrape_configs", []) or []
    if not any("kubernetes_sd_configs" in j for j in jobs):
        return run("promtool", "check", "config", str(path))
    for j in jobs:
        if j.pop("kubernetes_sd_configs", None) is not None:
            j["static_configs"] = [{"targets": []}]
    tmp = path.with_name(f".{path.stem}.no-k8s-sd.yaml")  # beside the original: rule_files are relative to it
    try:
        tmp.write_text(yaml.safe_dump(cfg))
        return run("promtool", "check", "config", str(tmp))
    finally:
        tmp.unlink(missing_ok=True)
