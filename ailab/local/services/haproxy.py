"""HAProxy 2.6 (Debian's /usr/sbin/haproxy) as the lab's gateway: config generated from one typed spec, checked with
`haproxy -c -f` before start, every listener on 127.0.0.1.

Options (PlatformContext.options): `haproxy.spec` (a `GatewaySpec` or its dict; default: one frontend `api` in
front of Triton's HTTP port), `haproxy.args` (extra command-line arguments).

Ports are named `haproxy.<frontend>` for each frontend and `haproxy.metrics` for the Prometheus exporter (which also
answers `/healthz`). A server's `target` is either `127.0.0.1:PORT` or a platform port name (`triton.http`,
`haproxy.v1`), so one spec can chain frontends (the canary backend's servers are the per-version frontends, which
rewrite the path to a Triton model version). The runtime API (`set weight`, `show stat`) is a UNIX socket under the
state dir, recorded as `info["runtime_socket"]`; the access log is one JSON object per line in the service's log.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ailab.local.registry import PlatformError
from ailab.local.services import redis, triton
from ailab.local.spec import HOST, PlatformContext, ServiceSpec

METRICS_PORT = 8405  # the HAProxy documentation's example port for the Prometheus exporter
DEFAULT_FRONTEND_PORT = 8080
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with the trailing NUL
# other services' ports a server may name before that service has chosen them (their own defaults)
KNOWN_PORTS = {**{f"triton.{r}": p for r, p in triton.DEFAULT_PORTS.items()}, "redis.redis": redis.DEFAULT_PORT}

Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")]
PORT_NAME = re.compile(r"^[a-z][a-z0-9_-]*\.[a-z][A-Za-z0-9_-]*$")  # <service>.<role>, as PlatformContext.port names
ADDRESS = re.compile(r"^127\.0\.0\.1:(\d{1,5})$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Server(_Model):
    """One upstream: where it is and its share of the backend's traffic (HAProxy weights, 0-256; 0 = drained)."""

    name: Name
    target: str = Field(description="127.0.0.1:PORT, or a platform port name such as triton.http")
    weight: int = Field(default=1, ge=0, le=256)

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        m = ADDRESS.match(v)
        if m and 0 < int(m.group(1)) < 65536:
            return v
        if PORT_NAME.match(v):
            return v
        raise ValueError(f"{v!r}: allowed 127.0.0.1:PORT or a platform port name like triton.http (loopback only)")


class Backend(_Model):
    name: Name
    servers: list[Server] = Field(min_length=1)
    balance: Literal["roundrobin", "static-rr", "leastconn", "random"] = "roundrobin"
    replace_path: tuple[str, str] | None = Field(
        default=None, description="(regex, replacement) applied to the path before forwarding (HAProxy replace-path)"
    )
    health_check: str | None = Field(
        default=None,
        pattern=r"^/[A-Za-z0-9_./-]{0,200}$",
        description="HTTP path every server of the backend is checked on (GET, 200 = up; every 1 s, down after 2)",
    )
    server_header: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9-]{0,63}$",
        description="response header naming the server that answered (so clients can measure the split)",
    )

    @model_validator(mode="after")
    def _weights(self) -> Backend:
        names = [s.name for s in self.servers]
        if len(set(names)) != len(names):
            raise ValueError(f"servers: names {names} must be unique")
        if sum(s.weight for s in self.servers) == 0:
            raise ValueError(f"servers: weights of backend {self.name!r} sum to zero: no server would get traffic")
        if self.replace_path is not None:
            if any("'" in x for x in self.replace_path):
                raise ValueError(f"replace_path: {list(self.replace_path)}: a single quote is not allowed")
            try:
                re.compile(self.replace_path[0])
            except re.error as exc:
                raise ValueError(f"replace_path: regex {self.replace_path[0]!r}: {exc}") from None
        return self


class RateLimit(_Model):
    """Requests per period per key (client address, or a header such as an API key); excess answered `status`."""

    requests: int = Field(gt=0, le=10_000_000)
    period_s: int = Field(default=1, gt=0, le=3600)
    key: Literal["src"] | Annotated[str, Field(pattern=r"^header:[A-Za-z0-9-]{1,64}$")] = "src"
    status: int = Field(default=429, ge=400, le=599)


class Tls(_Model):
    cert: Path
    key: Path

    @model_validator(mode="after")
    def _files(self) -> Tls:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        for field, p in (("cert", self.cert), ("key", self.key)):
            if not p.is_file():
                raise ValueError(f"{field}: {str(p)!r} is not a file")
        try:
            cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        except ValueError as exc:
            raise ValueError(f"cert: {str(self.cert)!r} is not a PEM certificate ({exc})") from None
        now = datetime.now(UTC)
        if cert.not_valid_after_utc <= now:
            raise ValueError(f"cert: {str(self.cert)!r} expired at {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}")
        if cert.not_valid_before_utc > now:
            raise ValueError(f"cert: {str(self.cert)!r} is not valid before {cert.not_valid_before_utc:%F}")
        try:
            key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"key: {str(self.key)!r} is not an unencrypted PEM private key ({exc})") from None
        if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
            raise ValueError(f"key: {str(self.key)!r} does not match the certificate {str(self.cert)!r}")
        return self


class Jwt(_Model):
    """Bearer JWT checked at the gateway: signature (jwt_verify) plus exp/aud/iss from the payload, else 401."""

    public_key: Path
    alg: Literal["RS256", "ES256"] = "RS256"
    audience: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:/-]{1,128}$")
    issuer: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:/-]{1,128}$")

    @model_validator(mode="after")
    def _key(self) -> Jwt:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if not self.public_key.is_file():
            raise ValueError(f"public_key: {str(self.public_key)!r} is not a file")
        try:
            key = serialization.load_pem_public_key(self.public_key.read_bytes())
        except ValueError as exc:
            raise ValueError(f"public_key: {str(self.public_key)!r} is not a PEM public key ({exc})") from None
        want = rsa.RSAPublicKey if self.alg == "RS256" else ec.EllipticCurvePublicKey
        if not isinstance(key, want):
            raise ValueError(f"public_key: a {type(key).__name__} cannot verify {self.alg}")
        return self


class Frontend(_Model):
    name: Name
    default_backend: Name
    tls: bool = False  # terminate TLS with GatewaySpec.tls
    jwt: bool = False  # require a valid bearer token (GatewaySpec.jwt)
    rate_limit: RateLimit | None = None
    access_log: bool = False  # one JSON line per request in the service log


class GatewaySpec(_Model):
    """Everything the generated haproxy.cfg says; validated before a file is written."""

    frontends: list[Frontend] = Field(min_length=1)
    backends: list[Backend] = Field(min_length=1)
    tls: Tls | None = None
    jwt: Jwt | None = None
    maxconn: int = Field(default=4096, gt=0, le=1_000_000)
    nbthread: int = Field(default=1, ge=1, le=64)
    timeout_connect_ms: int = Field(default=2000, gt=0)
    timeout_client_ms: int = Field(default=30000, gt=0)
    timeout_server_ms: int = Field(default=30000, gt=0)

    @model_validator(mode="after")
    def _references(self) -> GatewaySpec:
        for kind, items in (("frontends", self.frontends), ("backends", self.backends)):
            names = [i.name for i in items]
            if len(set(names)) != len(names):
                raise ValueError(f"{kind}: names {names} must be unique")
        backends = {b.name for b in self.backends}
        for i, f in enumerate(self.frontends):
            if f.default_backend not in backends:
                raise ValueError(
                    f"frontends.{i}.default_backend: unknown backend {f.default_backend!r} "
                    f"(defined: {', '.join(sorted(backends))})"
                )
            if f.tls and self.tls is None:
                raise ValueError(f"frontends.{i}.tls: true but the spec has no tls (cert, key)")
            if f.jwt and self.jwt is None:
                raise ValueError(f"frontends.{i}.jwt: true but the spec has no jwt (public_key)")
        fronts = {f"haproxy.{f.name}" for f in self.frontends}
        for b in self.backends:
            for s in b.servers:
                if s.target.startswith("haproxy.") and s.target not in fronts:
                    raise ValueError(f"backend {b.name!r} server {s.name!r}: target {s.target!r} names no frontend")
        return self


def default_spec() -> GatewaySpec:
    """`lab up` without a spec: one plain frontend in front of Triton's HTTP port."""
    return GatewaySpec(
        frontends=[Frontend(name="api", default_backend="triton")],
        backends=[Backend(name="triton", servers=[Server(name="triton", target="triton.http")])],
    )


def parse_spec(value: object) -> GatewaySpec:
    """A GatewaySpec from the option value; errors name the field, the value and what is allowed."""
    if value is None:
        return default_spec()
    if isinstance(value, GatewaySpec):
        return value
    try:
        return GatewaySpec.model_validate(value)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = ".".join(str(x) for x in e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "value_error":  # a model validator's message starts with the field it is about
                lines.append(f"{loc}.{msg}" if loc and re.match(r"^[a-z_]+[.:]", msg) else f"{loc or 'spec'}: {msg}")
                continue
            got = f" (got {e['input']!r})" if "input" in e and not isinstance(e["input"], dict | list) else ""
            lines.append(f"{loc or 'spec'}: {msg}{got}")
        raise PlatformError("service haproxy: option haproxy.spec: " + "; ".join(lines)) from None


# --- rendering ---------------------------------------------------------------------------------------------------
ACCESS_LOG_FORMAT = (  # JSON object per request; no header values (a bearer token must never reach a log)
    '{"ts":"%tr","client":"%ci","frontend":"%f","backend":"%b","server":"%s","method":"%HM","path":"%HPO",'
    '"status":%ST,"t_total_ms":%Ta,"t_server_ms":%Tr,"bytes":%B,"sub":"%[var(txn.jwt_sub),json(utf8s)]"}'
)


def _quote(s: str) -> str:
    """HAProxy single quotes: nothing inside is expanded ($VAR) or escaped (the spec forbids ' in such values)."""
    if "'" in s:
        raise PlatformError(f"service haproxy: value {s!r} contains a single quote, which the config cannot carry")
    return f"'{s}'"


def frontend_ports(spec: GatewaySpec, ctx: PlatformContext) -> dict[str, int]:
    """Port of each frontend: free ones, or 8080, 8081, ... in spec order (`lab up` without free ports)."""
    return {f.name: ctx.port(f"haproxy.{f.name}", DEFAULT_FRONTEND_PORT + i) for i, f in enumerate(spec.frontends)}


def _address(target: str, ctx: PlatformContext, fronts: dict[str, int]) -> str:
    if ADDRESS.match(target):
        return target
    if target.startswith("haproxy."):
        return f"{HOST}:{fronts[target.split('.', 1)[1]]}"
    if target in ctx.ports:
        return f"{HOST}:{ctx.ports[target]}"
    if target in KNOWN_PORTS:  # the service's own default, fixed now so that it binds the same port
        return f"{HOST}:{ctx.port(target, KNOWN_PORTS[target])}"
    raise PlatformError(
        f"service haproxy: option haproxy.spec: server target {target!r}: no such port on this platform "
        f"(known: {', '.join(sorted({*ctx.ports, *KNOWN_PORTS}))})"
    )


def render(spec: GatewaySpec, ctx: PlatformContext, conf_dir: Path) -> str:
    """haproxy.cfg text for `spec`; ports come from ctx (haproxy.<frontend>, haproxy.metrics, referenced ones)."""
    sock = conf_dir / "runtime.sock"
    fronts = frontend_ports(spec, ctx)
    out = [
        "# Generated by ailab.local.services.haproxy.render from a GatewaySpec (lab up, experiments, tests).",
        "global",
        f"    maxconn {spec.maxconn}",
        f"    nbthread {spec.nbthread}",
        f"    stats socket {sock} mode 600 level admin",
        "    log stdout format raw local0 info",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        f"    timeout connect {spec.timeout_connect_ms}ms",
        f"    timeout client {spec.timeout_client_ms}ms",
        f"    timeout server {spec.timeout_server_ms}ms",
        "    timeout http-request 10s",
        "    option http-keep-alive",
        "",
        "frontend metrics",
        f"    bind {HOST}:{ctx.port('haproxy.metrics', METRICS_PORT)}",
        "    no log",
        "    monitor-uri /healthz",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "",
    ]
    for f in spec.frontends:
        port = fronts[f.name]
        ssl = f" ssl crt {conf_dir / 'tls.pem'}" if f.tls else ""
        out += [f"frontend {f.name}", f"    bind {HOST}:{port}{ssl}"]
        out += [f"    log-format {_quote(ACCESS_LOG_FORMAT)}"] if f.access_log else ["    no log"]
        if f.rate_limit is not None:
            rl = f.rate_limit
            key_type, fetch = ("ip", "src") if rl.key == "src" else ("string len 64", f"req.hdr({rl.key[7:]})")
            # Count admitted requests only (gpc0 is incremented after the deny): a client over the limit still gets
            # `requests` per period through. http_req_rate would count the refused ones too and refuse everything.
            out += [
                f"    stick-table type {key_type} size 100k expire {max(10, 2 * rl.period_s)}s "
                f"store gpc0_rate({rl.period_s}s)",
                f"    http-request track-sc0 {fetch}",
                f"    http-request deny deny_status {rl.status} if {{ sc_gpc0_rate(0) ge {rl.requests} }}",
                "    http-request sc-inc-gpc0(0)",
            ]
        if f.jwt and spec.jwt is not None:  # after the rate limit, so that token guessing is limited too
            out += _jwt_rules(spec.jwt)
        out += [f"    default_backend {f.default_backend}", ""]
    for b in spec.backends:
        out += [f"backend {b.name}", f"    balance {b.balance}"]
        if b.replace_path is not None:
            out.append(f"    http-request replace-path {_quote(b.replace_path[0])} {_quote(b.replace_path[1])}")
        if b.server_header is not None:
            out.append(f"    http-response set-header {b.server_header} %s")
        if b.health_check is not None:  # HAProxy checks per backend: one path for all its servers
            out += [f"    option httpchk GET {b.health_check}", "    http-check expect status 200"]
        for s in b.servers:
            chk = " check inter 1s fall 2 rise 1" if b.health_check else ""
            out.append(f"    server {s.name} {_address(s.target, ctx, fronts)} weight {s.weight}{chk}")
        out.append("")
    return "\n".join(out)


def _jwt_rules(j: Jwt) -> list[str]:
    """Bearer token rules; jwt_verify checks only the signature, so exp/aud/iss are checked from the payload."""
    deny = "http-request deny deny_status 401"  # HAProxy's own 401 page: no detail about why
    rules = [
        "    http-request set-var(txn.bearer) http_auth_bearer",
        f"    {deny} unless {{ var(txn.bearer) -m found }}",
        "    http-request set-var(txn.jwt_alg) var(txn.bearer),jwt_header_query('$.alg')",
        f"    {deny} unless {{ var(txn.jwt_alg) -m str {j.alg} }}",
        f"    {deny} unless {{ var(txn.bearer),jwt_verify(txn.jwt_alg,{_quote(str(j.public_key))}) -m int 1 }}",
        "    http-request set-var(txn.jwt_exp) var(txn.bearer),jwt_payload_query('$.exp','int')",
        "    http-request set-var(txn.now) date",
        f"    {deny} unless {{ var(txn.jwt_exp) -m found }}",
        f"    {deny} if {{ var(txn.jwt_exp),sub(txn.now) -m int le 0 }}",
        "    http-request set-var(txn.jwt_sub) var(txn.bearer),jwt_payload_query('$.sub')",
    ]
    if j.audience is not None:
        rules += [
            "    http-request set-var(txn.jwt_aud) var(txn.bearer),jwt_payload_query('$.aud')",
            f"    {deny} unless {{ var(txn.jwt_aud) -m str {j.audience} }}",
        ]
    if j.issuer is not None:
        rules += [
            "    http-request set-var(txn.jwt_iss) var(txn.bearer),jwt_payload_query('$.iss')",
            f"    {deny} unless {{ var(txn.jwt_iss) -m str {j.issuer} }}",
        ]
    return rules


def write_config(spec: GatewaySpec, ctx: PlatformContext, binary: str) -> Path:
    """Write haproxy.cfg (and the TLS bundle) under the state dir and check it with `haproxy -c -f`."""
    conf_dir = ctx.state_dir / "haproxy"
    conf_dir.mkdir(parents=True, exist_ok=True)
    sock = conf_dir / "runtime.sock"
    if len(str(sock)) > MAX_SOCKET_PATH:
        raise PlatformError(
            f"service haproxy: runtime socket path {str(sock)!r} is {len(str(sock))} characters: "
            f"a UNIX socket path allows {MAX_SOCKET_PATH}; use a shorter state dir"
        )
    if spec.tls is not None:
        bundle = conf_dir / "tls.pem"
        bundle.touch(mode=0o600)
        bundle.chmod(0o600)
        bundle.write_bytes(spec.tls.cert.read_bytes().rstrip() + b"\n" + spec.tls.key.read_bytes())
    cfg = conf_dir / "haproxy.cfg"
    cfg.write_text(render(spec, ctx, conf_dir) + "\n")
    check(binary, cfg)
    return cfg


def check(binary: str, cfg: Path) -> None:
    """`haproxy -c -f cfg`; a config HAProxy refuses raises PlatformError with HAProxy's own message."""
    r = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        msg = "\n".join(line for line in (r.stdout + r.stderr).splitlines() if "[NOTICE]" not in line and line.strip())
        raise PlatformError(f"service haproxy: {cfg} rejected by `haproxy -c`:\n{msg}")


def binary() -> str | None:
    return shutil.which("haproxy") or (p if Path(p := "/usr/sbin/haproxy").exists() else None)


def spec(ctx: PlatformContext) -> ServiceSpec:
    exe = binary()
    if exe is None:
        raise PlatformError("service haproxy: binary 'haproxy' not found (apt-get install haproxy)")
    gw = parse_spec(ctx.options.get("haproxy.spec"))
    cfg = write_config(gw, ctx, exe)
    ports = {"metrics": ctx.port("haproxy.metrics", METRICS_PORT)}
    ports.update(frontend_ports(gw, ctx))
    needs = sorted(
        {s.target.split(".", 1)[0] for b in gw.backends for s in b.servers if PORT_NAME.match(s.target)} - {"haproxy"}
    )
    return ServiceSpec(
        name="haproxy",
        argv=[exe, "-db", "-f", str(cfg), *ctx.options.get("haproxy.args", [])],  # -db: foreground, logs to stdout
        ports=ports,
        ready=f"http://{HOST}:{ports['metrics']}/healthz",
        log=ctx.log_path("haproxy"),
        depends_on=tuple(needs),
        ready_timeout_s=20.0,
        info={"config": str(cfg), "runtime_socket": str(cfg.parent / "runtime.sock")},
    )
