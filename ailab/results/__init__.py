"""Results with provenance: one JSON file per experiment and host class."""

from ailab.results.store import Result, load_day, result_path, save

__all__ = ["Result", "load_day", "result_path", "save"]
