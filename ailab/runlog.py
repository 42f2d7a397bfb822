"""Keep the terminal for the lab's own lines: while an experiment runs, everything else (third-party warnings,
a runner's own prints, child processes' output on the inherited descriptors) goes to the run's log file."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ailab.contract.paths import state_dir


def new_log_path() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = state_dir() / "logs" / f"run-{stamp}-{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def terminal() -> TextIO:
    """A text stream on the terminal as it is now, unaffected by later redirection of descriptors 1 and 2."""
    return os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8", closefd=True)


@contextmanager
def captured(log_path: Path) -> Iterator[TextIO]:
    """Send descriptors 1 and 2, Python warnings and logging to `log_path` (appended) for the duration."""
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log_path, "a", buffering=1, encoding="utf-8") as log:
        saved = os.dup(1), os.dup(2)
        old_showwarning = warnings.showwarning
        handler = logging.StreamHandler(log)
        root = logging.getLogger()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)

        def _to_log(message, category, filename, lineno, file=None, line=None):
            log.write(warnings.formatwarning(message, category, filename, lineno, line))

        warnings.showwarning = _to_log
        root.addHandler(handler)
        try:
            yield log
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            root.removeHandler(handler)
            warnings.showwarning = old_showwarning
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
