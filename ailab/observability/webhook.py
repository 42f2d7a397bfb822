"""A webhook receiver for Alertmanager that records every notification, one JSON line each, with arrival time.

`python -m ailab.observability.webhook --port 9095 --out notifications.jsonl`; the URL path names the
receiver (`/critical`, `/warning`), so a drill can check which route delivered an alert. The runners read the
recorded file with workloads/observability/notifications.py.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def make_handler(out: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                payload = json.loads(body or b"{}")
            except json.JSONDecodeError:
                self.send_response(400)
                self.end_headers()
                return
            rec = {"received_unix": time.time(), "receiver": self.path.strip("/") or "default", "payload": payload}
            with lock, out.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:  # readiness probe
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *args: Any) -> None:  # quiet: the JSON lines are the log
            pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=9095)
    ap.add_argument("--out", type=Path, required=True, help="JSON-lines file of notifications")
    a = ap.parse_args(argv)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(a.out))
    print(f"webhook receiver on http://127.0.0.1:{a.port}, recording to {a.out}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
