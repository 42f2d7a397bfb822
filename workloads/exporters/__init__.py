"""Prometheus exporters of the lab: GPU/host metrics (`python -m workloads.exporters`) and a metered load generator."""
