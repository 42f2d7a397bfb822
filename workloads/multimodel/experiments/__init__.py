"""Multi-model scheduling runners (one module per idea), bound in workloads/multimodel/bindings.yaml. Runner modules
import only pydantic and `ailab.contract` at import time; the serving library is imported inside them."""
