"""The planes stay apart: `workloads` imports only the contract floor of `ailab`, the floor imports nothing above
it, and the control plane never imports the data plane except where `lab` hands a command to a data-plane tool.

Checked on the source (AST, function-level imports included), so a late import cannot hide a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from ailab.contract.paths import REPO_ROOT

# `lab bench`, `lab images`, `lab models`, `lab up` (the week's model repository) are command-line front-ends of
# data-plane tools.
CLI_FRONT_ENDS = {
    "ailab/commands/bench.py",
    "ailab/commands/images.py",
    "ailab/commands/models.py",
    "ailab/commands/platform.py",
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _py(folder: str) -> list[Path]:
    return sorted((REPO_ROOT / folder).rglob("*.py"))


def _rel(p: Path) -> str:
    return str(p.relative_to(REPO_ROOT))


def test_workloads_import_only_the_contract_from_ailab() -> None:
    bad = [
        f"{_rel(p)}:{line} imports {mod}"
        for p in _py("workloads")
        for line, mod in _imports(p)
        if (mod == "ailab" or mod.startswith("ailab."))
        and not (mod == "ailab.contract" or mod.startswith("ailab.contract."))
    ]
    assert not bad, "workloads may import only ailab.contract:\n" + "\n".join(bad)


def test_the_contract_imports_nothing_above_it() -> None:
    bad = [
        f"{_rel(p)}:{line} imports {mod}"
        for p in _py("ailab/contract")
        for line, mod in _imports(p)
        if mod.startswith("workloads") or (mod.startswith("ailab.") and not mod.startswith("ailab.contract"))
    ]
    assert not bad, "\n".join(bad)


def test_the_control_plane_does_not_import_the_data_plane() -> None:
    bad = [
        f"{_rel(p)}:{line} imports {mod}"
        for p in _py("ailab")
        if _rel(p) not in CLI_FRONT_ENDS
        for line, mod in _imports(p)
        if mod == "workloads" or mod.startswith("workloads.")
    ]
    assert not bad, "ailab reads data files or loads runners by name, never imports workloads:\n" + "\n".join(bad)


HEAVY = ("torch", "onnxruntime", "onnx", "tritonclient", "transformers", "cupy", "tensorrt", "sklearn")


def test_runner_modules_import_cheaply() -> None:
    """The catalogue imports every runner module to validate parameters: heavy libraries load inside runners."""
    mods = sorted(
        ".".join(p.relative_to(REPO_ROOT).with_suffix("").parts)
        for p in (REPO_ROOT / "workloads").glob("*/experiments/*.py")
        if p.name != "__init__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        f"print(sorted(h for h in {HEAVY!r} if h in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == "[]", f"runner modules pulled in {out.stdout.strip()} at import"
