"""What the local webhook receiver recorded: one JSON line per Alertmanager notification, with arrival time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read(out: Path) -> list[dict[str, Any]]:
    """Every notification recorded so far."""
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def alerts(out: Path, alertname: str, status: str = "firing") -> list[dict[str, Any]]:
    """Notifications carrying `alertname` in `status` (firing | resolved), with the receiver they came through."""
    found = []
    for rec in read(out):
        for a in rec["payload"].get("alerts", []):
            if a.get("labels", {}).get("alertname") == alertname and a.get("status") == status:
                found.append({**a, "receiver": rec["receiver"], "received_unix": rec["received_unix"]})
    return found
