"""Several models in one tritonserver: a large and a small model side by side, per-model latency from Prometheus,
Triton's rate limiter (fairness, a global cap) and dynamic-batcher priority levels."""
