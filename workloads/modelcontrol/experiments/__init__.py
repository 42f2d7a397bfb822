"""Model-control runners (d25, d34.e1-e3, d32.e4/e5), bound in workloads/modelcontrol/bindings.yaml. Runner
modules import only pydantic and `ailab.contract` at import time; the library modules are imported inside."""
