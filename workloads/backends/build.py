"""Compile the hot loop's Cython and C++ (pybind11) extensions with the host compiler, cached by source hash.

Both are built by `lab run` and by the tests (never by hand) into `.lab/build/backends/<hash>/`, where <hash> covers
the sources, the flags, the compiler and the Python ABI: a change rebuilds, a repeat run reuses. The directory is
what `hotloop.ngram.load(name, build_dir)` and the Python-backend models import from.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from ailab.contract import paths

HERE = Path(__file__).with_name("hotloop")
OPT_LEVELS = ("-O0", "-O1", "-O2", "-O3")


class BuildError(RuntimeError):
    """A compiler or Cython failure; carries the command and its output."""


def _compilers() -> tuple[str, str]:
    cc, cxx = shutil.which("gcc") or shutil.which("cc"), shutil.which("g++") or shutil.which("c++")
    if not cc or not cxx:
        raise BuildError("no C/C++ compiler on PATH (apt-get install g++)")
    return cc, cxx


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-4000:]}")


def _version(exe: str) -> str:
    return subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout.splitlines()[0]


def build_dir_for(opt: str = "-O3", root: Path | None = None) -> tuple[Path, str]:
    """(directory, key) the extensions built with `opt` live in."""
    if opt not in OPT_LEVELS:
        raise ValueError(f"opt {opt!r}: allowed {', '.join(OPT_LEVELS)}")
    import Cython
    import pybind11

    cc, cxx = _compilers()
    h = hashlib.sha256()
    for f in ("ngram_cy.pyx", "ngram_cpp.cpp"):
        h.update((HERE / f).read_bytes())
    for part in (opt, _version(cc), _version(cxx), Cython.__version__, pybind11.__version__, sys.version):
        h.update(part.encode())
    key = h.hexdigest()[:16]
    return (root or paths.state_dir() / "build" / "backends") / key, key


def build(opt: str = "-O3", root: Path | None = None) -> Path:
    """Build (or reuse) both extensions; returns their directory."""
    out, _ = build_dir_for(opt, root)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    names = [f"ngram_cy{suffix}", f"ngram_cpp{suffix}"]
    if all((out / n).exists() for n in names):
        return out
    import pybind11

    cc, cxx = _compilers()
    py_inc = sysconfig.get_paths()["include"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        t = Path(tmp)
        c_src = t / "ngram_cy.c"
        _run([sys.executable, "-m", "cython", "-3", str(HERE / "ngram_cy.pyx"), "-o", str(c_src)])
        common = [opt, "-shared", "-fPIC", "-fvisibility=hidden", f"-I{py_inc}"]
        _run([cc, *common, str(c_src), "-o", str(t / names[0])])
        _run(
            [
                cxx,
                *common,
                "-std=c++17",
                f"-I{pybind11.get_include()}",
                str(HERE / "ngram_cpp.cpp"),
                "-o",
                str(t / names[1]),
            ]
        )
        (t / "ngram_cy.c").unlink()
        if out.exists():  # another build finished first
            return out
        t.rename(out)
        t.mkdir()  # TemporaryDirectory cleans up a path that must exist
    return out
