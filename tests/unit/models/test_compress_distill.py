"""Day-61 distillation: the loss formula on hand-computed tensors, and the paired noise verdict."""

from __future__ import annotations

import math

import pytest
import torch

from workloads.models import distill_demo


def _softmax(z: list[float], t: float) -> list[float]:
    e = [math.exp(v / t) for v in z]
    return [v / sum(e) for v in e]


def test_distill_loss_by_hand() -> None:
    s, t, y, temp, alpha = [1.0, 2.0, 3.0], [3.0, 1.0, 0.0], 0, 2.0, 0.25
    p_t, p_s = _softmax(t, temp), _softmax(s, temp)
    kl = sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s, strict=True))  # KL(teacher ‖ student)
    ce = -math.log(_softmax(s, 1.0)[y])
    want = alpha * kl * temp**2 + (1 - alpha) * ce
    got = distill_demo.distill_loss(torch.tensor([s]), torch.tensor([t]), torch.tensor([y]), temp, alpha)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_alpha_and_temperature_scaling() -> None:
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    ce = torch.nn.functional.cross_entropy(s, y)
    assert distill_demo.distill_loss(s, t, y, 4.0, 0.0).item() == pytest.approx(ce.item(), rel=1e-6)
    soft4 = distill_demo.distill_loss(s, t, y, 4.0, 1.0).item()
    kl4 = torch.nn.functional.kl_div(
        torch.log_softmax(s / 4, 1), torch.log_softmax(t / 4, 1), reduction="batchmean", log_target=True
    )
    assert soft4 == pytest.approx(16 * kl4.item(), rel=1e-6)  # the T² factor
    # identical logits: nothing to learn from the teacher, only the CE term remains
    assert distill_demo.distill_loss(s, s, y, 4.0, 0.5).item() == pytest.approx(0.5 * ce.item(), rel=1e-5)


@pytest.mark.parametrize(
    ("temperature", "alpha", "message"),
    [
        (0.0, 0.5, "params.temperature [0.0]: allowed numbers > 0"),
        (-1.0, 0.5, "params.temperature [-1.0]: allowed numbers > 0"),
        (2.0, 1.5, "params.alpha [1.5]: allowed numbers with 0 <= value <= 1"),
    ],
)
def test_bad_temperature_or_alpha_is_refused(temperature: float, alpha: float, message: str) -> None:
    z = torch.zeros(1, 10)
    with pytest.raises(ValueError) as exc:
        distill_demo.distill_loss(z, z, torch.tensor([0]), temperature, alpha)
    assert str(exc.value) == message


def test_paired_difference_verdicts() -> None:
    ctrl = [0.90, 0.91, 0.92]
    assert distill_demo.paired_difference(ctrl, [0.95, 0.96, 0.97])[2] == "better"
    assert distill_demo.paired_difference(ctrl, [0.85, 0.86, 0.87])[2] == "worse"
    mean, se, word = distill_demo.paired_difference(ctrl, [0.91, 0.90, 0.93])
    assert word == "within noise" and mean == pytest.approx(0.0033, abs=1e-3) and se > 0
    assert distill_demo.paired_difference([0.9], [0.99])[2] == "within noise"  # one seed: no error estimate


def test_cli_refuses_a_bad_temperature(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        distill_demo.main(["--temperature", "0"])
    assert exc.value.code == 2
    assert "--temperature [0.0]: allowed numbers > 0" in capsys.readouterr().err
