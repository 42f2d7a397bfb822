"""Triton's Prometheus metrics for one model, read before and after a window: batch size, queue and compute time."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, fields

from prometheus_client.parser import text_string_to_metric_families

# Triton metric name -> ModelCounters field (all counters; durations are cumulative microseconds)
COUNTERS = {
    "nv_inference_request_success": "request_success",
    "nv_inference_request_failure": "request_failure",
    "nv_inference_count": "inference_count",
    "nv_inference_exec_count": "exec_count",
    "nv_inference_request_duration_us": "request_us",
    "nv_inference_queue_duration_us": "queue_us",
    "nv_inference_compute_input_duration_us": "compute_input_us",
    "nv_inference_compute_infer_duration_us": "compute_infer_us",
    "nv_inference_compute_output_duration_us": "compute_output_us",
}


@dataclass(frozen=True)
class ModelCounters:
    """Cumulative per-model counters (summed over versions) or the difference of two readings."""

    request_success: float = 0.0
    request_failure: float = 0.0
    inference_count: float = 0.0  # inferences = sum of batch sizes of the requests
    exec_count: float = 0.0  # model executions (one per dynamic batch)
    request_us: float = 0.0
    queue_us: float = 0.0
    compute_input_us: float = 0.0
    compute_infer_us: float = 0.0
    compute_output_us: float = 0.0

    def __sub__(self, other: ModelCounters) -> ModelCounters:
        return ModelCounters(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    @property
    def avg_batch(self) -> float:
        """Average executed batch size, Triton's own definition: nv_inference_count / nv_inference_exec_count."""
        return self.inference_count / self.exec_count if self.exec_count else 0.0

    def per_request_us(self, field_name: str) -> float:
        """A cumulative duration divided by successful requests (µs per request)."""
        return getattr(self, field_name) / self.request_success if self.request_success else 0.0

    @property
    def compute_us(self) -> float:
        return self.compute_input_us + self.compute_infer_us + self.compute_output_us


def scrape(url: str, timeout: float = 5.0) -> str:
    """The metrics page text (url like http://127.0.0.1:8002/metrics)."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def parse(text: str, model: str) -> ModelCounters:
    """Sum each counter over the versions of `model` in a metrics page."""
    acc = {v: 0.0 for v in COUNTERS.values()}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name = s.name.removesuffix("_total")
            if name in COUNTERS and s.labels.get("model") == model:
                acc[COUNTERS[name]] += s.value
    return ModelCounters(**acc)


def read(url: str, model: str) -> ModelCounters:
    return parse(scrape(url), model)
