"""Sequence-batching runners (d39), bound in workloads/sequences/bindings.yaml. Runner modules import only pydantic
and `ailab.contract` at import time; the library modules (tritonclient, onnxruntime, torch) are imported inside."""
