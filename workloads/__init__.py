"""Data plane: what runs on the lab (models, serving, kernels, LLM, parallel, scheduling, exporters)."""
