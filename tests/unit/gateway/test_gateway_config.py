"""The HAProxy config generator: a GatewaySpec becomes haproxy.cfg text that `haproxy -c` accepts; bad values are
refused before anything is written, naming the field. No process is started here (only `haproxy -c`, skipped where
HAProxy is not installed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ailab.contract import Skip
from ailab.local.registry import PlatformError
from ailab.local.services import haproxy
from ailab.local.spec import PlatformContext
from workloads.gateway import stack

needs_haproxy = pytest.mark.skipif(haproxy.binary() is None, reason="haproxy not installed (apt-get install haproxy)")


def write_pki(d: Path, days: float = 1.0) -> dict[str, Path]:
    """A self-signed certificate for 127.0.0.1 valid `days` from now (negative: expired), its key and public key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    files = {"cert": d / "cert.pem", "key": d / "key.pem", "pub": d / "pub.pem"}
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files["pub"].write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return files


def full_spec(pki: dict[str, Path]) -> dict:
    """Every feature of the generator at once: canary versions, TLS + JWT + JSON log, a header-keyed rate limit."""
    spec = stack.canary_spec({1: 70, 2: 30})
    spec["frontends"][0] |= {"tls": True, "jwt": True, "access_log": True, "rate_limit": {"requests": 100}}
    spec["frontends"].append(
        {"name": "keyed", "default_backend": "triton_v1", "rate_limit": {"requests": 5, "key": "header:X-Api-Key"}}
    )
    spec["tls"] = {"cert": str(pki["cert"]), "key": str(pki["key"])}
    spec["jwt"] = {"public_key": str(pki["pub"]), "audience": "lab", "issuer": "ailab"}
    return spec


def ctx_for(tmp_path: Path) -> PlatformContext:
    return PlatformContext(week=6, state_dir=tmp_path / "st", free_ports=True)


def test_spec_renders_weighted_servers_rewrites_and_the_exporter(tmp_path):
    ctx = ctx_for(tmp_path)
    ctx.ports["triton.http"] = 18000
    text = haproxy.render(haproxy.parse_spec(stack.canary_spec({1: 70, 2: 30})), ctx, tmp_path)
    v1, v2 = ctx.ports["haproxy.v1"], ctx.ports["haproxy.v2"]
    assert f"    server v1 127.0.0.1:{v1} weight 70" in text
    assert f"    server v2 127.0.0.1:{v2} weight 30" in text
    assert "http-request replace-path '^/v2/models/([^/]+)/(infer|ready)$' '/v2/models/\\1/versions/2/\\2'" in text
    assert text.count("server triton 127.0.0.1:18000 weight 1") == 2  # both version backends reach Triton
    assert "http-request use-service prometheus-exporter if { path /metrics }" in text
    assert f"stats socket {tmp_path / 'runtime.sock'} mode 600 level admin" in text
    assert "    http-response set-header X-Served-By %s" in text
    assert all(
        line.split()[1].startswith("127.0.0.1:") for line in text.splitlines() if line.strip().startswith("bind")
    )


def test_rate_limit_counts_admitted_requests_only(tmp_path):
    spec = stack.limit_spec(150)
    text = haproxy.render(haproxy.parse_spec(spec), ctx_for(tmp_path), tmp_path)
    limited = text.split("frontend limited", 1)[1].split("\n\n", 1)[0]
    assert "store gpc0_rate(1s)" in limited
    deny = limited.index("deny deny_status 429 if { sc_gpc0_rate(0) ge 150 }")
    assert deny < limited.index("http-request sc-inc-gpc0(0)")  # refused requests are not counted
    assert "rate" not in text.split("frontend open", 1)[1].split("\n\n", 1)[0]


def test_jwt_rules_check_signature_expiry_audience_and_issuer(tmp_path):
    pki = write_pki(tmp_path)
    text = haproxy.render(haproxy.parse_spec(full_spec(pki)), ctx_for(tmp_path), tmp_path)
    assert f"jwt_verify(txn.jwt_alg,'{pki['pub']}') -m int 1" in text
    assert "unless { var(txn.jwt_alg) -m str RS256 }" in text  # alg: none and HS256 refused
    assert "if { var(txn.jwt_exp),sub(txn.now) -m int le 0 }" in text
    assert "unless { var(txn.jwt_aud) -m str lab }" in text
    assert "unless { var(txn.jwt_iss) -m str ailab }" in text
    assert "authorization" not in text.lower().split("log-format", 1)[1].split("\n", 1)[0]  # no token in logs


@needs_haproxy
def test_haproxy_accepts_the_generated_config_with_every_feature(tmp_path):
    pki = write_pki(tmp_path)
    cfg = haproxy.write_config(haproxy.parse_spec(full_spec(pki)), ctx_for(tmp_path), haproxy.binary())
    assert cfg.exists()
    bundle = cfg.parent / "tls.pem"
    assert bundle.stat().st_mode & 0o777 == 0o600
    assert b"BEGIN CERTIFICATE" in bundle.read_bytes() and b"PRIVATE KEY" in bundle.read_bytes()


@needs_haproxy
def test_a_config_haproxy_rejects_is_refused_with_its_message(tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text("frontend x\n    bind 127.0.0.1:1\n    no_such_keyword on\n")
    with pytest.raises(PlatformError, match="rejected by `haproxy -c`") as e:
        haproxy.check(haproxy.binary(), bad)
    assert "no_such_keyword" in str(e.value)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s["backends"][0]["servers"][0].update(weight=300), "backends.0.servers.0.weight"),
        (lambda s: s["backends"][0]["servers"][0].update(weight=-1), "backends.0.servers.0.weight"),
        (
            lambda s: [x.update(weight=0) for x in s["backends"][0]["servers"]],
            "weights of backend 'canary' sum to zero",
        ),
        (lambda s: s["frontends"][0].update(default_backend="nope"), "frontends.0.default_backend: unknown backend"),
        (lambda s: s["backends"][0]["servers"][0].update(target="10.0.0.1:80"), "backends.0.servers.0.target"),
        (lambda s: s["backends"][0]["servers"][0].update(target="haproxy.nope"), "target 'haproxy.nope' names no"),
        (lambda s: s["frontends"][0].update(rate_limit={"requests": 0}), "frontends.0.rate_limit.requests"),
        (lambda s: s["frontends"][0].update(tls=True), "frontends.0.tls: true but the spec has no tls"),
        (lambda s: s["frontends"][0].update(name="bad name"), "frontends.0.name"),
        (lambda s: s.update(extra=1), "extra"),
    ],
)
def test_bad_spec_values_are_refused_naming_the_field(mutate, field):
    spec = stack.canary_spec({1: 70, 2: 30})
    mutate(spec)
    with pytest.raises(PlatformError, match=r"option haproxy\.spec") as e:
        haproxy.parse_spec(spec)
    assert field in str(e.value)


def test_expired_certificate_is_refused(tmp_path):
    pki = write_pki(tmp_path, days=-1)
    with pytest.raises(PlatformError, match=r"tls\.cert: .*expired"):
        haproxy.parse_spec(full_spec(pki))


def test_malformed_or_mismatched_keys_are_refused(tmp_path):
    pki = write_pki(tmp_path)
    pki["pub"].write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    with pytest.raises(PlatformError, match=r"jwt\.public_key: .*is not a PEM public key"):
        haproxy.parse_spec(full_spec(pki))
    (tmp_path / "other").mkdir()
    other = write_pki(tmp_path / "other")
    spec = full_spec(write_pki(tmp_path))
    spec["tls"]["key"] = str(other["key"])
    with pytest.raises(PlatformError, match=r"tls\.key: .*does not match the certificate"):
        haproxy.parse_spec(spec)


def test_es256_needs_an_ec_key(tmp_path):
    pki = write_pki(tmp_path)
    spec = full_spec(pki)
    spec["jwt"]["alg"] = "ES256"
    with pytest.raises(PlatformError, match=r"jwt\.public_key: a .*RSAPublicKey.* cannot verify ES256"):
        haproxy.parse_spec(spec)
    ec_pub = tmp_path / "ec.pem"
    ec_pub.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    spec["jwt"]["public_key"] = str(ec_pub)
    assert haproxy.parse_spec(spec).jwt.alg == "ES256"


def test_runtime_socket_path_too_long_is_refused_before_writing(tmp_path):
    ctx = PlatformContext(week=6, state_dir=tmp_path / ("d" * 120), free_ports=True)
    with pytest.raises(PlatformError, match=r"runtime socket path .* allows 107"):
        haproxy.write_config(haproxy.default_spec(), ctx, "/bin/true")
    assert not (ctx.state_dir / "haproxy" / "haproxy.cfg").exists()


def test_missing_binary_is_a_platform_error_and_a_runner_skip(tmp_path, monkeypatch):
    monkeypatch.setattr(haproxy, "binary", lambda: None)
    with pytest.raises(PlatformError, match=r"binary 'haproxy' not found .*apt-get install haproxy"):
        haproxy.spec(ctx_for(tmp_path))
    monkeypatch.setattr("shutil.which", lambda *_a, **_k: None)
    monkeypatch.setattr(stack, "HAPROXY_PATHS", ())
    with pytest.raises(Skip, match=r"needs HAProxy 2\.6"):
        stack.require_haproxy()


def test_default_spec_puts_one_frontend_before_triton(tmp_path):
    spec = haproxy.parse_spec(None)
    assert [f.name for f in spec.frontends] == ["api"]
    assert spec.backends[0].servers[0].target == "triton.http"


@needs_haproxy
def test_service_spec_binds_loopback_ports_and_records_the_runtime_socket(tmp_path):
    ctx = ctx_for(tmp_path)
    ctx.options["haproxy.spec"] = stack.canary_spec({1: 70, 2: 30}, health_check=True)
    svc = haproxy.spec(ctx)
    assert set(svc.ports) == {"metrics", "api", "v1", "v2"}
    assert svc.depends_on == ("triton",)  # the version backends reach triton.http: Triton starts first
    assert svc.ready == f"http://127.0.0.1:{svc.ports['metrics']}/healthz"
    assert svc.info["runtime_socket"] == str(tmp_path / "st" / "haproxy" / "runtime.sock")
    assert svc.argv[1:4] == ["-db", "-f", svc.info["config"]]
    text = Path(svc.info["config"]).read_text()
    canary = text.split("\nbackend canary\n", 1)[1].split("\n\n", 1)[0]
    assert "option httpchk GET /v2/models/mlp/ready" in canary
    assert canary.count("check inter 1s fall 2 rise 1") == 2


def test_fixed_ports_give_each_frontend_its_own_and_keep_tritons_default(tmp_path):
    ctx = PlatformContext(week=6, state_dir=tmp_path / "st", free_ports=False)  # as `lab up` builds it
    text = haproxy.render(haproxy.parse_spec(stack.canary_spec({1: 70, 2: 30})), ctx, tmp_path)
    assert [ctx.ports[f"haproxy.{n}"] for n in ("api", "v1", "v2")] == [8080, 8081, 8082]
    assert ctx.ports["triton.http"] == 8000  # fixed at Triton's own default, which its service then binds
    assert "server triton 127.0.0.1:8000 weight 1" in text


def test_a_target_naming_an_unknown_port_is_refused(tmp_path):
    spec = haproxy.parse_spec(
        {
            "frontends": [{"name": "api", "default_backend": "b"}],
            "backends": [{"name": "b", "servers": [{"name": "s", "target": "nosuch.http"}]}],
        }
    )
    with pytest.raises(PlatformError, match=r"server target 'nosuch\.http': no such port"):
        haproxy.render(spec, ctx_for(tmp_path), tmp_path)
