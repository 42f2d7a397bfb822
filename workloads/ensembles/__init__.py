"""Triton ensembles on the local tritonserver: a normalize -> MLP -> softmax pipeline run by Triton's ensemble
scheduler, its cost against one model doing the same work, and each step's time from Triton's per-model metrics."""
