"""Day-3 data: scikit-learn's bundled 8×8 digits, upsampled to MNIST's 28×28, split and sampled — numpy only.

Kept free of torch and of importing scikit-learn itself (seconds of start-up on 2 cores), so inference
scripts and serving clients can prepare inputs cheaply; the CSV read here is the file `load_digits` reads.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
IMAGE_SIZE = 28  # pixels per side after upsampling (MNIST's shape)
SOURCE_SIZE = 8  # pixels per side of the digits images
NUM_CLASSES = 10
TEST_FRACTION = 0.25  # held-out share of the 1797 digits, per class
SEED = 0


def digits_csv() -> Path:
    """The digits data file shipped inside the scikit-learn package (what sklearn.datasets.load_digits reads)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-learn is not installed: it ships the digits data (pip install scikit-learn)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found in this scikit-learn installation")
    return path


@lru_cache(maxsize=1)
def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [1797, 8, 8] with values 0..16, labels int64 [1797])."""
    raw = np.loadtxt(digits_csv(), delimiter=",", dtype=np.float32)
    return raw[:, :-1].reshape(-1, SOURCE_SIZE, SOURCE_SIZE), raw[:, -1].astype(np.int64)


@cache
def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights of 1-D linear interpolation with half-pixel centres (align_corners=False)."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(int), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    w = np.zeros((n_out, n_in), dtype=np.float64)
    w[np.arange(n_out), lo] += 1.0 - frac
    w[np.arange(n_out), hi] += frac
    return w


def preprocess(images_8x8: np.ndarray) -> np.ndarray:
    """digits images [n, 8, 8] with values 0..16 → float32 [n, 1, 28, 28] in [0, 1] (bilinear upsampling)."""
    w = _bilinear_matrix(SOURCE_SIZE, IMAGE_SIZE)
    x = np.asarray(images_8x8, dtype=np.float64) / 16.0
    up = np.einsum("oi,nij,pj->nop", w, x, w)  # separable: rows, then columns
    return np.clip(up, 0.0, 1.0).astype(np.float32)[:, None, :, :]


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray  # float32 [n, 1, 28, 28]
    y_train: np.ndarray  # int64 [n]
    x_test: np.ndarray
    y_test: np.ndarray


@lru_cache(maxsize=1)
def digits_split() -> Split:
    """The fixed train/test split (25 % of each digit held out, seed 0), preprocessed."""
    images, labels = load_digits()
    rng = np.random.default_rng(SEED)
    test = []
    for c in range(NUM_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[: round(len(idx) * TEST_FRACTION)])
    te = np.sort(np.concatenate(test))
    tr = np.setdiff1d(np.arange(len(labels)), te)
    x = preprocess(images)
    return Split(x[tr], labels[tr], x[te], labels[te])


def sample_inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n held-out digits images, float32 [n, 1, 28, 28] preprocessed as in training, and int64 labels [n]."""
    if n < 1:
        raise ValueError(f"error: n {n}: must be >= 1")
    split = digits_split()
    rng = np.random.default_rng(seed)
    # the held-out split has 450 images; larger requests repeat images (drawn with replacement)
    idx = rng.choice(len(split.y_test), size=n, replace=n > len(split.y_test))
    return split.x_test[idx].copy(), split.y_test[idx].copy()
