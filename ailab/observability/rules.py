"""Prometheus recording and alert rules: one definition, rendered for the cluster (PrometheusRule) and `lab up`.

Metric sources: Triton's metrics port (`nv_*`, counters in microseconds), the DCGM exporter (`DCGM_FI_*`),
the lab exporter (`lab_gpu_*`, `lab_host_*`: the fallback when there is no DCGM) and the lab load generator
(`lab_loadgen_*`, a client-side latency histogram in seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_P99_THRESHOLD_S = 0.5  # end-to-end P99 above this warns; 2x this is critical
RUNBOOK_URL = "https://github.com/ai-infra-lab/ailab/blob/main/docs/observability.md#runbooks"


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str
    help: str  # one line, with the unit

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


@dataclass(frozen=True)
class Alert:
    alert: str
    expr: str
    for_: str
    severity: str  # critical | warning
    summary: str
    runbook: str
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, **self.labels},
            "annotations": {
                "summary": self.summary,
                "runbook": self.runbook,
                "runbook_url": f"{RUNBOOK_URL}-{self.alert.lower()}",
            },
        }


BY_MODEL = "instance, job, model"
V3 = '{{ $value | printf "%.3f" }}'  # seconds with 3 decimals: readable, and stable in promtool tests
LG_BUCKET = "lab_loadgen_request_duration_seconds_bucket"


def recording_rules() -> dict[str, list[Recording]]:
    """Recording rules by group name."""
    triton = [
        Recording(
            "model:nv_inference_request_success:rate1m",
            f"sum by ({BY_MODEL}) (rate(nv_inference_request_success[1m]))",
            "successful requests per second (QPS) over 1 minute, req/s",
        ),
        Recording(
            "model:nv_inference_request_failure:rate1m",
            f"sum by ({BY_MODEL}) (rate(nv_inference_request_failure[1m]))",
            "failed requests per second over 1 minute, req/s",
        ),
        Recording(
            "model:nv_inference_failure:ratio1m",
            "model:nv_inference_request_failure:rate1m"
            " / (model:nv_inference_request_success:rate1m + model:nv_inference_request_failure:rate1m)",
            "failed / all requests over 1 minute, ratio 0-1",
        ),
        Recording(
            "model:nv_inference_batch_size:avg1m",
            f"sum by ({BY_MODEL}) (rate(nv_inference_count[1m]))"
            f" / sum by ({BY_MODEL}) (rate(nv_inference_exec_count[1m]))",
            "average batch size = nv_inference_count / nv_inference_exec_count over 1 minute, requests/execution",
        ),
        Recording(
            "model:nv_inference_queue_per_request:avg1m_us",
            f"sum by ({BY_MODEL}) (rate(nv_inference_queue_duration_us[1m]))"
            f" / sum by ({BY_MODEL}) (rate(nv_inference_request_success[1m]))",
            "average queue time per successful request over 1 minute, µs",
        ),
    ]
    loadgen = [
        Recording(
            f"model:lab_loadgen_request_duration_seconds:p{q}_1m",
            f"histogram_quantile(0.{q}, sum by (le, {BY_MODEL}) (rate({LG_BUCKET}[1m])))",
            f"client-side end-to-end P{q} latency from histogram buckets over 1 minute, s",
        )
        for q in ("50", "95", "99")
    ]
    gpu = [
        Recording(
            "node:gpu_utilization:avg_percent",
            'avg by (node) (label_replace(DCGM_FI_DEV_GPU_UTIL, "node", "$1", "Hostname", "(.+)"))'
            " or avg by (node) (lab_gpu_utilization_ratio * 100)",
            "mean GPU utilisation of a node's GPUs (DCGM, else the lab exporter), %",
        ),
    ]
    return {"lab-triton.rules": triton, "lab-loadgen.rules": loadgen, "lab-gpu.rules": gpu}


def alert_rules(p99_threshold_s: float = DEFAULT_P99_THRESHOLD_S) -> dict[str, list[Alert]]:
    """Alert rules by group name; `p99_threshold_s` is the end-to-end P99 warning threshold in seconds."""
    if not p99_threshold_s > 0:
        raise ValueError(f"p99_threshold_s {p99_threshold_s}: must be > 0 seconds")
    p99 = "model:lab_loadgen_request_duration_seconds:p99_1m"
    crit = round(2 * p99_threshold_s, 6)
    gpu = [
        Alert(
            "GPUUtilizationHigh",
            "DCGM_FI_DEV_GPU_UTIL > 90 or lab_gpu_utilization_ratio * 100 > 90",
            "5m",
            "warning",
            "GPU {{ $labels.gpu }} on {{ $labels.instance }} has been above 90% utilisation for 5 minutes "
            '({{ $value | printf "%.0f" }}%).',
            "Sustained saturation: check the serving queue time and P99 panels; scale out replicas or add GPUs "
            "if latency is rising, otherwise it is healthy use of a paid-for GPU.",
        ),
        Alert(
            "GPUTemperatureHigh",
            "DCGM_FI_DEV_GPU_TEMP > 85 or lab_gpu_temperature_celsius > 85",
            "1m",
            "critical",
            "GPU {{ $labels.gpu }} on {{ $labels.instance }} is at {{ $value }} °C (> 85 °C).",
            "Above 85 °C the GPU throttles its clocks (watch DCGM_FI_DEV_SM_CLOCK fall): check fans and airflow, "
            "nvidia-smi -q -d PERFORMANCE for thermal slowdown, and drain the node if it keeps rising.",
        ),
        Alert(
            "GPUXidErrors",
            "DCGM_FI_DEV_XID_ERRORS > 0",
            "0m",
            "critical",
            "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported XID error {{ $value }}.",
            "Look the XID code up in NVIDIA's XID table; 48/63/64/79 usually mean the GPU must be drained and reset.",
        ),
    ]
    serving = [
        Alert(
            "TritonP99LatencyHigh",
            f"{p99} > {p99_threshold_s}",
            "1m",
            "warning",
            f"P99 latency of {{{{ $labels.model }}}} is {V3} s (> {p99_threshold_s} s) for 1 minute.",
            "Compare queue time and compute time on the Triton dashboard: queue-bound means add instances or raise "
            "max_queue_delay/batch size; compute-bound means a faster model or more GPUs.",
        ),
        Alert(
            "TritonP99LatencyCritical",
            f"{p99} > {crit}",
            "1m",
            "critical",
            f"P99 latency of {{{{ $labels.model }}}} is {V3} s (> {crit} s, twice the SLO).",
            "The SLO is badly missed: shed load (rate limit) first, then follow TritonP99LatencyHigh's runbook.",
        ),
        Alert(
            "TritonFailureRatioHigh",
            "model:nv_inference_failure:ratio1m > 0.01",
            "2m",
            "critical",
            "{{ $labels.model }} on {{ $labels.instance }} fails {{ $value | humanizePercentage }} of requests.",
            "Read tritonserver's log for the failure reason label (REJECTED = queue full, BACKEND = model error); "
            "roll back the last model change if it started with a deploy.",
        ),
        Alert(
            "TritonQueueTimeRising",
            "model:nv_inference_queue_per_request:avg1m_us > 1000"
            " and model:nv_inference_queue_per_request:avg1m_us"
            " > 2 * (model:nv_inference_queue_per_request:avg1m_us offset 5m)",
            "2m",
            "warning",
            "Queue time per request of {{ $labels.model }} doubled in 5 minutes (now {{ $value }} µs).",
            "Requests wait longer than they compute: traffic is outgrowing capacity; add model instances or "
            "replicas before P99 breaks the SLO.",
        ),
    ]
    targets = [
        Alert(
            "TargetDown",
            "up == 0",
            "1m",
            "critical",
            "Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}.",
            "Check the process (lab status / kubectl get pods) and its log; every panel fed by this target is blind.",
        ),
    ]
    return {"lab-gpu.alerts": gpu, "lab-serving.alerts": serving, "lab-targets.alerts": targets}


def rule_file(groups: dict[str, list[Recording]] | dict[str, list[Alert]], interval: str = "") -> dict[str, Any]:
    """A Prometheus rule file (top-level `groups:`), also the `spec` of a PrometheusRule."""
    out = []
    for name, rules in groups.items():
        g: dict[str, Any] = {"name": name}
        if interval:
            g["interval"] = interval
        g["rules"] = [r.to_dict() for r in rules]
        out.append(g)
    return {"groups": out}
