"""Multi-model scheduling runners (one module per idea), bound in workloads/multimodel/bindings.yaml. Runner modules
import only pydantic and `ailab.contract` at import time; the serving library is imported inside them."""

from __future__ import annotations

# the serving area's: one definition of the auto-completion switch for every runner that starts tritonserver
from workloads.serving.experiments import AUTO_COMPLETE_OFF, AutoComplete, server_args

__all__ = ["AUTO_COMPLETE_OFF", "AutoComplete", "server_args"]
