"""Scheduling and placement: GPU topology, affinity and schedulers (curriculum weeks 7-8)."""
