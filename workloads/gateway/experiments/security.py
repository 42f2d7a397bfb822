"""TLS, JWT and the audit log at the gateway (d74.e1-e5): HAProxy terminates TLS with a lab CA's certificate, verifies
RS256 bearer tokens (signature with jwt_verify; exp, aud, iss from the payload) and writes one JSON line per request.

One HAProxy with four frontends on the same Triton (workloads/gateway/stack.py security_spec): plain, TLS only,
JWT only, TLS + JWT + audit log. The PKI and keys are generated per run under the run's work dir (0600).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from ailab.contract import Context, Output, Params, Table
from workloads.gateway import load
from workloads.gateway.experiments import Int
from workloads.gateway.stack import gateway, security_spec

Case = Literal[
    "good",
    "missing",
    "malformed",
    "tampered",
    "alg_none",
    "hs256_confusion",
    "wrong_key",
    "expired",
    "wrong_audience",
    "wrong_issuer",
]


def _ssl(ca: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    return ctx


def _pki(ctx: Context):
    from workloads.gateway import auth

    return auth.make_pki(ctx.workdir / "pki"), auth.make_pki(ctx.workdir / "pki-other")


# --- d74.e1, d74.e3: which tokens get through -----------------------------------------------------------------
class TokenParams(Params):
    cases: list[Case] = Field(default=["good"], min_length=1, description="token cases sent (auth.CASES)")
    requests: Annotated[Int, Field(ge=1, le=10_000)] = Field(default=50, description="per case")
    frontend: Literal["jwt", "secure"] = Field(default="secure", description="JWT over plain HTTP, or TLS + JWT")


def token_cases(ctx: Context, p: TokenParams) -> Output:
    """Each token case sent `requests` times: statuses, whether the gateway's answer says why (it must not)."""
    from workloads.gateway import auth

    pki, other = _pki(ctx)
    t = Table.of(
        "tokens",
        [
            ("case", ""),
            ("what", ""),
            ("requests", ""),
            ("status", ""),
            ("expected", ""),
            ("as_expected", ""),
            ("reached_triton", ""),
            ("detail_leaked", ""),
            ("p50", "ms"),
        ],
        caption="one fresh connection per request (p50 includes the TLS handshake); status: the distinct HTTP "
        "statuses seen; reached_triton: answers carrying a model_version; "
        "detail_leaked: a refusal whose body names the reason (token, expired, audience, issuer, signature, alg)",
    )
    with gateway(ctx, security_spec(pki)) as gw:
        scheme = "https" if p.frontend == "secure" else "http"
        url = gw.url(p.frontend, scheme=scheme)

        async def go() -> dict[str, tuple[list[load.Sample], list[str]]]:
            out = {}
            async with load.Client(url, ssl=_ssl(pki.ca_cert), fresh_connections=True) as c:
                for case in p.cases:
                    samples, bodies = [], []
                    for _ in range(p.requests):
                        h = {**c.headers, **auth.case_headers(pki, case, other)}
                        samples.append(await c.one(time.perf_counter(), headers=h))
                        if samples[-1].status != 200 and len(bodies) < 3:
                            bodies.append(await _body(c, h))
                    out[case] = (samples, bodies)
            return out

        res = asyncio.run(go())
    words = ("token", "expired", "audience", "issuer", "signature", "alg")
    for case, (ss, bodies) in res.items():
        statuses = sorted({s.status for s in ss})
        want = 200 if case == "good" else 401
        t.add(
            case,
            auth.CASES[case],
            len(ss),
            "/".join(map(str, statuses)),
            want,
            statuses == [want],
            sum(1 for s in ss if s.version),
            any(w in b for b in bodies for w in words),
            round(load.percentile([s.latency_ms for s in ss], 50), 3),
        )
    return Output(
        tables=[t],
        notes=[
            f"frontend {p.frontend}: {'TLS + ' if p.frontend == 'secure' else ''}JWT RS256 with jwt_verify; exp, aud "
            "and iss checked from the payload with jwt_payload_query (jwt_verify checks only the signature)",
        ],
    )


async def _body(c: load.Client, headers: dict[str, str]) -> str:
    """The answer's body, lower-cased (HAProxy closes the connection after a deny: retry once on a fresh one)."""
    for _ in range(2):
        try:
            return (await c.post(headers))[1].decode(errors="replace").lower()
        except (TimeoutError, OSError, ValueError):
            continue
    return ""


# --- d74.e2: TLS with the lab CA -------------------------------------------------------------------------------
class TlsParams(Params):
    handshakes: Annotated[Int, Field(ge=1, le=2000)] = Field(default=100, description="fresh connections timed")


def tls_check(ctx: Context, p: TlsParams) -> Output:
    """The TLS frontend: protocol, cipher, certificate chain to the lab CA, refusals, fresh-connection cost."""
    import socket

    pki, _ = _pki(ctx)
    t = Table.of("tls", [("check", ""), ("result", ""), ("ok", "")])
    h = Table.of(
        "connect",
        [("frontend", ""), ("connections", ""), ("p50", "ms"), ("p99", "ms")],
        caption="a fresh TCP connect (plain) or TCP connect + TLS handshake (tls), with no request sent",
    )
    with gateway(ctx, security_spec(pki)) as gw:
        port_tls, port_plain = gw.plat.port("haproxy", "tls"), gw.plat.port("haproxy", "plain")
        sc = _ssl(pki.ca_cert)
        with (
            socket.create_connection(("127.0.0.1", port_tls), timeout=5) as raw,
            sc.wrap_socket(raw, server_hostname="127.0.0.1") as s,
        ):
            version, cipher = s.version(), s.cipher()
            peer = s.getpeercert()
        subject = dict(x[0] for x in peer["subject"])
        issuer = dict(x[0] for x in peer["issuer"])
        t.add("protocol", version, version in ("TLSv1.2", "TLSv1.3"))
        t.add("cipher", f"{cipher[0]} ({cipher[2]} bits)", cipher[2] >= 128)
        t.add("server certificate", f"CN={subject.get('commonName')} issued by {issuer.get('commonName')}", True)
        t.add("verified against the lab CA (hostname 127.0.0.1)", "yes", True)
        try:
            with (
                socket.create_connection(("127.0.0.1", port_tls), timeout=5) as raw,
                ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                refused = "no: connected"
        except ssl.SSLCertVerificationError as exc:
            refused = f"yes: {exc.verify_message}"
        t.add("client without the lab CA refuses the certificate", refused, refused.startswith("yes"))
        plain_to_tls = _plain_http_status(port_tls)
        t.add("plain HTTP to the TLS port", plain_to_tls, not plain_to_tls.startswith("200"))

        async def infer() -> load.Sample:
            async with load.Client(gw.url("tls", scheme="https"), ssl=sc) as c:
                return await c.one(time.perf_counter())

        s = asyncio.run(infer())
        t.add("inference over TLS", f"HTTP {s.status}, model_version {s.version or '-'}", s.status == 200)
        for name, port, wrap in (("plain", port_plain, False), ("tls", port_tls, True)):
            lat = []
            for _ in range(p.handshakes):
                t0 = time.perf_counter()
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                    if wrap:
                        with sc.wrap_socket(raw, server_hostname="127.0.0.1"):
                            pass
                lat.append(1e3 * (time.perf_counter() - t0))
            h.add(name, len(lat), round(load.percentile(lat, 50), 3), round(load.percentile(lat, 99), 3))
    return Output(
        tables=[t, h],
        notes=[
            "the lab CA and the server certificate (CN and IP SAN 127.0.0.1, RSA 2048, valid 2 days) are generated "
            "for each run under the run's work dir with mode 0600; HAProxy gets them bundled in a 0600 file"
        ],
    )


def _plain_http_status(port: int) -> str:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = s.recv(200)
    except OSError as exc:
        return f"connection error ({type(exc).__name__})"
    if not data:
        return "connection closed without an HTTP answer"
    first = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return first.split(" ", 1)[1] if first.startswith("HTTP/") else "not HTTP"


# --- d74.e4: the audit log ----------------------------------------------------------------------------------
class AuditParams(Params):
    subjects: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]] = Field(
        default=["alice", "bob"], min_length=1
    )
    requests: Annotated[Int, Field(ge=1, le=5000)] = Field(default=20, description="per subject, plus as many bad")


def audit_log(ctx: Context, p: AuditParams) -> Output:
    """Requests as several subjects (and refused ones); HAProxy's JSON lines read back: one per request, no token."""
    from workloads.gateway import auth

    pki, _ = _pki(ctx)
    sent: list[tuple[str, int, str]] = []  # subject, status, token
    with gateway(ctx, security_spec(pki)) as gw:
        url = gw.url("secure", scheme="https")
        log = Path(gw.log)
        start = log.stat().st_size

        async def go() -> None:
            async with load.Client(url, ssl=_ssl(pki.ca_cert), fresh_connections=True) as c:
                for sub in p.subjects:
                    for _ in range(p.requests):
                        tok = auth.token(pki, sub=sub)
                        s = await c.one(time.perf_counter(), headers={**c.headers, "Authorization": f"Bearer {tok}"})
                        sent.append((sub, s.status, tok))
                for _ in range(p.requests):
                    h = auth.case_headers(pki, "expired")
                    s = await c.one(time.perf_counter(), headers={**c.headers, **h})
                    sent.append(("(expired)", s.status, h["Authorization"].split()[1]))

        asyncio.run(go())
        time.sleep(0.5)  # HAProxy writes the log line when the request ends; let stdout reach the file
        text = log.read_bytes()[start:].decode(errors="replace")
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"unparsable": line})
    t = Table.of(
        "audit",
        [("subject", ""), ("requests", ""), ("statuses", ""), ("log_lines", ""), ("log_statuses", "")],
        caption="log_lines: JSON lines of the secure frontend whose sub is the subject (refused tokens log no sub)",
    )
    for sub in [*p.subjects, "(expired)"]:
        mine = [s for s in sent if s[0] == sub]
        logged = [e for e in lines if (e.get("sub") or "-") == ("-" if sub == "(expired)" else sub)]
        t.add(
            sub,
            len(mine),
            "/".join(sorted({str(s[1]) for s in mine})),
            len(logged),
            "/".join(sorted({str(entry.get("status")) for entry in logged})),
        )
    leaked = sum(1 for _, _, tok in sent if tok in text or tok.split(".")[2] in text)
    fields = sorted(set().union(*(entry.keys() for entry in lines))) if lines else []
    s = Table.of("checks", [("check", ""), ("value", ""), ("ok", "")])
    s.add("requests sent / JSON lines written", f"{len(sent)} / {len(lines)}", len(sent) == len(lines))
    s.add("lines that do not parse as JSON", sum(1 for e in lines if "unparsable" in e), True)
    s.add("tokens (or their signatures) found in the log", leaked, leaked == 0)
    s.add("fields of a line", ", ".join(fields), {"sub", "status", "path", "t_total_ms"} <= set(fields))
    return Output(
        tables=[s, t],
        notes=["an audit line per request, written by HAProxy's log-format (frontend secure), never a header value"],
    )


# --- d74.e5: what TLS and JWT cost per request ------------------------------------------------------------
class OverheadParams(Params):
    concurrency: Annotated[Int, Field(ge=1, le=256)] = 8
    requests: Annotated[Int, Field(ge=100, le=100_000)] = Field(default=2000, description="per frontend per round")
    rounds: Annotated[Int, Field(ge=1, le=20)] = Field(default=3, description="frontends interleaved, each round")


def auth_overhead(ctx: Context, p: OverheadParams) -> Output:
    """Latency through plain, TLS, JWT and TLS + JWT frontends of one gateway, interleaved in the same run."""
    from workloads.gateway import auth

    pki, _ = _pki(ctx)
    fronts = [("plain", "http", False), ("tls", "https", False), ("jwt", "http", True), ("secure", "https", True)]
    runs: dict[str, list[load.Run]] = {f: [] for f, _, _ in fronts}
    with gateway(ctx, security_spec(pki)) as gw:

        async def one(front: str, scheme: str, jwt: bool) -> load.Run:
            hdr = {"Authorization": f"Bearer {auth.token(pki, ttl_s=3600)}"} if jwt else {}
            async with load.Client(gw.url(front, scheme=scheme), headers=hdr, ssl=_ssl(pki.ca_cert)) as c:
                await load.closed_loop(c, p.concurrency, p.concurrency * 4, 10)
                return await load.closed_loop(c, p.concurrency, p.requests, 120)

        for _ in range(p.rounds):
            for f, scheme, jwt in fronts:
                runs[f].append(asyncio.run(one(f, scheme, jwt)))
    t = Table.of(
        "overhead",
        [
            ("frontend", ""),
            ("requests", ""),
            ("failed", ""),
            ("p50", "ms"),
            ("p99", "ms"),
            ("throughput", "req/s"),
            ("p50_vs_plain", "ms"),
            ("p99_vs_plain", "ms"),
            ("client_cpu", "us/req"),
        ],
        caption="keep-alive connections (the handshake is paid once per connection: see d74.e2 for its cost); "
        f"{p.rounds} interleaved rounds per frontend pooled",
    )
    base: dict[str, float] = {}
    for f, _, _ in fronts:
        ss = [s for r in runs[f] for s in r.samples]
        ok = [s.latency_ms for s in ss if s.status == 200]
        p50, p99 = load.percentile(ok, 50), load.percentile(ok, 99)
        base = base or {"p50": p50, "p99": p99}
        wall = sum(r.wall_s for r in runs[f])
        cpu = 1e6 * sum(r.cpu_s for r in runs[f]) / max(1, len(ss))
        t.add(
            f,
            len(ss),
            sum(1 for s in ss if s.status != 200),
            round(p50, 3),
            round(p99, 3),
            round(len(ok) / wall, 1),
            round(p50 - base["p50"], 3),
            round(p99 - base["p99"], 3),
            round(cpu, 1),
        )
    return Output(
        tables=[t],
        notes=[
            "the same HAProxy process and Triton serve all four frontends; rounds interleave them so that host load "
            "drifts hit each alike (host shared: 2 cores, other agents)",
        ],
    )
