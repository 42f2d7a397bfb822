"""A second, "global" Prometheus that scrapes `/federate` of the local one (two-level federation).

It takes only what the `match[]` selectors pick from the local Prometheus (by default the recording rules'
aggregated series, `level:metric:operation`, and `up`), with `honor_labels: true` so the child's job/instance labels
survive, and adds `external_labels: {prometheus: global}`. Options: `prometheus_global.match` (selectors),
`prometheus_global.scrape_interval` (default "5s"), `prometheus_global.retention` (default "15d"),
`prometheus_global.rules` ({file name: rule file dict} evaluated on the federated series),
`prometheus_global.remote_write` (loopback URLs or "victoriametrics"), `prometheus_global.match_wait_s` (how long
the local Prometheus may take to show a series for every selector, default 30), `prometheus_global.args`.

Refused before the process starts: a selector that does not parse or has no matcher that selects something
(Prometheus would answer `/federate` with an error), a retention below the scrape interval, a non-loopback
remote-write URL, a config `promtool check config` rejects. When the local Prometheus is already running, also a
selector that selects no series on it and a recording rule naming a label none of its series carries. When both
start together (the child's series do not exist yet) those two live checks run in the readiness probe instead: the
global Prometheus is not declared ready, and is stopped, until they pass, with the same message.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ailab.local import registry
from ailab.local.services import prometheus as local
from ailab.local.spec import HOST, PlatformContext, ServiceSpec
from ailab.observability.generate import dump_yaml

DEFAULT_PORT = 9091
DEFAULT_MATCH = ['{__name__=~"[a-zA-Z_]+:[a-zA-Z0-9_]+:[a-zA-Z0-9_]+"}', '{__name__="up"}']
EXTERNAL = {"prometheus": "global"}

_SELECTOR = re.compile(r"^\s*(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?:\{(?P<body>.*)\})?\s*$", re.S)
_ONE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _matches_empty(op: str, value: str) -> bool:
    try:
        full = re.fullmatch(value, "") is not None if op in ("=~", "!~") else value == ""
    except re.error:
        full = False
    return {"=": full, "=~": full, "!=": not full, "!~": not full}[op]


def check_selector(field: str, sel: str) -> None:
    """A `match[]` selector `/federate` accepts: a metric name and/or matchers, at least one not matching ''."""
    m = _SELECTOR.match(sel)
    body = (m.group("body") or "") if m else ""
    matchers = _ONE.findall(body) if m else []
    parsed = m is not None and (m.group("name") or m.group("body") is not None)
    if parsed and "".join(x.group(0) for x in _ONE.finditer(body)).strip() != body.strip():
        parsed = False
    if not parsed:
        raise registry.PlatformError(
            f'option {field} {sel!r}: not a series selector (allowed: metric{{label="value", ...}}, '
            'e.g. {job="triton"} or up)'
        )
    if not m.group("name") and all(_matches_empty(op, v) for _, op, v in matchers):
        raise registry.PlatformError(
            f"option {field} {sel!r}: selects nothing that can be federated: every matcher also matches the empty "
            'label (allowed: at least one matcher that needs a value, e.g. {job=~".+"} or a metric name)'
        )


def _get(url: str, params: list[tuple[str, str]] | None = None, timeout: float = 5) -> Any:
    q = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{q}", timeout=timeout) as r:
        return json.loads(r.read())["data"]


def _child_up(child: str) -> bool:
    try:
        with urllib.request.urlopen(f"{child}/-/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


class LiveCheck:
    """Every selector selects series on the child, and the recording rules name only labels the child has."""

    def __init__(self, child: str, match: list[str], rules: dict[str, dict[str, Any]], wait_s: float) -> None:
        self.child, self.match, self.rules, self.wait_s = child, match, rules, wait_s
        self.deadline: float | None = None
        self.passed = False

    def empty(self) -> list[int]:
        now = time.time()
        return [
            i
            for i, sel in enumerate(self.match)
            if not _get(f"{self.child}/api/v1/series", [("match[]", sel), ("start", str(now - 300))])
        ]

    def step(self) -> bool:
        """True once passed; False while the child may still be filling; PlatformError past the deadline."""
        if self.passed:
            return True
        if self.deadline is None:
            self.deadline = time.monotonic() + self.wait_s
        try:
            empty = self.empty()
        except (OSError, KeyError, ValueError):
            empty = list(range(len(self.match)))
        if not empty:
            known = set(_get(f"{self.child}/api/v1/labels")) | set(EXTERNAL) | {"lab"}
            local.unknown_rule_labels("prometheus_global.rules", self.rules, known)
            self.passed = True
            return True
        if time.monotonic() > self.deadline:
            i = empty[0]
            raise registry.PlatformError(
                f"option prometheus_global.match[{i}] {self.match[i]!r}: selects no series on the local Prometheus "
                f"({self.child}) after {self.wait_s:.0f} s (allowed: a selector matching series it holds)"
            )
        return False

    def run(self) -> None:
        while not self.step():
            time.sleep(0.5)


def config(port: int, child: str, match: list[str], interval: str, urls: list[str]) -> dict:
    cfg: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "external_labels": dict(EXTERNAL)},
        "rule_files": ["rules/*.yaml"],
        "scrape_configs": [
            {
                "job_name": "federate",
                "honor_labels": True,  # keep the child's job/instance: the series stay the child's series
                "metrics_path": "/federate",
                "params": {"match[]": list(match)},
                "static_configs": [{"targets": [child.removeprefix("http://")]}],
            },
            {"job_name": "prometheus-global", "static_configs": [{"targets": [f"{HOST}:{port}"]}]},
        ],
    }
    if urls:
        cfg["remote_write"] = local.remote_write_section(urls)
    return cfg


def spec(ctx: PlatformContext) -> ServiceSpec:
    binary = shutil.which("prometheus")
    if binary is None:
        raise registry.PlatformError(
            "service prometheus_global: binary 'prometheus' not found (apt-get install prometheus)"
        )
    port = ctx.port("prometheus_global.http", DEFAULT_PORT)
    child = ctx.url("prometheus.http", local.DEFAULT_PORT)
    o = ctx.options
    match = o.get("prometheus_global.match", DEFAULT_MATCH)
    if isinstance(match, str) or not match:
        raise registry.PlatformError(
            f"option prometheus_global.match {match!r}: allowed a non-empty list of series selectors"
        )
    for i, sel in enumerate(match):
        check_selector(f"prometheus_global.match[{i}]", str(sel))
    interval = o.get("prometheus_global.scrape_interval", "5s")
    retention = o.get("prometheus_global.retention", "15d")
    local.check_retention("prometheus_global.retention", retention, "prometheus_global.scrape_interval", interval)
    urls = local.remote_write_urls(ctx, "prometheus_global.remote_write")
    rules: dict[str, dict[str, Any]] = o.get("prometheus_global.rules") or {}
    conf_dir = ctx.state_dir / "prometheus_global"
    (conf_dir / "rules").mkdir(parents=True, exist_ok=True)
    for old in (conf_dir / "rules").glob("*.yaml"):
        old.unlink()
    for fname, content in rules.items():
        (conf_dir / "rules" / fname).write_text(dump_yaml(content))
    cfg = conf_dir / "prometheus.yaml"
    cfg.write_text(dump_yaml(config(port, child, list(match), interval, urls)))
    local.promtool_check("prometheus_global", cfg)
    live = LiveCheck(child, list(match), rules, float(o.get("prometheus_global.match_wait_s", 30)))
    if _child_up(child):
        live.run()  # the child is already there: refuse before anything starts

    def ready() -> bool:
        return local_ready(port) and live.step()

    argv = [
        binary,
        f"--config.file={cfg}",
        f"--storage.tsdb.path={ctx.data_dir('prometheus_global')}",
        f"--web.listen-address={HOST}:{port}",
        "--web.enable-lifecycle",
        f"--storage.tsdb.retention.time={retention}",
        *o.get("prometheus_global.args", []),
    ]
    return ServiceSpec(
        name="prometheus_global",
        argv=argv,
        ports={"http": port},
        ready=ready,
        log=ctx.log_path("prometheus_global"),
        depends_on=("prometheus",),
        ready_timeout_s=30.0 + live.wait_s,
        info={"config": str(cfg), "federates": child, "match": " ".join(match)},
    )


def local_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/-/ready", timeout=1) as r:
            return r.status == 200
    except (OSError, urllib.error.URLError):
        return False
