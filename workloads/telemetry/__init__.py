"""Telemetry: dashboards as pictures, the log collector's records, Triton's request traces (day 76)."""
