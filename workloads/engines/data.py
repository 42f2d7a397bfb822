"""Digits data for the precision and calibration experiments: scikit-learn's bundled 8×8 digits, augmented.

The 1797 images are split per class (25 % held out, seed 0) before augmentation, so no held-out digit leaks into
training or calibration through a shifted copy. Training images are augmented with the 9 one-pixel shifts and
light noise (~13 000 samples), enough for 5000-sample calibration sets. numpy only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

NUM_FEATURES = 64
NUM_CLASSES = 10
TEST_FRACTION = 0.25


def _digits_csv() -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-learn is not installed: it ships the digits data (pip install scikit-learn)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    raw = np.loadtxt(_digits_csv(), delimiter=",", dtype=np.float32)
    return raw[:, :-1].reshape(-1, 8, 8) / 16.0, raw[:, -1].astype(np.int64)


def _shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(images)
    ys, yd = (slice(0, 8 - dy), slice(dy, 8)) if dy >= 0 else (slice(-dy, 8), slice(0, 8 + dy))
    xs, xd = (slice(0, 8 - dx), slice(dx, 8)) if dx >= 0 else (slice(-dx, 8), slice(0, 8 + dx))
    out[:, yd, xd] = images[:, ys, xs]
    return out


@dataclass(frozen=True)
class Digits:
    x_train: np.ndarray  # float32 [n, 64] in [0, 1]
    y_train: np.ndarray  # int64 [n]
    x_test: np.ndarray  # held-out originals, float32 [450, 64]
    y_test: np.ndarray


@lru_cache(maxsize=2)
def digits(augment: bool = True, seed: int = 0) -> Digits:
    """The split: augmented training set (9 shifts + noise when `augment`) and the held-out originals."""
    images, labels = _digits()
    rng = np.random.default_rng(seed)
    test = np.sort(
        np.concatenate(
            [
                (idx := rng.permutation(np.flatnonzero(labels == c)))[: round(len(idx) * TEST_FRACTION)]
                for c in range(NUM_CLASSES)
            ]
        )
    )
    train = np.setdiff1d(np.arange(len(labels)), test)
    xt, yt = images[train], labels[train]
    if augment:
        shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        xt = np.concatenate([_shifted(xt, dy, dx) for dy, dx in shifts])
        yt = np.tile(yt, len(shifts))
        xt = np.clip(xt + rng.normal(0, 0.03, xt.shape), 0, 1).astype(np.float32)
    order = rng.permutation(len(yt))
    return Digits(
        xt[order].reshape(len(yt), -1).astype(np.float32),
        yt[order],
        images[test].reshape(len(test), -1).astype(np.float32),
        labels[test],
    )
