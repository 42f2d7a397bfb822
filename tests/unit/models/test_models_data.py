"""Day-3 data without torch or a scikit-learn import: the same digits, the same upsampling as torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from workloads.models import data


def test_digits_are_exactly_sklearns_load_digits() -> None:
    from sklearn.datasets import load_digits

    ref = load_digits()
    images, labels = data.load_digits()
    np.testing.assert_array_equal(images, ref.images.astype(np.float32))
    np.testing.assert_array_equal(labels, ref.target)


def test_upsampling_matches_torch_bilinear() -> None:
    images, _ = data.load_digits()
    want = F.interpolate(torch.from_numpy(images[:64] / 16.0).unsqueeze(1), size=(28, 28), mode="bilinear")
    np.testing.assert_allclose(data.preprocess(images[:64]), want.clamp(0, 1).numpy(), atol=1e-6)


def test_split_holds_out_a_quarter_of_every_digit() -> None:
    s = data.digits_split()
    assert len(s.y_train) + len(s.y_test) == 1797
    counts_test, counts_all = np.bincount(s.y_test), np.bincount(data.load_digits()[1])
    np.testing.assert_array_equal(counts_test, np.round(counts_all * 0.25).astype(int))


def test_sample_inputs_are_held_out_images() -> None:
    x, y = data.sample_inputs(5, seed=3)
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (5,) and set(y.tolist()) <= set(range(10))
    assert x.min() >= 0.0 and x.max() <= 1.0
    split = data.digits_split()
    assert all(any(np.array_equal(img, t) for t in split.x_test) for img in x)
    x2, y2 = data.sample_inputs(5, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    big, _ = data.sample_inputs(1000)  # more than the 450 held-out images: drawn with replacement
    assert big.shape == (1000, 1, 28, 28)


def test_sample_inputs_rejects_a_non_positive_count() -> None:
    with pytest.raises(ValueError, match=r"n 0: must be >= 1"):
        data.sample_inputs(0)
