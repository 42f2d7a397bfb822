"""Lab PKI and tokens for the gateway's TLS and JWT: a CA, a server certificate for 127.0.0.1, an RS256 signing key,
and the tokens the security experiments send (good, and each kind of bad one). Files are written 0600 under the
run's work dir (inside .lab/, never committed)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

AUDIENCE = "ailab-models"
ISSUER = "ailab-gateway-lab"


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    jwt_private: Path
    jwt_public: Path


def _write(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)
    return path


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_pki(d: Path, days: int = 2) -> Pki:
    """A lab CA, a server certificate for 127.0.0.1 signed by it (valid `days`), and an RS256 key pair."""
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AI Infra Lab CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.Encoding.PEM
    return Pki(
        ca_cert=_write(d / "ca.pem", ca.public_bytes(pem)),
        server_cert=_write(d / "server.pem", cert.public_bytes(pem)),
        server_key=_write(d / "server.key", _pem_key(key)),
        jwt_private=_write(d / "jwt.key", _pem_key(jwt_key)),
        jwt_public=_write(
            d / "jwt.pub",
            jwt_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
        ),
    )


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _sign_rs256(key_pem: bytes, signing_input: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]


def token(pki: Pki, sub: str = "alice", ttl_s: int = 600, **claims: object) -> str:
    """A good RS256 token (iss, aud, sub, iat, exp); `claims` override or add payload fields."""
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + ttl_s, **claims}
    head = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    sig = _sign_rs256(pki.jwt_private.read_bytes(), f"{head}.{body}".encode())
    return f"{head}.{body}.{_b64(sig)}"


# name -> what it is; every one but "good" must be refused with 401
CASES = {
    "good": "valid RS256 token, right issuer and audience, not expired",
    "missing": "no Authorization header",
    "malformed": "Authorization: Bearer with a string that is not a JWT",
    "tampered": "payload changed after signing (sub: alice -> admin)",
    "alg_none": 'header alg "none", no signature',
    "hs256_confusion": "HS256 signed with the RS256 public key as the HMAC secret",
    "wrong_key": "RS256 signed by a key the gateway does not trust",
    "expired": "exp one minute in the past",
    "wrong_audience": "aud of another service",
    "wrong_issuer": "iss of another issuer",
}


def case_headers(pki: Pki, case: str, other: Pki | None = None) -> dict[str, str]:
    """The Authorization header for one case of CASES ({} for `missing`)."""
    if case not in CASES:
        raise ValueError(f"case {case!r}: allowed {', '.join(CASES)}")
    if case == "missing":
        return {}
    if case == "malformed":
        return {"Authorization": "Bearer not-a-jwt"}
    if case == "good":
        t = token(pki)
    elif case == "tampered":
        head, body, sig = token(pki).split(".")
        payload = json.loads(base64.urlsafe_b64decode(body + "=="))
        payload["sub"] = "admin"
        t = f"{head}.{_b64(json.dumps(payload).encode())}.{sig}"
    elif case == "alg_none":
        head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        t = f"{head}.{token(pki).split('.')[1]}."
    elif case == "hs256_confusion":
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = token(pki).split(".")[1]
        sig = hmac.new(pki.jwt_public.read_bytes(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        t = f"{head}.{body}.{_b64(sig)}"
    elif case == "wrong_key":
        if other is None:
            raise ValueError("case wrong_key: needs a second Pki (other=)")
        t = token(other)
    elif case == "expired":
        t = token(pki, ttl_s=-60)
    elif case == "wrong_audience":
        t = token(pki, aud="another-service")
    else:  # wrong_issuer
        t = token(pki, iss="someone-else")
    return {"Authorization": f"Bearer {t}"}
