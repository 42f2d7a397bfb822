"""`kubectl port-forward` to a Service or pod on a free local port, stopped on exit.

kubectl picks the local port itself (`:REMOTE`), so parallel runs never collide; the port is read from its
"Forwarding from 127.0.0.1:PORT -> REMOTE" line. Note: a port-forward to a Service reaches ONE of its pods (kubectl
resolves the Service to a pod), so load spread over replicas goes through a NodePort or the ingress gateway.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ailab.contract import Skip

_FORWARD = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")


def parse_forward(line: str) -> int | None:
    """The local port of a kubectl 'Forwarding from 127.0.0.1:PORT -> REMOTE' line, else None."""
    m = _FORWARD.search(line)
    return int(m.group(1)) if m else None


def kubectl_args(kubeconfig: str | None, context: str | None) -> list[str]:
    return [*(["--kubeconfig", kubeconfig] if kubeconfig else []), *(["--context", context] if context else [])]


@contextmanager
def port_forward(
    target: str,
    remote_port: int,
    namespace: str,
    kubeconfig: str | None = None,
    context: str | None = None,
    kubectl: str = "kubectl",
    timeout_s: float = 30.0,
) -> Iterator[int]:
    """Forward 127.0.0.1:<free port> to `target` (svc/triton, pod/x) port `remote_port`; yields the local port."""
    exe = shutil.which(kubectl)
    if exe is None:
        raise Skip(f"needs kubectl on PATH for port-forward to {target} (not found: {kubectl})")
    cmd = [exe, *kubectl_args(kubeconfig, context), "port-forward", "-n", namespace, "--address", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, target, f":{remote_port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    found: list[int] = []
    seen: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # keep draining, or kubectl blocks on a full pipe
            seen.append(line.rstrip())
            if not found and (port := parse_forward(line)) is not None:
                found.append(port)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not found:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"kubectl port-forward {target} :{remote_port} in {namespace} did not start: "
                    + (" | ".join(seen[-5:]) or "no output")
                )
            time.sleep(0.05)
        yield found[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
