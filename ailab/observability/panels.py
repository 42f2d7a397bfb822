"""The dashboards' panels as plain data: title, PromQL queries, unit and where they can return data.

`scope` says where a panel has data: "local" (the embedded default: Triton, the lab exporter, the load generator,
Prometheus itself), "gpu" (needs a GPU: DCGM exporter or the lab exporter reading NVML), "cluster" (needs a
cluster-only exporter) or "gateway" (needs HAProxy's own exporter: the platform of the gateway weeks). The
integration test runs every query against a live Prometheus and expects data from every "local" panel.
"""

from __future__ import annotations

from dataclasses import dataclass

RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str  # a Grafana unit id: reqps, s, µs, percent, percentunit, bytes, watt, celsius, hertz, short, ...
    description: str
    scope: str = "local"  # local | gpu | cluster | gateway
    kind: str = "timeseries"  # timeseries | stat


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


TF = 'instance=~"$instance", model=~"$model"'  # Triton filter
LF = 'model=~"$model"'  # load generator filter
IF = 'instance=~"$instance"'


def _rate(metric: str, flt: str = TF, by: str = "model") -> str:
    return f"sum by ({by}) (rate({metric}{{{flt}}}[{RATE}]))"


TRITON = (
    Panel("QPS (successful requests)", (q(_rate("nv_inference_request_success"), "{{model}}"),), "reqps",
          "Successful inference requests per second, per model (nv_inference_request_success)."),
    Panel("Failures per second",
          (q(_rate("nv_inference_request_failure", by="model, reason"), "{{model}} {{reason}}"),),
          "reqps", "Failed requests per second by Triton's failure reason (nv_inference_request_failure)."),
    Panel("Success ratio",
          (q(f"{_rate('nv_inference_request_success')} / ({_rate('nv_inference_request_success')}"
             f" + {_rate('nv_inference_request_failure')})", "{{model}}"),),
          "percentunit", "Successful / all requests."),
    Panel("Server latency quantiles (queue, compute)",
          (q(f'nv_inference_queue_summary_us{{{TF}, quantile=~"0.5|0.95|0.99"}}', "queue p{{quantile}} {{model}}"),
           q(f'nv_inference_compute_infer_summary_us{{{TF}, quantile=~"0.5|0.95|0.99"}}',
             "compute p{{quantile}} {{model}}")),
          "µs", "Triton's own quantiles (needs --metrics-config summary_latencies=true); Triton 2.51 has no request "
          "duration summary, and quantiles of summaries cannot be added or aggregated across instances."),
    Panel("End-to-end latency p50 / p95 / p99 (client histogram)",
          tuple(q(f"histogram_quantile({p}, sum by (le, model) (rate(lab_loadgen_request_duration_seconds_bucket"
                  f"{{{LF}}}[{RATE}])))", f"p{p[2:]} {{{{model}}}}") for p in ("0.50", "0.95", "0.99")),
          "s", "Quantiles from the load generator's histogram buckets: aggregatable, bucket-resolution accurate."),
    Panel("Average request latency (server)",
          (q(f"{_rate('nv_inference_request_duration_us')} / {_rate('nv_inference_request_success')}", "{{model}}"),),
          "µs", "nv_inference_request_duration_us / nv_inference_request_success: mean time inside Triton."),
    Panel("Queue vs compute time per request",
          (q(f"{_rate('nv_inference_queue_duration_us')} / {_rate('nv_inference_request_success')}", "queue {{model}}"),
           q(f"{_rate('nv_inference_compute_infer_duration_us')} / {_rate('nv_inference_request_success')}",
             "compute {{model}}")),
          "µs", "Queue time growing faster than compute time means requests wait for capacity."),
    Panel("Average batch size",
          (q(f"{_rate('nv_inference_count')} / {_rate('nv_inference_exec_count')}", "{{model}}"),),
          "short", "nv_inference_count / nv_inference_exec_count: requests per model execution (dynamic batching)."),
    Panel("Response cache hit rate",
          (q(f"{_rate('nv_cache_num_hits_per_model')} / ({_rate('nv_cache_num_hits_per_model')}"
             f" + {_rate('nv_cache_num_misses_per_model')})", "{{model}}"),),
          "percentunit", "Cache hits / lookups (needs --cache-config and response_cache in the model config)."),
    Panel("Pending requests", (q(f"sum by (model) (nv_inference_pending_request_count{{{TF}}})", "{{model}}"),),
          "short", "Requests accepted but not yet executed (nv_inference_pending_request_count)."),
    Panel("QPS over 1m (recording rule)",
          (q('sum by (model) (model:nv_inference_request_success:rate1m{model=~"$model"})', "{{model}}"),),
          "reqps", "The recording rule model:nv_inference_request_success:rate1m: cheaper than the raw rate()."),
)  # fmt: skip


def _gpu(dcgm: str, lab: str) -> str:
    """A DCGM exporter expression, else the lab exporter's NVML reading of the same quantity."""
    return f"({dcgm}) or ({lab})"


GF = 'instance=~"$instance"'
GPU = (
    Panel("GPU utilisation", (q(_gpu(f"DCGM_FI_DEV_GPU_UTIL{{{GF}}}", f"lab_gpu_utilization_ratio{{{GF}}} * 100"),
                                "{{instance}} gpu {{gpu}}"),), "percent",
          "DCGM_FI_DEV_GPU_UTIL, else lab_gpu_utilization_ratio: share of time a kernel was running.", "gpu"),
    Panel("GPU memory used", (q(_gpu(f"DCGM_FI_DEV_FB_USED{{{GF}}} * 1048576", f"lab_gpu_memory_used_bytes{{{GF}}}"),
                                "{{instance}} gpu {{gpu}}"),), "bytes",
          "DCGM_FI_DEV_FB_USED (MiB), else lab_gpu_memory_used_bytes.", "gpu"),
    Panel("Power draw", (q(_gpu(f"DCGM_FI_DEV_POWER_USAGE{{{GF}}}", f"lab_gpu_power_watts{{{GF}}}"),
                           "{{instance}} gpu {{gpu}}"),), "watt",
          "DCGM_FI_DEV_POWER_USAGE, else lab_gpu_power_watts.", "gpu"),
    Panel("Temperature", (q(_gpu(f"DCGM_FI_DEV_GPU_TEMP{{{GF}}}", f"lab_gpu_temperature_celsius{{{GF}}}"),
                            "{{instance}} gpu {{gpu}}"),), "celsius",
          "DCGM_FI_DEV_GPU_TEMP, else lab_gpu_temperature_celsius; GPUTemperatureHigh fires above 85 °C.", "gpu"),
    Panel("SM clock", (q(_gpu(f"DCGM_FI_DEV_SM_CLOCK{{{GF}}} * 1e6", f"lab_gpu_sm_clock_hertz{{{GF}}}"),
                         "{{instance}} gpu {{gpu}}"),), "hertz",
          "DCGM_FI_DEV_SM_CLOCK (MHz), else lab_gpu_sm_clock_hertz; falls when the GPU throttles.", "gpu"),
    Panel("Memory clock", (q(_gpu(f"DCGM_FI_DEV_MEM_CLOCK{{{GF}}} * 1e6", f"lab_gpu_memory_clock_hertz{{{GF}}}"),
                             "{{instance}} gpu {{gpu}}"),), "hertz",
          "DCGM_FI_DEV_MEM_CLOCK (MHz), else lab_gpu_memory_clock_hertz.", "gpu"),
    Panel("Memory bandwidth utilisation", (q(_gpu(f"DCGM_FI_DEV_MEM_COPY_UTIL{{{GF}}}",
                                                  f"lab_gpu_memory_utilization_ratio{{{GF}}} * 100"),
                                             "{{instance}} gpu {{gpu}}"),), "percent",
          "DCGM_FI_DEV_MEM_COPY_UTIL, else lab_gpu_memory_utilization_ratio.", "gpu"),
    Panel("XID errors", (q(f"DCGM_FI_DEV_XID_ERRORS{{{GF}}}", "{{Hostname}} gpu {{gpu}}"),), "short",
          "Last XID error code (DCGM only; the lab exporter does not read XIDs).", "cluster"),
    Panel("GPU memory by process", (q(f"sum by (instance, gpu, process) (lab_gpu_process_memory_used_bytes{{{GF}}})",
                                      "{{process}} gpu {{gpu}}"),), "bytes",
          "Per-process GPU memory from NVML (lab exporter; DCGM has no per-process metric).", "gpu"),
    Panel("GPU utilisation by node (recording rule)", (q("node:gpu_utilization:avg_percent", "{{node}}"),),
          "percent", "node:gpu_utilization:avg_percent: mean over a node's GPUs.", "gpu"),
)  # fmt: skip

HOST = (
    Panel("CPU utilisation",
          (q(f'(1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle", {IF}}}[{RATE}]))) * 100'
             f" or lab_host_cpu_utilization_ratio{{{IF}}} * 100", "{{instance}}"),),
          "percent", "node exporter (idle CPU time), else the lab exporter's host fallback."),
    Panel("Memory used",
          (q(f"(node_memory_MemTotal_bytes{{{IF}}} - node_memory_MemAvailable_bytes{{{IF}}})"
             f" or lab_host_memory_used_bytes{{{IF}}}", "{{instance}}"),),
          "bytes", "MemTotal - MemAvailable (node exporter), else the lab exporter's host fallback."),
    Panel("Load average (1m)", (q(f"node_load1{{{IF}}} or lab_host_load1{{{IF}}}", "{{instance}}"),), "short",
          "Runnable + uninterruptible tasks, 1-minute average."),
    Panel("Network receive",
          (q(f'sum by (instance) (rate(node_network_receive_bytes_total{{device!="lo", {IF}}}[{RATE}]))'
             f" or sum by (instance) (rate(lab_host_network_receive_bytes_total{{{IF}}}[{RATE}]))", "{{instance}}"),),
          "Bps", "Bytes received per second, loopback excluded on node exporter."),
    Panel("Filesystem used",
          (q(f'1 - node_filesystem_avail_bytes{{fstype!~"tmpfs|overlay", {IF}}}'
             f' / node_filesystem_size_bytes{{fstype!~"tmpfs|overlay", {IF}}}', "{{instance}} {{mountpoint}}"),),
          "percentunit", "Per mount point (node exporter only).", "cluster"),
    Panel("Prometheus resident memory", (q('process_resident_memory_bytes{job="prometheus"}', "{{instance}}"),),
          "bytes", "Prometheus' own RSS: grows with active series (see d06.e4)."),
    Panel("Prometheus head series", (q('prometheus_tsdb_head_series{job="prometheus"}', "{{instance}}"),),
          "short", "Active series in the TSDB head block."),
)  # fmt: skip

LOADTEST = (
    Panel("Offered vs achieved rate",
          (q(f"sum by (model) (lab_loadgen_target_rps{{{LF}}})", "offered {{model}}"),
           q(f"sum by (model) (rate(lab_loadgen_requests_total{{{LF}}}[{RATE}]))", "achieved {{model}}")),
          "reqps", "The load generator's target rate and the rate it completed."),
    Panel("Requests by outcome", (q(f"sum by (outcome) (rate(lab_loadgen_requests_total{{{LF}}}[{RATE}]))",
                                    "{{outcome}}"),), "reqps", "ok / error per second, as the client saw them."),
    Panel("Client error ratio",
          (q(f'sum(rate(lab_loadgen_requests_total{{outcome="error", {LF}}}[{RATE}]))'
             f" / sum(rate(lab_loadgen_requests_total{{{LF}}}[{RATE}]))", "error ratio"),),
          "percentunit", "Failed / all requests seen by the client."),
    Panel("Client latency p50 / p95 / p99",
          tuple(q(f"histogram_quantile({p}, sum by (le) (rate(lab_loadgen_request_duration_seconds_bucket"
                  f"{{{LF}}}[{RATE}])))", f"p{p[2:]}") for p in ("0.50", "0.95", "0.99")),
          "s", "From the histogram buckets; exemplars carry the trace_id of slow requests."),
    Panel("P99 over 1m (recording rule)",
          (q(f"model:lab_loadgen_request_duration_seconds:p99_1m{{{LF}}}", "{{model}}"),),
          "s", "The rule TritonP99LatencyHigh compares with its threshold."),
    Panel("In-flight requests", (q(f"sum by (model) (lab_loadgen_in_flight_requests{{{LF}}})", "{{model}}"),),
          "short", "Requests sent and not yet answered (concurrency actually reached)."),
)  # fmt: skip

HF = 'instance=~"$instance"'  # HAProxy filter
CANARY_2XX = f'haproxy_server_http_responses_total{{proxy="canary", code="2xx", {HF}}}'
GATEWAY = (
    Panel("Canary split: share of 2xx responses by server",
          (q(f"100 * sum by (server) (rate({CANARY_2XX}[{RATE}]))"
             f" / ignoring(server) group_left sum(rate({CANARY_2XX}[{RATE}]))", "{{server}}"),),
          "percent", "Each server's (model version's) share of the successful responses of the weighted backend "
          "`canary`, from HAProxy's own Prometheus exporter: the traffic split between versions.", "gateway"),
    Panel("Requests by server",
          (q(f"sum by (proxy, server) (rate(haproxy_server_http_responses_total{{{HF}}}[{RATE}]))",
             "{{proxy}}/{{server}}"),),
          "reqps", "HTTP responses per second of every backend server, all status codes.", "gateway"),
    Panel("Server weight", (q(f"haproxy_server_weight{{{HF}}}", "{{proxy}}/{{server}}"),), "short",
          "The weight HAProxy routes with (changed live through the runtime API: `set weight canary/v2 50`).",
          "gateway"),
)  # fmt: skip

DASHBOARDS = {
    "triton": ("Triton serving", TRITON, "nv_inference_request_success", True),
    "gpu": ("GPU", GPU, "up", False),
    "host": ("Host", HOST, "up", False),
    "loadtest": ("Load test", LOADTEST, "lab_loadgen_requests_total", True),
    "gateway": ("Gateway (HAProxy)", GATEWAY, "haproxy_server_weight", False),
}
