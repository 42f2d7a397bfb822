"""HAProxy's runtime API over its UNIX socket (`set weight`, `get weight`, `show stat`) and its Prometheus endpoint."""

from __future__ import annotations

import asyncio
import csv
import io
import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


class GatewayAPIError(RuntimeError):
    """HAProxy refused a runtime command; the message is its answer."""


def command(sock_path: str, cmd: str, timeout_s: float = 5.0) -> str:
    """Send one command, return HAProxy's answer (the socket closes after it in non-interactive mode)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(sock_path)
        s.sendall(cmd.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def set_weight(sock_path: str, backend: str, server: str, weight: int) -> None:
    answer = command(sock_path, f"set weight {backend}/{server} {weight}").strip()
    if answer:  # HAProxy answers nothing on success
        raise GatewayAPIError(f"set weight {backend}/{server} {weight}: {answer}")


def set_weights_now(sock_path: str, backend: str, weights: dict[str, int]) -> None:
    """Several weights in one runtime-API session (`cmd1; cmd2`): applied back to back, one answer."""
    cmd = "; ".join(f"set weight {backend}/{server} {w}" for server, w in weights.items())
    answer = command(sock_path, cmd).strip()
    if answer:
        raise GatewayAPIError(f"{cmd}: {answer}")


async def set_weights(sock_path: str, backend: str, weights: dict[str, int]) -> None:
    """set_weights_now from inside an event loop without blocking it."""
    await asyncio.to_thread(set_weights_now, sock_path, backend, weights)


def get_weight(sock_path: str, backend: str, server: str) -> int:
    """Current weight (HAProxy answers `<current> (initial <initial>)`)."""
    answer = command(sock_path, f"get weight {backend}/{server}").strip()
    try:
        return int(answer.split()[0])
    except (IndexError, ValueError):
        raise GatewayAPIError(f"get weight {backend}/{server}: {answer}") from None


def show_stat(sock_path: str) -> list[dict[str, str]]:
    """`show stat` as rows (pxname, svname, stot, hrsp_2xx, weight, status, ...)."""
    text = command(sock_path, "show stat").lstrip("# ")
    return list(csv.DictReader(io.StringIO(text)))


def scrape(url: str, timeout_s: float = 5.0) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exporter: (name, sorted labels) -> value."""
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def server_values(samples: dict, name: str, proxy: str, **match: str) -> dict[str, float]:
    """{server: value} of metric `name` for the servers of backend `proxy` (extra labels must match)."""
    out: dict[str, float] = {}
    for (n, labels), v in samples.items():
        lab = dict(labels)
        if n == name and lab.get("proxy") == proxy and all(lab.get(k) == x for k, x in match.items()):
            out[lab["server"]] = out.get(lab["server"], 0.0) + v
    return out
