"""The `llm` local service spec (ailab/local/services/llm.py): argv, readiness probe, options checked naming the
option. Builds the spec only (no process is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailab.local.registry import PlatformError, build_spec, known_services
from ailab.local.spec import PlatformContext


def _ctx(tmp_path: Path, **options) -> PlatformContext:
    return PlatformContext(week=12, state_dir=tmp_path, free_ports=True, options=options)


def test_spec_serves_the_char_model_on_cpu_by_default(tmp_path: Path) -> None:
    assert "llm" in known_services()
    s = build_spec("llm", _ctx(tmp_path))
    port = s.ports["http"]
    assert s.argv[1:4] == ["-m", "workloads.llm.server", f"--port={port}"]
    assert "--model=char" in s.argv and "--device=cpu" in s.argv and "--no-prefix-caching" not in s.argv
    assert s.ready == f"http://127.0.0.1:{port}/health"
    assert s.info["openai_base"].endswith(f":{port}/v1")


def test_prefix_caching_can_be_turned_off(tmp_path: Path) -> None:
    s = build_spec("llm", _ctx(tmp_path, **{"llm.prefix_caching": False, "llm.model": "llama-tiny"}))
    assert "--no-prefix-caching" in s.argv and "--model=llama-tiny" in s.argv


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"llm.model": "gpt-4"}, "llm.model 'gpt-4'"),
        ({"llm.device": "tpu"}, "llm.device 'tpu'"),
        ({"llm.max_model_len": 1}, "llm.max_model_len 1"),
    ],
)
def test_bad_options_are_refused_naming_the_option(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(PlatformError, match=message):
        build_spec("llm", _ctx(tmp_path, **options))
