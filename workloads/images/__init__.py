"""Workload container images: their names and tag (catalog), Dockerfiles, and the podman/docker build logic."""
