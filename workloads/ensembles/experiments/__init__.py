"""Ensemble runners (one module per idea), bound in workloads/ensembles/bindings.yaml. Runner modules import only
pydantic and `ailab.contract` at import time; the serving library (tritonclient, onnx) is imported inside them."""
