"""syslog-ng 3.38 (Debian's /usr/sbin/syslog-ng) as the lab's log collector: it tails the local services' log files
and writes one JSON object per line (service, model, status, request_id, level, ts, message) under the state dir,
which `lab logs` queries.

Runs unprivileged in the foreground with its own persist file, pid file and control socket under the state dir; the
generated config is checked with `syslog-ng --syntax-only` before start; health = the control socket answers
`syslog-ng-ctl stats`. A loopback TCP source (port `syslogng.tcp`) accepts JSON lines from anything else (a load
generator, a test) with the same record fields.

Options (PlatformContext.options): `syslogng.sources` (service names whose log files are tailed; default: the
week's services, `local:` in weeks.yaml, except the collector itself; allowed: any known service),
`syslogng.follow_freq_s` (how often a tailed file is polled, 0.05-10 s; default 0.2), `syslogng.args` (extra
command-line arguments).

Record fields: `service` (the source), `model` (Triton: from `model: X` / `/v2/models/X/` / `model X,`; HAProxy:
from the request path), `status` (HAProxy: the HTTP status as a number), `request_id` (Triton's `[request id: X]`),
`level` (Triton's I/W/E/F as info/warning/error; the `level=` value of logfmt lines as written, e.g. warn), `ts`
(when the collector read the line, ISO 8601 with microseconds), `message` (the line as written).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ailab.local import registry
from ailab.local.registry import PlatformError
from ailab.local.spec import HOST, PlatformContext, ServiceSpec

DEFAULT_TCP_PORT = 6514  # syslog over TLS's IANA port, unused by the lab otherwise
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with the trailing NUL
RECORDS = "records.jsonl"  # under the service's data dir

# One parser chain per kind of log. Triton (glog): `I1202 01:45:31.660596 7141 http_server.cc:4599] "text"`.
TRITON_LINE = r'^(?<lvl>[IWEF])\d{4} [0-9:.]+ +\d+ [^ \]]+\] "?(?<text>.*?)"?$'
MODEL_PATTERNS = (r"model: (?<model>[A-Za-z0-9_.-]+)", r"/v2/models/(?<model>[A-Za-z0-9_.-]+)",
                  r"model (?<model>[A-Za-z0-9_.-]+),", r"'(?<model>[A-Za-z0-9_.-]+)' version")  # fmt: skip
REQUEST_ID = r"\[request id: (?<rid>[^\]]+)\]"
LOGFMT_LEVEL = r"level=(?<lvl>[a-z]+)"


@dataclass(frozen=True)
class Settings:
    sources: dict[str, Path]  # service -> its log file
    follow_freq_s: float
    tcp_port: int
    records: Path
    conf_dir: Path


def _escape(s: str) -> str:
    """A syslog-ng double-quoted string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def settings(ctx: PlatformContext) -> Settings:
    """Typed settings from the options; a bad value raises PlatformError naming the option, the value and what is
    allowed, before anything is written."""
    known = [n for n in registry.known_services() if n != "syslogng"]
    names = ctx.options.get("syslogng.sources")
    if names is None:
        names = [n for n in registry.week_services(ctx.week) if n != "syslogng"]
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise PlatformError(f"service syslogng: option syslogng.sources {names!r}: a list of service names")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PlatformError(
            f"service syslogng: option syslogng.sources {unknown}: unknown service(s) (allowed: {', '.join(known)})"
        )
    if not names:
        raise PlatformError("service syslogng: option syslogng.sources is empty: name at least one service to collect")
    freq = ctx.options.get("syslogng.follow_freq_s", 0.2)
    if isinstance(freq, bool) or not isinstance(freq, int | float) or not 0.05 <= freq <= 10:
        raise PlatformError(f"service syslogng: option syslogng.follow_freq_s {freq!r}: allowed a number 0.05-10 (s)")
    conf_dir = ctx.state_dir / "syslogng"
    ctl = conf_dir / "syslog-ng.ctl"
    if len(str(ctl)) > MAX_SOCKET_PATH:
        raise PlatformError(
            f"service syslogng: control socket path {str(ctl)!r} is {len(str(ctl))} characters: a UNIX socket path "
            f"allows {MAX_SOCKET_PATH}; use a shorter state dir"
        )
    return Settings(
        sources={n: ctx.log_path(n) for n in dict.fromkeys(names)},
        follow_freq_s=float(freq),
        tcp_port=ctx.port("syslogng.tcp", DEFAULT_TCP_PORT),
        records=ctx.data_dir("syslogng") / RECORDS,
        conf_dir=conf_dir,
    )


def _regexp(pattern: str, prefix: str) -> str:
    return f"regexp-parser(patterns({_escape(pattern)}) prefix({_escape(prefix)}))"


def _triton_block() -> list[str]:
    models = " elif ".join(
        f"{{ parser {{ {_regexp(p, '.m.')}; }}; }}" for p in MODEL_PATTERNS
    )  # the first pattern that matches names the model
    return [
        f"        if {{ parser {{ {_regexp(TRITON_LINE, '.t.')}; }}; }} else {{ }};",
        '        if { filter { "${.t.lvl}" eq "I" }; rewrite { set("info" value(".m.level")); }; }',
        '        elif { filter { "${.t.lvl}" eq "W" }; rewrite { set("warning" value(".m.level")); }; }',
        '        elif { filter { "${.t.lvl}" ne "" }; rewrite { set("error" value(".m.level")); }; };',
        f"        if {models};",
        f"        if {{ parser {{ {_regexp(REQUEST_ID, '.r.')}; }}; }};",
    ]


def _haproxy_block() -> list[str]:
    # HAProxy's access log (haproxy.py ACCESS_LOG_FORMAT) is one JSON object per line; other lines stay plain
    model = f'regexp-parser(patterns({_escape(MODEL_PATTERNS[1])}) prefix(".m.") template("${{.h.path}}"))'
    return [
        '        if { filter { message("^\\\\{" type("pcre")); }; parser { json-parser(prefix(".h.")); };',
        '             rewrite { set("${.h.status}" value(".m.status")); set("info" value(".m.level")); };',
        f"             if {{ parser {{ {model}; }}; }}; }};",
    ]


def _generic_block() -> list[str]:
    level = 'rewrite { set("${.t.lvl}" value(".m.level")); }'
    return [f"        if {{ parser {{ {_regexp(LOGFMT_LEVEL, '.t.')}; }}; {level}; }};"]


def render(s: Settings) -> str:
    """The syslog-ng.conf text for `s`."""
    out = [
        "@version: 3.38",
        "# Generated by ailab.local.services.syslogng.render (lab up, experiments, tests); checked with --syntax-only.",
        "options {",
        "    chain-hostnames(no); use-dns(no); dns-cache(no); stats-freq(0); frac-digits(6);",
        "    log-msg-size(65536); flush-lines(0); time-reopen(1); create-dirs(yes); keep-timestamp(no);",
        "};",
        "",
        f"destination d_records {{ file({_escape(str(s.records))} template({_escape(TEMPLATE)})); }};",
        "",
    ]
    for name, path in s.sources.items():
        src = f"s_{name}"
        out += [
            f"source {src} {{ file({_escape(str(path))} flags(no-parse) follow-freq({s.follow_freq_s:g})); }};",
            "log {",
            f"    source({src});",
            f'    rewrite {{ set("{name}" value(".m.service")); }};',
        ]
        block = _triton_block() if name == "triton" else _haproxy_block() if name == "haproxy" else _generic_block()
        out += ["    if {", *block, "    };"]
        out += ["    destination(d_records);", "};", ""]
    out += [
        # anything else sends JSON lines over loopback TCP: its own service/model/status fields are kept
        f'source s_tcp {{ network(ip("{HOST}") port({s.tcp_port}) transport("tcp") flags(no-parse)); }};',
        "log {",
        "    source(s_tcp);",
        '    parser { json-parser(prefix(".j.")); };',
        '    rewrite { set("${.j.service}" value(".m.service")); set("${.j.model}" value(".m.model"));',
        '              set("${.j.status}" value(".m.status")); set("${.j.request_id}" value(".r.rid"));',
        '              set("${.j.level}" value(".m.level")); set("${.j.message}" value("MESSAGE")); };',
        "    destination(d_records);",
        "};",
    ]
    return "\n".join(out) + "\n"


# One JSON object per line; status as a number when there is one, fields without a value left out.
TEMPLATE = (
    "$(format-json --scope none --omit-empty-values service=${.m.service} model=${.m.model} "
    "status=int64(${.m.status}) request_id=${.r.rid} level=${.m.level} ts=${R_ISODATE} message=${MESSAGE})\n"
)


def binary() -> str | None:
    return shutil.which("syslog-ng") or (p if Path(p := "/usr/sbin/syslog-ng").exists() else None)


def ctl_binary() -> str | None:
    return shutil.which("syslog-ng-ctl") or (p if Path(p := "/usr/sbin/syslog-ng-ctl").exists() else None)


def check(exe: str, cfg: Path) -> None:
    """`syslog-ng --syntax-only -f cfg`; a config syslog-ng refuses raises PlatformError with its own message."""
    r = subprocess.run([exe, "--syntax-only", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise PlatformError(
            f"service syslogng: {cfg} rejected by `syslog-ng --syntax-only`:\n{(r.stdout + r.stderr).strip()}"
        )


def healthy(ctl: Path) -> bool:
    """True when the collector's control socket answers `syslog-ng-ctl stats`."""
    exe = ctl_binary()
    if exe is None or not ctl.exists():
        return False
    try:
        r = subprocess.run([exe, "stats", "-c", str(ctl)], capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0


def spec(ctx: PlatformContext) -> ServiceSpec:
    exe = binary()
    if exe is None:
        raise PlatformError("service syslogng: binary 'syslog-ng' not found (apt-get install syslog-ng-core)")
    s = settings(ctx)
    s.conf_dir.mkdir(parents=True, exist_ok=True)
    cfg = s.conf_dir / "syslog-ng.conf"
    cfg.write_text(render(s))
    check(exe, cfg)
    ctl = s.conf_dir / "syslog-ng.ctl"
    argv = [
        exe,
        "-F",  # foreground: the lab records and stops the process itself
        "--no-caps",
        "-f", str(cfg),
        "-R", str(s.conf_dir / "syslog-ng.persist"),
        "-p", str(s.conf_dir / "syslog-ng.pid"),
        "-c", str(ctl),
        *ctx.options.get("syslogng.args", []),
    ]  # fmt: skip
    return ServiceSpec(
        name="syslogng",
        argv=argv,
        ports={"tcp": s.tcp_port},
        ready=lambda: healthy(ctl),
        log=ctx.log_path("syslogng"),
        ready_timeout_s=20.0,
        info={"config": str(cfg), "records": str(s.records), "control": str(ctl), "sources": ",".join(s.sources)},
    )


# --- reading the records back (`lab logs`, experiments through the same file) ------------------------------------
def records_path(state_dir: Path) -> Path:
    return state_dir / "data" / "syslogng" / RECORDS


def parse_time(value: str, field: str) -> datetime:
    """ISO 8601 (2026-12-02T01:45:31, with optional fraction and zone; local time when no zone)."""
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise PlatformError(f"{field} {value!r}: not an ISO 8601 time (e.g. 2026-12-02T01:45:31)") from None
    return t if t.tzinfo else t.astimezone()


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Every record of the collector's file (a partly written last line is skipped)."""
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                yield rec


def query(
    path: Path,
    service: str | None = None,
    model: str | None = None,
    status: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    contains: str | None = None,
) -> list[dict[str, Any]]:
    """Records matching every given filter (equality on service/model/status, since <= ts < until)."""
    out = []
    for r in read(path):
        if service is not None and r.get("service") != service:
            continue
        if model is not None and r.get("model") != model:
            continue
        if status is not None and r.get("status") != status:
            continue
        if contains is not None and contains not in str(r.get("message", "")):
            continue
        if since is not None or until is not None:
            try:
                ts = datetime.fromisoformat(str(r.get("ts")))
            except ValueError:
                continue
            if (since is not None and ts < since) or (until is not None and ts >= until):
                continue
        out.append(r)
    return out
