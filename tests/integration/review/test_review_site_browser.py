"""`lab site` in a real headless Chromium, driven over the Chrome DevTools protocol (websocket-client): every page
loads with no console error or failed resource, every image is decoded, every local link points at a file, and the
screenshots of the home page and of one week's review are real pictures. Skipped, saying why, only where no
Chromium is installed (Debian: apt-get install chromium). Nothing is mocked."""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from ailab.site import build

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this host: apt-get install chromium"),
]


class Tab:
    """One page target of a headless Chromium over CDP; events seen while waiting are kept in `events`."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60)
        self.n = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == event:
                return
        raise TimeoutError(event)

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(p["exceptionDetails"].get("text", "exception"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def js(self, expr: str) -> Any:
        return self.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("site") / "site"
    return out, build(out)


@pytest.fixture(scope="module")
def tab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tab]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1280,900",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.monotonic() + 60
        while not port_file.is_file() or not port_file.read_text().strip():
            assert proc.poll() is None and time.monotonic() < end, "Chromium did not start its DevTools endpoint"
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t["type"] == "page")
        t = Tab(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            t.call(f"{domain}.enable")
        yield t
        t.ws.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_every_page_loads_without_console_errors_and_resolves(site: tuple[Path, Any], tab: Tab) -> None:
    out, report = site
    problems = [f"{src}: link resolving to nothing: {link}" for src, link in report.broken]
    for page in report.pages:
        tab.open(page.as_uri())
        if errs := tab.errors():
            problems.append(f"{page.relative_to(out)}: console errors {errs}")
        bad_images = tab.js("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
        if bad_images:
            problems.append(f"{page.relative_to(out)}: images not decoded {bad_images}")
        for href in tab.js("[...document.links].map(a => a.href)"):
            u = urlparse(href)
            if u.scheme == "file" and not Path(unquote(u.path)).exists():
                problems.append(f"{page.relative_to(out)}: link to missing {href}")
    assert not problems, "\n".join(problems[:40])


@pytest.mark.parametrize("page", ["index.html", "reports/week03/review.html"])
def test_screenshots_are_real_pictures(site: tuple[Path, Any], tab: Tab, page: str, tmp_path: Path) -> None:
    out, _ = site
    tab.open((out / page).as_uri())
    data = base64.b64decode(tab.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
    (tmp_path / "shot.png").write_bytes(data)
    width, height = _png_size(data)
    assert width >= 800 and height >= 600, (width, height)
    assert len(data) > 20_000, f"{page}: screenshot only {len(data)} bytes: a blank page?"
