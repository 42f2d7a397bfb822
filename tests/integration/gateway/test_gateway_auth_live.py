"""Real HAProxy terminating TLS (lab CA) and verifying RS256 tokens in front of a real tritonserver; nothing mocked.
Every kind of bad token must get 401 without reaching Triton, and the audit log must hold one JSON line per request
and never a token."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ailab.contract import Context
from ailab.local.services import haproxy
from ailab.runner import local_platform
from workloads.gateway import auth, load
from workloads.gateway.stack import Gateway, gateway, security_spec

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(haproxy.binary() is None, reason="haproxy not installed (apt-get install haproxy)"),
]


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[tuple[Gateway, auth.Pki, auth.Pki]]:
    work = tmp_path_factory.mktemp("gwsec")
    pki, other = auth.make_pki(work / "pki"), auth.make_pki(work / "other")
    ctx = Context(experiment_id="test", device="cpu", quick=True, workdir=work, platform=local_platform)
    with gateway(ctx, security_spec(pki)) as g:
        yield g, pki, other


def send(gw: Gateway, pki: auth.Pki, headers_list: list[dict[str, str]]) -> list[load.Sample]:
    async def go() -> list[load.Sample]:
        sc = ssl.create_default_context(cafile=str(pki.ca_cert))
        async with load.Client(gw.url("secure", scheme="https"), ssl=sc, fresh_connections=True) as c:
            return [await c.one(time.perf_counter(), headers={**c.headers, **h}) for h in headers_list]

    return asyncio.run(go())


def test_good_token_passes_and_every_bad_one_gets_401(secured):
    gw, pki, other = secured
    cases = list(auth.CASES)
    samples = send(gw, pki, [auth.case_headers(pki, c, other) for c in cases])
    got = {c: (s.status, s.version) for c, s in zip(cases, samples, strict=True)}
    assert got["good"][0] == 200 and got["good"][1]
    assert {c: st for c, (st, _) in got.items() if c != "good"} == {c: 401 for c in cases if c != "good"}
    assert all(not v for c, (_, v) in got.items() if c != "good")  # nothing refused reached Triton


def test_audit_log_has_a_json_line_per_request_and_no_token(secured):
    gw, pki, _ = secured
    log = Path(gw.log)
    start = log.stat().st_size
    tokens = [auth.token(pki, sub="carol"), auth.token(pki, sub="dave", ttl_s=-60)]
    samples = send(gw, pki, [{"Authorization": f"Bearer {t}"} for t in tokens])
    assert [s.status for s in samples] == [200, 401]
    time.sleep(0.3)
    text = log.read_bytes()[start:].decode()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert [(e["sub"], e["status"]) for e in lines] == [("carol", 200), ("-", 401)]
    assert all(e["path"] == "/v2/models/mlp/infer" for e in lines)
    assert not any(t in text or t.split(".")[2] in text for t in tokens)


def test_tls_frontend_needs_the_lab_ca(secured):
    gw, _, _ = secured

    async def go() -> load.Sample:
        async with load.Client(gw.url("secure", scheme="https"), ssl=ssl.create_default_context()) as c:
            return await c.one(time.perf_counter())

    assert asyncio.run(go()).status == 0  # the certificate is not trusted without the lab CA
