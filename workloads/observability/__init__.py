"""Observability experiments (days 6, 13, 14, 46): runners in experiments/<idea>.py, bindings in bindings.yaml.

Library modules: `prom` (a Prometheus HTTP API client), `stack` (the observed local platform, started through the
runner's context), `metering` (metered traffic, process usage, range queries), `quantiles`, `notifications` (what the
webhook receiver recorded), `rulefiles` (the generated rule files under dashboards/, read as data), `gpuwatch`
(NVML readings through the lab exporter, the day-46 runners).
"""
