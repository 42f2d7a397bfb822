"""Runners of the telemetry area (d76)."""
