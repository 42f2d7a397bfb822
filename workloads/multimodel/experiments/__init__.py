"""Multi-model scheduling runners (one module per idea), bound in workloads/multimodel/bindings.yaml. Runner modules
import only pydantic and `ailab.contract` at import time; the serving library is imported inside them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field, Strict

AUTO_COMPLETE_OFF = "--disable-auto-complete-config"

AutoComplete = Annotated[
    bool,
    Strict(),
    Field(
        description="tritonserver's config auto-completion; false starts it with --disable-auto-complete-config, so "
        "the python backend starts no auto-complete stub per model load (the generated configs are complete: the "
        "server reports the same config either way). Startup only; what is measured runs on a started server"
    ),
]


def server_args(auto_complete_config: bool, args: Sequence[str] = ()) -> list[str]:
    """The experiment's tritonserver arguments, with auto-completion turned off when asked."""
    return [*args, *(() if auto_complete_config else (AUTO_COMPLETE_OFF,))]
