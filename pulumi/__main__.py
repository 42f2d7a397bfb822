"""Pulumi program of the week stacks: `pulumi up -s week05` (see docs/cluster.md).

Thin on purpose: read the stack's config, put it over the week's facts (ailab/contract/facts/weeks.yaml), parse
that into validated settings, build the stack.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: ailab/, workloads/

from ailab.platform import hostcheck
from ailab.platform.config import SECTIONS, ConfigError
from ailab.platform.stack import build_stack
from ailab.platform.weeks import stack_name, stack_settings


def main() -> None:
    stack = pulumi.get_stack()
    source = f"Pulumi.{stack}.yaml"
    cfg = pulumi.Config("ailab")
    raw: dict[str, object] = {"ailab:week": cfg.get_int("week")}
    for section in SECTIONS:
        value = cfg.get_object(section)
        if value is not None:
            raw[f"ailab:{section}"] = value
    try:
        stack_name(stack)
        settings = stack_settings(raw, source)
        build_stack(settings, source, hostcheck.default_probe())
    except ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None


main()
