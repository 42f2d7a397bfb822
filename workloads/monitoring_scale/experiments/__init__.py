"""Types shared by the monitoring-at-scale runners."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

# a query window over long history: whole hours or days, read in seconds with ailab.contract.durations.seconds()
Window = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*[hd]$")]
