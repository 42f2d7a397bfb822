"""Where a Triton C++ custom backend's build inputs would come from, and what the running server expects (d31).

A backend is a shared library built against `tritonbackend.h` / `tritonserver.h` (+ `tritoncommon`'s headers) of the
server's release; it resolves the TRITONBACKEND_* / TRITONSERVER_* symbols from the server at load. This module
looks for those headers in every installed Python distribution, in the system include directories and in the
installed Debian packages, and asks the server's own library for the API versions it implements.
"""

from __future__ import annotations

import importlib.metadata as md
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HEADERS = ("tritonbackend.h", "tritonserver.h")
SYSTEM_DIRS = (Path("/usr/include"), Path("/usr/local/include"), Path("/opt"))


@dataclass
class Probe:
    found: dict[str, list[str]] = field(default_factory=dict)  # header -> paths
    looked_in: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # what is installed (distribution -> version)
    server_api: dict[str, str] = field(default_factory=dict)  # TRITONBACKEND / TRITONSERVER -> "major.minor"

    @property
    def complete(self) -> bool:
        return all(self.found.get(h) for h in HEADERS)

    def summary(self) -> str:
        found = "; ".join(f"{h}: {', '.join(p) if p else 'not found'}" for h, p in self.found.items())
        api = ", ".join(f"{k} API {v}" for k, v in self.server_api.items()) or "unknown"
        inst = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        return f"{found}. Looked in: {'; '.join(self.looked_in)}. Installed: {inst}. The server implements {api}."


def _in_distributions(probe: Probe) -> None:
    n = 0
    for dist in md.distributions():
        n += 1
        for f in dist.files or ():
            if f.name in HEADERS:
                probe.found[f.name].append(str(dist.locate_file(f)))
    probe.looked_in.append(f"the file lists of all {n} installed Python distributions")


def _in_system_dirs(probe: Probe) -> None:
    for d in SYSTEM_DIRS:
        if not d.is_dir():
            continue
        for h in HEADERS:
            probe.found[h] += [str(p) for p in d.rglob(h)]
        probe.looked_in.append(str(d))


def _in_debian(probe: Probe) -> None:
    if not shutil.which("dpkg"):
        return
    for h in HEADERS:
        r = subprocess.run(["dpkg", "-S", h], capture_output=True, text=True, check=False)
        probe.found[h] += [line.split(": ", 1)[1] for line in r.stdout.splitlines() if ": " in line]
    probe.looked_in.append("the files of installed Debian packages (dpkg -S)")
    if shutil.which("apt-cache"):
        r = subprocess.run(
            ["apt-cache", "search", "--names-only", "triton"], capture_output=True, text=True, check=False
        )
        names = [line.split(" - ")[0] for line in r.stdout.splitlines()]
        probe.looked_in.append(f"Debian package names with 'triton' (apt-cache): {', '.join(names) or 'none'}")


_API_SCRIPT = """
import ctypes, glob, sys
lib = ctypes.CDLL(glob.glob(sys.argv[1] + '/libtritonserver-*.so')[0])
for name in ('TRITONBACKEND', 'TRITONSERVER'):
    fn = getattr(lib, name + '_ApiVersion'); fn.restype = ctypes.c_void_p
    a, b = ctypes.c_uint32(), ctypes.c_uint32()
    if fn(ctypes.byref(a), ctypes.byref(b)) is None:
        print(name, f'{a.value}.{b.value}')
"""


def _server_api(probe: Probe) -> None:
    """Call TRITONBACKEND_ApiVersion / TRITONSERVER_ApiVersion in pytriton's libtritonserver (a child process: the
    library needs its bundled dependencies on LD_LIBRARY_PATH)."""
    try:
        import pytriton
    except ImportError:
        return
    libs = Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"
    r = subprocess.run(
        [sys.executable, "-c", _API_SCRIPT, str(libs)],
        capture_output=True,
        text=True,
        env={"LD_LIBRARY_PATH": str(libs), "PATH": ""},
        timeout=60,
        check=False,
    )
    for line in r.stdout.splitlines():
        k, v = line.split()
        probe.server_api[k] = v


def probe() -> Probe:
    """Look everywhere this host could supply the backend API headers from; ask the server for its API versions."""
    p = Probe(found={h: [] for h in HEADERS})
    for name in ("nvidia-pytriton", "tritonclient", "tritonserver", "tritonfrontend"):
        try:
            p.versions[name] = md.version(name)
        except md.PackageNotFoundError:
            p.versions[name] = "not installed"
    _in_distributions(p)
    _in_system_dirs(p)
    _in_debian(p)
    _server_api(p)
    return p
