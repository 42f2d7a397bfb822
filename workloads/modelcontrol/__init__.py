"""Model control and versions on the local tritonserver 2.51: poll and explicit control, hot updates and rollbacks
under load, version policies, the server's logs and metrics during updates (d25, d34.e1-e3), and perf_analyzer
latency curves and config changes (d32.e4, d32.e5)."""
