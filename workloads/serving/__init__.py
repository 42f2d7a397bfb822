"""Serving workloads: Triton model repositories, clients, the load generator, perf_analyzer and experiments."""
