"""`promtool test rules` cases for every recording and alert rule: a firing and a not-firing case per alert.

Expected annotations are rendered here with the few template forms the rules use, so a changed summary
shows up as a failing promtool test rather than silently passing.
"""

from __future__ import annotations

import re
from typing import Any

from ailab.observability.rules import Alert, alert_rules, recording_rules

T = 'instance="triton:8002",job="triton",model="m"'
L = 'instance="loadgen:9109",job="loadgen",model="m"'
G = 'gpu="0",instance="node1:9400",job="dcgm",Hostname="node1"'
X = 'gpu="0",instance="node1:9108",job="lab-exporter",node="node1"'


def _labels(s: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', s))


def _render(template: str, labels: dict[str, str], value: float) -> str:
    """Render the Go template forms used in rules.py: $labels.x, $value, printf "%.Nf", humanizePercentage."""

    def one(m: re.Match[str]) -> str:
        body = m.group(1).strip()
        if body.startswith("$labels."):
            return labels.get(body.removeprefix("$labels."), "")
        if body == "$value":
            return f"{value:g}"
        if f := re.fullmatch(r'\$value \| printf "%\.(\d)f"', body):
            return f"{value:.{int(f.group(1))}f}"
        if body == "$value | humanizePercentage":
            return f"{value * 100:.4g}%"
        raise ValueError(f"template {body!r}: not supported by the test renderer")

    return re.sub(r"\{\{(.*?)\}\}", one, template)


def _bucket_series(labels: str, per_le: dict[str, int]) -> list[dict[str, str]]:
    """Cumulative histogram counters growing by `per_le[le]` per 15 s step."""
    return [
        {"series": f'lab_loadgen_request_duration_seconds_bucket{{{labels},le="{le}"}}', "values": f"0+{n}x80"}
        for le, n in per_le.items()
    ]


def _hq(start: float, end: float, q: float) -> float:
    """histogram_quantile inside one bucket, with Prometheus' float operations (rate 10 per 15 s = 40/60)."""
    r = 40 / 60
    return start + (end - start) * ((q * r) / r)


Q_RISING = "0+15000x40 660000+60000x39"  # queue µs counter: 1000 µs/request, then 4000 µs/request
SLOW = {"0.1": 0, "0.25": 0, "0.5": 0, "1": 10, "2.5": 10, "+Inf": 10}  # every request in (0.5, 1] s
VERY_SLOW = {"0.1": 0, "0.25": 0, "0.5": 0, "1": 0, "2.5": 10, "+Inf": 10}  # every request in (1, 2.5] s
FAST = {"0.1": 0, "0.25": 10, "0.5": 10, "1": 10, "2.5": 10, "+Inf": 10}  # every request in (0.1, 0.25] s

# alert -> (firing inputs, eval time, alert labels, $value) and (not-firing inputs, eval time)
ALERT_CASES: dict[str, dict[str, Any]] = {
    "GPUUtilizationHigh": {
        "fire": ([{"series": f"DCGM_FI_DEV_GPU_UTIL{{{G}}}", "values": "95x40"}], "7m", G, 95),
        "fire_fallback": ([{"series": f"lab_gpu_utilization_ratio{{{X}}}", "values": "0.95x40"}], "7m", X, 95),
        "quiet": ([{"series": f"DCGM_FI_DEV_GPU_UTIL{{{G}}}", "values": "80x40"}], "7m"),
    },
    "GPUTemperatureHigh": {
        "fire": ([{"series": f"DCGM_FI_DEV_GPU_TEMP{{{G}}}", "values": "87x20"}], "3m", G, 87),
        "fire_fallback": ([{"series": f"lab_gpu_temperature_celsius{{{X}}}", "values": "86x20"}], "3m", X, 86),
        "quiet": ([{"series": f"DCGM_FI_DEV_GPU_TEMP{{{G}}}", "values": "85x20"}], "3m"),
    },
    "GPUXidErrors": {
        "fire": ([{"series": f"DCGM_FI_DEV_XID_ERRORS{{{G}}}", "values": "0 79x10"}], "1m", G, 79),
        "quiet": ([{"series": f"DCGM_FI_DEV_XID_ERRORS{{{G}}}", "values": "0x10"}], "1m"),
    },
    "TritonP99LatencyHigh": {
        "fire": (_bucket_series(L, SLOW), "5m", L, _hq(0.5, 1, 0.99)),
        "quiet": (_bucket_series(L, FAST), "5m"),
    },
    "TritonP99LatencyCritical": {
        "fire": (_bucket_series(L, VERY_SLOW), "5m", L, 2.485),
        "quiet": (_bucket_series(L, SLOW), "5m"),
    },
    "TritonFailureRatioHigh": {
        "fire": (
            [
                {"series": f'nv_inference_request_success{{{T},version="1"}}', "values": "0+25x80"},
                {"series": f'nv_inference_request_failure{{{T},reason="BACKEND",version="1"}}', "values": "0+1x80"},
            ],
            "5m",
            T,
            1 / 26,
        ),
        "quiet": (
            [
                {"series": f'nv_inference_request_success{{{T},version="1"}}', "values": "0+25x80"},
                {"series": f'nv_inference_request_failure{{{T},reason="BACKEND",version="1"}}', "values": "0x80"},
            ],
            "5m",
        ),
    },
    "TritonQueueTimeRising": {
        # 1 req/s throughout; queue time 1000 µs/request for 10 minutes, then 4000 µs/request
        "fire": (
            [
                {"series": f'nv_inference_request_success{{{T},version="1"}}', "values": "0+15x80"},
                {"series": f'nv_inference_queue_duration_us{{{T},version="1"}}', "values": Q_RISING},
            ],
            "14m",
            T,
            4000,
        ),
        "quiet": (
            [
                {"series": f'nv_inference_request_success{{{T},version="1"}}', "values": "0+15x80"},
                {"series": f'nv_inference_queue_duration_us{{{T},version="1"}}', "values": "0+15000x80"},
            ],
            "14m",
        ),
    },
    "TargetDown": {
        "fire": ([{"series": 'up{instance="triton:8002",job="triton"}', "values": "0x10"}], "2m",
                 'instance="triton:8002",job="triton"', 0),
        "quiet": ([{"series": 'up{instance="triton:8002",job="triton"}', "values": "1x10"}], "2m"),
    },
}  # fmt: skip

# recording rule -> (inputs, eval time, expected samples as (labels, value))
RECORDING_CASES: dict[str, tuple[list[dict[str, str]], str, list[tuple[str, float]]]] = {
    "model:nv_inference_request_success:rate1m": (
        [{"series": f'nv_inference_request_success{{{T},version="1"}}', "values": "0+30x20"}],
        "3m",
        [(T, 2)],
    ),
    "model:nv_inference_request_failure:rate1m": (
        [
            {"series": f'nv_inference_request_failure{{{T},reason="BACKEND",version="1"}}', "values": "0+15x20"},
            {"series": f'nv_inference_request_failure{{{T},reason="REJECTED",version="1"}}', "values": "0+15x20"},
        ],
        "3m",
        [(T, 2)],
    ),
    "model:nv_inference_failure:ratio1m": (
        [
            {"series": f'nv_inference_request_success{{{T},version="1"}}', "values": "0+45x20"},
            {"series": f'nv_inference_request_failure{{{T},reason="BACKEND",version="1"}}', "values": "0+15x20"},
        ],
        "3m",
        [(T, 0.25)],
    ),
    "model:nv_inference_batch_size:avg1m": (
        [
            {"series": f'nv_inference_count{{{T},version="1"}}', "values": "0+120x20"},
            {"series": f'nv_inference_exec_count{{{T},version="1"}}', "values": "0+15x20"},
        ],
        "3m",
        [(T, 8)],
    ),
    "model:nv_inference_queue_per_request:avg1m_us": (
        [
            {"series": f'nv_inference_request_success{{{T},version="1"}}', "values": "0+30x20"},
            {"series": f'nv_inference_queue_duration_us{{{T},version="1"}}', "values": "0+15000x20"},
        ],
        "3m",
        [(T, 500)],
    ),
    "model:lab_loadgen_request_duration_seconds:p50_1m": (_bucket_series(L, FAST), "3m", [(L, 0.175)]),
    "model:lab_loadgen_request_duration_seconds:p95_1m": (_bucket_series(L, FAST), "3m", [(L, 0.2425)]),
    "model:lab_loadgen_request_duration_seconds:p99_1m": (_bucket_series(L, SLOW), "3m", [(L, _hq(0.5, 1, 0.99))]),
    "node:gpu_utilization:avg_percent": (
        [
            {"series": 'DCGM_FI_DEV_GPU_UTIL{gpu="0",Hostname="node1",job="dcgm"}', "values": "40x10"},
            {"series": 'DCGM_FI_DEV_GPU_UTIL{gpu="1",Hostname="node1",job="dcgm"}', "values": "80x10"},
            {"series": 'lab_gpu_utilization_ratio{gpu="0",node="node2",job="lab-exporter"}', "values": "0.5x10"},
        ],
        "2m",
        [('node="node1"', 60), ('node="node2"', 50)],
    ),
}


def _alert_test(a: Alert, case: tuple[Any, ...]) -> dict[str, Any]:
    inputs, at = case[0], case[1]
    exp: list[dict[str, Any]] = []
    if len(case) == 4:
        labels = {**_labels(case[2]), "severity": a.severity, **a.labels}
        ann = a.to_dict()["annotations"]
        exp = [
            {
                "exp_labels": labels,
                "exp_annotations": {k: _render(v, labels, case[3]) for k, v in ann.items()},
            }
        ]
    return {
        "interval": "15s",
        "input_series": inputs,
        "alert_rule_test": [{"eval_time": at, "alertname": a.alert, "exp_alerts": exp}],
    }


def alert_tests(p99_threshold_s: float) -> dict[str, Any]:
    """promtool test file body for the alert rules (rule_files are filled in by the caller)."""
    tests = []
    for group in alert_rules(p99_threshold_s).values():
        for a in group:
            cases = ALERT_CASES.get(a.alert)
            if not cases or "fire" not in cases or "quiet" not in cases:
                raise ValueError(f"alert {a.alert}: needs a 'fire' and a 'quiet' case in ruletests.ALERT_CASES")
            tests += [_alert_test(a, c) for c in cases.values()]
    return {"evaluation_interval": "15s", "tests": tests}


def recording_tests() -> dict[str, Any]:
    """promtool test file body for the recording rules."""
    tests = []
    for group in recording_rules().values():
        for r in group:
            if r.record not in RECORDING_CASES:
                raise ValueError(f"recording rule {r.record}: needs a case in ruletests.RECORDING_CASES")
            inputs, at, samples = RECORDING_CASES[r.record]
            tests.append(
                {
                    "interval": "15s",
                    "input_series": inputs,
                    "promql_expr_test": [
                        {
                            "expr": r.record,
                            "eval_time": at,
                            "exp_samples": [{"labels": f"{r.record}{{{lab}}}", "value": v} for lab, v in samples],
                        }
                    ],
                }
            )
    return {"evaluation_interval": "15s", "tests": tests}
