"""One MIG profile table (ailab/contract/facts/mig_profiles.yaml): the stack settings check layouts against it and
the gpu_sharing role's argument-spec choices are generated from it (tools/gen_mig_choices.py), without drift."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import yaml

from ailab.contract import facts
from ailab.contract.paths import REPO_ROOT
from ailab.platform.config import ConfigError, parse_settings

TOOL = REPO_ROOT / "tools" / "gen_mig_choices.py"
SRC = "Pulumi.week08.yaml"


def _tool():
    spec = importlib.util.spec_from_file_location("gen_mig_choices", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _choices(text: str) -> list[str]:
    spec = yaml.safe_load(text)["argument_specs"]["main"]["options"]["gpu_sharing_mig_devices"]
    return spec["options"]["profile"]["choices"]


def test_role_choices_are_generated_from_the_table() -> None:
    tool = _tool()
    text = tool.SPECS.read_text()
    assert _choices(text) == facts.mig_profiles().names()
    assert tool.render(text, facts.mig_profiles().names()) == text
    out = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_drifted_choices_list_is_detected_and_rewritten() -> None:
    tool = _tool()
    text = tool.SPECS.read_text()
    drifted = text.replace("              - 1g.18gb+me\n", "")
    assert drifted != text and "1g.18gb+me" not in _choices(drifted)
    assert tool.render(drifted, facts.mig_profiles().names()) == text


def test_the_table_has_nvidias_hopper_profiles() -> None:
    gpus = facts.mig_profiles().gpus
    assert list(gpus["H100-80GB"].profiles) == [
        "1g.10gb",
        "1g.10gb+me",
        "1g.20gb",
        "2g.20gb",
        "3g.40gb",
        "4g.40gb",
        "7g.80gb",
    ]
    assert (
        list(gpus["H200-141GB"].profiles)[-1] == "7g.141gb"
        and gpus["H200-141GB"].profiles["1g.18gb"].max_instances == 7
    )


def _layout(profiles: dict[str, int]) -> dict:
    return {"ailab:week": 8, "ailab:gpu": {"mode": "operator", "mig": {"layouts": {"x": profiles}}}}


@pytest.mark.parametrize(
    "profiles",
    [{"1g.18gb": 7}, {"3g.71gb": 1, "2g.35gb": 1, "1g.18gb": 2}, {"3g.40gb": 2}, {"4g.24gb": 1}, {"1g.12gb+me": 1}],
)
def test_layouts_that_fit_one_gpu_are_accepted(profiles: dict[str, int]) -> None:
    assert parse_settings(_layout(profiles), SRC).gpu.mig.layouts["x"] == profiles


@pytest.mark.parametrize(
    ("profiles", "words"),
    [
        ({"3g.40gb": 2, "1g.10gb": 2}, "fits no single GPU"),  # 8 compute slices of 7
        ({"1g.18gb": 1, "1g.10gb": 1}, "fits no single GPU"),  # an H200 profile beside an H100 one
        ({"2g.10gb": 4}, "fits no single GPU"),  # at most 3 per GPU
        ({"5g.50gb": 1}, "unknown MIG profile '5g.50gb' (allowed: 1g.6gb, 1g.6gb+me"),
    ],
)
def test_layouts_that_fit_no_gpu_are_refused(profiles: dict[str, int], words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_settings(_layout(profiles), SRC)
    assert f"{SRC}: ailab:gpu.mig.layouts" in str(exc.value) and words in str(exc.value)
