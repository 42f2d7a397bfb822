"""The models the engine experiments run: a digits MLP trained here (accuracy) and a ResNet-50-shaped net (speed).

Weights are initialised here (no downloads); the MLP is trained on the run's device in seconds.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from workloads.engines.data import NUM_CLASSES, NUM_FEATURES, digits


class MLP(nn.Module):
    """64 → width → width → 10, ReLU: three GEMMs, the shape precision changes act on."""

    def __init__(self, width: int = 1024) -> None:
        super().__init__()
        self.fc1 = nn.Linear(NUM_FEATURES, width)
        self.fc2 = nn.Linear(width, width)
        self.fc3 = nn.Linear(width, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


@lru_cache(maxsize=4)
def trained_mlp(width: int, epochs: int, device: str, seed: int = 0) -> MLP:
    """The digits MLP trained in FP32 (Adam, batch 256) on the augmented training set; eval mode."""
    torch.manual_seed(seed)
    d = digits()
    model = MLP(width).to(device)
    x = torch.from_numpy(d.x_train).to(device)
    y = torch.from_numpy(d.y_train).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator(device="cpu").manual_seed(seed)
    with _fp32_matmul():
        for _ in range(epochs):
            for idx in torch.randperm(len(y), generator=g).split(256):
                idx = idx.to(device)
                opt.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
    return model.eval()


class _fp32_matmul:  # noqa: N801 - used as a context manager
    """Strict FP32 matmuls inside (TF32 off), restoring the previous setting."""

    def __enter__(self) -> None:
        self.prev = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False

    def __exit__(self, *exc: object) -> None:
        torch.backends.cuda.matmul.allow_tf32 = self.prev


def accuracy(logits: torch.Tensor, labels: np.ndarray) -> float:
    """Share of held-out samples classified right, in %."""
    return float((logits.argmax(1).cpu().numpy() == labels).mean() * 100)


class SmallCNN(nn.Module):
    """Four conv blocks on 3×224×224 then a classifier: compiles in seconds, for the compiler experiments."""

    def __init__(self, width: int = 32, classes: int = 1000) -> None:
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def resnet50_shaped(quick: bool) -> nn.Module:
    """torchvision's ResNet-50 with random weights (the quick mode's stand-in: SmallCNN), eval mode."""
    if quick:
        return SmallCNN(8, 10).eval()
    from torchvision.models import resnet50

    return resnet50(weights=None).eval()
