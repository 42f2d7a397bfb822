"""Cluster runners, one module per idea; each finds the cluster and the week's stack first (workloads/cluster/run.py)
and skips naming what is missing."""
