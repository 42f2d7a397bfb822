"""Runners of the observability experiments (days 6, 13, 14, 46); bound in bindings/observability.yaml."""
