"""Day-61 pruning and sizes on the digits CNN: split, sparsity masks, channel removal, size accounting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workloads.models import compress, data


@pytest.fixture(scope="module")
def base() -> compress.CNN:
    """The baseline CNN of the default recipe (trained once per test process, shared with the runner tests)."""
    return compress.teacher()


def test_split8_holds_out_the_same_images_as_day3() -> None:
    s8, s28 = compress.split8(), data.digits_split()
    assert s8.x_test.shape == (len(s28.y_test), 1, 8, 8) and s8.x_train.dtype == np.float32
    np.testing.assert_array_equal(s8.y_test, s28.y_test)
    np.testing.assert_array_equal(s8.y_train, s28.y_train)
    # upsampled like Day 3, the 8x8 held-out images are exactly Day 3's held-out inputs
    np.testing.assert_allclose(data.preprocess(s8.x_test[:, 0] * 16.0), s28.x_test, atol=1e-6)


def test_baseline_learns_the_digits(base: compress.CNN) -> None:
    assert compress.test_accuracy(base) > 0.9  # chance is 0.1


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9])
def test_global_magnitude_pruning_reaches_the_asked_sparsity(base: compress.CNN, sparsity: float) -> None:
    pruned = compress.prune_unstructured(base, sparsity)
    n = sum(m.weight.numel() for m, _ in compress.prunable(pruned))
    assert abs(compress.weight_sparsity(pruned) - sparsity) <= 1 / n
    kept = torch.cat([m.weight.detach().abs().flatten() for m, _ in compress.prunable(pruned)])
    dropped = torch.cat([m.weight_orig.detach().abs()[m.weight_mask == 0] for m, _ in compress.prunable(pruned)])
    if sparsity:  # global magnitude: every dropped weight is no larger than any kept non-zero one
        assert dropped.max() <= kept[kept != 0].min()
    assert compress.weight_sparsity(base) == 0.0  # the original is untouched


def test_fine_tuning_keeps_pruned_weights_at_zero_and_only_the_deflated_size_shrinks(base: compress.CNN) -> None:
    pruned = compress.prune_unstructured(base, 0.9)
    tuned = compress.make_permanent(compress.fit(pruned, 1, seed=0))
    assert not any("weight_orig" in k or "mask" in k for k in tuned.state_dict())
    assert compress.weight_sparsity(tuned) == pytest.approx(0.9, abs=1e-4)
    (raw_base, def_base), (raw, deflated) = compress.sizes(base), compress.sizes(tuned)
    assert abs(raw - raw_base) < 1024  # dense storage: the zeros are still stored
    assert deflated < def_base / 3


def test_channel_pruning_shrinks_parameters_and_keeps_the_output_shape(base: compress.CNN) -> None:
    small = compress.prune_channels(base, 0.5)
    assert (small.conv1.out_channels, small.conv2.out_channels, small.fc1.out_features) == (16, 32, 64)
    assert compress.param_count(small) < compress.param_count(base) / 3
    assert compress.sizes(small)[0] < compress.sizes(base)[0] / 3
    x = torch.from_numpy(compress.split8().x_test[:5])
    assert small(x).shape == (5, data.NUM_CLASSES)


def test_channel_pruning_is_the_original_with_the_removed_channels_silenced(base: compress.CNN) -> None:
    """Removing a filter/neuron must equal zeroing its weights and bias in the original (ReLU(0) = 0 feeds nothing)."""
    small = compress.prune_channels(base, 0.5)
    masked = compress.new_model("cnn", 0)
    masked.load_state_dict(base.state_dict())
    with torch.no_grad():
        for layer in (masked.conv1, masked.conv2, masked.fc1):
            scores = layer.weight.abs().sum(dim=tuple(range(1, layer.weight.dim())))
            drop = torch.argsort(scores)[: len(scores) // 2]
            layer.weight[drop] = 0
            layer.bias[drop] = 0
    x = torch.from_numpy(compress.split8().x_test)
    with torch.no_grad():
        torch.testing.assert_close(small(x), masked.eval()(x), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(compress.prune_channels(base, 0.0)(x), base(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: compress.check_fraction("sparsities", [0.5, 1.5]),
            "params.sparsities [0.5, 1.5]: allowed numbers with 0 <= value < 1",
        ),
        (lambda: compress.check_fraction("amount", -0.1), "params.amount [-0.1]: allowed numbers with 0 <= value < 1"),
        (lambda: compress.check_positive("temperatures", [1, 0]), "params.temperatures [1, 0]: allowed numbers > 0"),
        (lambda: compress.check_positive("epochs", [2.5], integer=True), "params.epochs [2.5]: allowed integers >= 1"),
    ],
)  # fmt: skip
def test_checks_name_the_field_the_value_and_what_is_allowed(call, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        call()
    assert str(exc.value) == message
