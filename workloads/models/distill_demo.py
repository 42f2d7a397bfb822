"""Day-61 deliverable `distill_demo.py`: knowledge distillation of the digits CNN into a small MLP student.

loss = α · KL(softmax(t/T) ‖ softmax(s/T)) · T² + (1 − α) · CE(s, y); the T² keeps the soft-target gradients
on the same scale as the hard-label ones when T changes (Hinton et al., 2015). The control is the same student
trained on CE alone with the same seed, epochs and learning rate.

`python -m workloads.models.distill_demo --temperature 4 --alpha 0.5 --seeds 0 1 2` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict, dataclass

import torch
from torch.nn import functional as F  # noqa: N812 - the usual alias

from workloads.models import compress

STUDENT_EPOCHS = 40
STUDENT_LR = 3e-3  # the small student under-fits at the teacher's 1e-3 within this epoch budget
ALPHA = 0.5


def distill_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float, alpha: float
) -> torch.Tensor:
    """α·KL(teacher_T ‖ student_T)·T² + (1−α)·CE(student, labels), batch-mean; logits [n, classes], labels [n]."""
    compress.check_positive("temperature", [temperature])
    compress.check_fraction("alpha", [alpha], lo_inclusive=False)
    t = float(temperature)
    kl = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return alpha * kl * t * t + (1.0 - alpha) * F.cross_entropy(student_logits, labels)


@dataclass(frozen=True)
class StudentRun:
    """One trained student: how it was trained and its held-out accuracy (fraction 0..1)."""

    seed: int
    temperature: float | None  # None: the control, trained on hard labels only
    alpha: float
    epochs: int
    accuracy: float


def train_student(
    seed: int,
    temperature: float | None,
    alpha: float = ALPHA,
    epochs: int = STUDENT_EPOCHS,
    teacher: torch.nn.Module | None = None,
) -> tuple[torch.nn.Module, StudentRun]:
    """Train a StudentMLP from scratch at `seed`: distilled from `teacher` at `temperature`, or the CE-only control."""
    split = compress.split8()
    y = torch.from_numpy(split.y_train)
    loss_fn = None
    if temperature is not None:
        compress.check_positive("temperature", [temperature])
        compress.check_fraction("alpha", [alpha], lo_inclusive=False)
        with torch.inference_mode():  # the teacher is frozen: its logits on the training split are computed once
            t_logits = (teacher or compress.teacher())(torch.from_numpy(split.x_train)).clone()

        def loss_fn(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return distill_loss(logits, t_logits[idx], y[idx], temperature, alpha)

    student = compress.fit(compress.new_model("student", seed), epochs, seed, loss_fn, lr=STUDENT_LR)
    return student, StudentRun(seed, temperature, alpha, epochs, compress.test_accuracy(student))


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def paired_difference(control: list[float], distilled: list[float]) -> tuple[float, float, str]:
    """Distilled − control paired by seed: (mean, standard error, verdict), accuracies as fractions.

    The verdict is 'within noise' unless |mean| > 2 standard errors (a rule of thumb, not a significance test;
    with one seed there is no error estimate and the verdict is always 'within noise').
    """
    diffs = [d - c for c, d in zip(control, distilled, strict=True)]
    mean, std = mean_std(diffs)
    se = std / len(diffs) ** 0.5
    if len(diffs) < 2 or abs(mean) <= 2 * se:
        return mean, se, "within noise"
    return mean, se, "better" if mean > 0 else "worse"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--temperature", type=float, default=4.0, help="softmax temperature T > 0")
    ap.add_argument("--alpha", type=float, default=ALPHA, help="weight of the soft-target term, 0..1")
    ap.add_argument("--epochs", type=int, default=STUDENT_EPOCHS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = ap.parse_args(argv)
    try:
        compress.check_positive("temperature", [a.temperature])
        compress.check_fraction("alpha", [a.alpha], lo_inclusive=False)
        compress.check_positive("epochs", [a.epochs], integer=True)
    except ValueError as exc:
        ap.error(str(exc).replace("params.", "--"))
    teacher = compress.teacher()
    runs = []
    for seed in a.seeds:
        runs.append(train_student(seed, None, a.alpha, a.epochs))
        runs.append(train_student(seed, a.temperature, a.alpha, a.epochs, teacher))
    summary = {
        "teacher_accuracy": compress.test_accuracy(teacher),
        "control": mean_std([r.accuracy for _, r in runs if r.temperature is None]),
        "distilled": mean_std([r.accuracy for _, r in runs if r.temperature is not None]),
        "distilled_minus_control": dict(
            zip(
                ("mean", "std_error", "verdict"),
                paired_difference(
                    [r.accuracy for _, r in runs if r.temperature is None],
                    [r.accuracy for _, r in runs if r.temperature is not None],
                ),
                strict=True,
            )
        ),
        "runs": [asdict(r) for _, r in runs],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
