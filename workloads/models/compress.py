"""Day-61 compression base: the digits CNN (teacher/baseline), the student MLP, training, sizes and pruning.

Data: scikit-learn's bundled 8×8 digits at their native size (values /16 → 0..1), split exactly as Day 3's
`data.digits_split` (same 25 % of each digit held out, seed 0); nothing here trains on the held-out split.
Pruning: global unstructured L1 magnitude masks (torch.nn.utils.prune) and structured L1 pruning that rebuilds
the layers with fewer filters/neurons, so the dense model really gets smaller.
"""

from __future__ import annotations

import copy
import io
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812 - the usual alias
from torch.nn.utils import prune

from workloads.models import data
from workloads.models.mlp import run_epochs

SIZE = data.SOURCE_SIZE  # 8 pixels per side: the CNN runs on the digits' native resolution
CHANNELS = (32, 64)  # conv1, conv2 filters of the baseline CNN
HIDDEN = 128  # fc1 neurons of the baseline CNN
STUDENT_HIDDEN = 32  # the student MLP: 64 → 32 → 10 (~2.4k parameters vs the CNN's ~150k)
EPOCHS = 20
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
SEED = 0
DEFLATE_LEVEL = 6  # zlib's default: level 9 is ~3x slower on float bytes for a few % smaller files

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, batch indices) -> scalar loss


@lru_cache(maxsize=1)
def split8() -> data.Split:
    """Day 3's train/test split at 8×8: float32 [n, 1, 8, 8] in 0..1, int64 labels (same images held out)."""
    images, labels = data.load_digits()
    rng = np.random.default_rng(data.SEED)
    test = []
    for c in range(data.NUM_CLASSES):  # the selection rule of data.digits_split, kept identical (a test checks it)
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[: round(len(idx) * data.TEST_FRACTION)])
    te = np.sort(np.concatenate(test))
    tr = np.setdiff1d(np.arange(len(labels)), te)
    x = (images / 16.0).astype(np.float32)[:, None, :, :]
    return data.Split(x[tr], labels[tr], x[te], labels[te])


class CNN(nn.Module):
    """conv3×3(1→c1) → ReLU → conv3×3(c1→c2) → ReLU → maxpool 2 → fc(c2·16→hidden) → ReLU → fc(hidden→10)."""

    def __init__(self, channels: tuple[int, int] = CHANNELS, hidden: int = HIDDEN) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * (SIZE // 2) ** 2, hidden)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(hidden, data.NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
        return self.fc2(self.relu3(self.fc1(self.flatten(x))))


class StudentMLP(nn.Module):
    """64 → hidden → 10 with ReLU on the flattened 8×8 image: the distillation student."""

    def __init__(self, hidden: int = STUDENT_HIDDEN) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(SIZE * SIZE, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, data.NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


def fit(model: nn.Module, epochs: int, seed: int = SEED, loss_fn: LossFn | None = None, lr: float = LEARNING_RATE):
    """Train in place with Adam on the training split (one thread: deterministic per seed); returns the model."""
    split = split8()
    x, y = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    loss_fn = loss_fn or (lambda logits, idx: F.cross_entropy(logits, y[idx]))
    gen = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: extra threads only contend on 2 cores, and reduction order stays fixed
    try:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        run_epochs(model, opt, len(y), epochs, gen, lambda idx: loss_fn(model(x[idx]), idx), BATCH_SIZE)
        return model.eval()
    finally:
        torch.set_num_threads(threads)


def new_model(kind: str, seed: int) -> nn.Module:
    """A freshly initialised 'cnn' or 'student' (initialisation drawn from the global generator at `seed`)."""
    torch.manual_seed(seed)
    return CNN() if kind == "cnn" else StudentMLP()


@lru_cache(maxsize=4)
def teacher(seed: int = SEED, epochs: int = EPOCHS) -> CNN:
    """The baseline CNN (also the distillation teacher), trained once per process; callers must not modify it."""
    return fit(new_model("cnn", seed), epochs, seed)  # type: ignore[return-value]


def accuracy(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of images in x whose argmax logit equals y."""
    if isinstance(model, nn.Module):
        model.eval()
    with torch.inference_mode():
        pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((pred == y).mean())


def test_accuracy(model: nn.Module) -> float:
    """Held-out accuracy, fraction 0..1."""
    s = split8()
    return accuracy(model, s.x_test, s.y_test)


def state_bytes(model: nn.Module) -> bytes:
    """The model's state_dict as torch.save writes it (an uncompressed zip archive)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def sizes(model: nn.Module) -> tuple[int, int]:
    """(bytes of the saved state_dict, bytes of it through zlib at DEFLATE_LEVEL): zeros pay off only in the latter."""
    raw = state_bytes(model)
    return len(raw), deflated_size(raw)


def deflated_size(raw: bytes) -> int:
    """Bytes of `raw` after zlib (deflate) at DEFLATE_LEVEL: what a zip/gzip of the file would roughly take."""
    return len(zlib.compress(raw, DEFLATE_LEVEL))


def param_count(model: nn.Module, nonzero: bool = False) -> int:
    """Parameters (weights + biases) of the model; with nonzero, only those that are not exactly 0."""
    return sum(int((p != 0).sum()) if nonzero else p.numel() for p in model.parameters())


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, 'weight') of every Conv2d and Linear layer: what the global magnitude pruning ranks together."""
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def prune_unstructured(model: nn.Module, sparsity: float) -> nn.Module:
    """A copy with the `sparsity` fraction of all conv/linear weights (globally smallest |w|) masked to zero.

    The masks stay attached (weight = weight_orig * weight_mask), so fine-tuning with `fit` keeps the zeros;
    call `make_permanent` before saving or exporting.
    """
    check_fraction("sparsity", [sparsity])
    m = copy.deepcopy(model)
    prune.global_unstructured(prunable(m), pruning_method=prune.L1Unstructured, amount=float(sparsity))
    return m


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold pruning masks into plain weight tensors (zeros stay zeros) and drop the masks; in place."""
    for mod, name in prunable(model):
        if prune.is_pruned(mod):
            prune.remove(mod, name)
    return model


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of conv/linear weight entries that are exactly zero (biases excluded, as pruning leaves them)."""
    ws = [getattr(m, n).detach() for m, n in prunable(model)]
    return float(sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws))


def _keep(scores: torch.Tensor, amount: float) -> torch.Tensor:
    """Sorted indices of the rows to keep: the (1 − amount) fraction with the largest L1 norm, at least one."""
    n_keep = max(1, round(len(scores) * (1.0 - amount)))
    return torch.sort(torch.topk(scores, n_keep).indices).values


def prune_channels(model: CNN, amount: float) -> CNN:
    """A smaller dense CNN: `amount` of conv1/conv2 filters and fc1 neurons removed (lowest L1 norm) and rewired."""
    check_fraction("amount", [amount])
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    k1 = _keep(sd["conv1.weight"].abs().sum(dim=(1, 2, 3)), amount)
    k2 = _keep(sd["conv2.weight"].abs().sum(dim=(1, 2, 3)), amount)
    kh = _keep(sd["fc1.weight"].abs().sum(dim=1), amount)
    cells = (SIZE // 2) ** 2  # fc1 sees conv2's channels flattened channel-major: channel c owns cells c*16..c*16+15
    k2_feat = (k2[:, None] * cells + torch.arange(cells)).reshape(-1)
    small = CNN((len(k1), len(k2)), len(kh))
    small.load_state_dict(
        {
            "conv1.weight": sd["conv1.weight"][k1],
            "conv1.bias": sd["conv1.bias"][k1],
            "conv2.weight": sd["conv2.weight"][k2][:, k1],
            "conv2.bias": sd["conv2.bias"][k2],
            "fc1.weight": sd["fc1.weight"][kh][:, k2_feat],
            "fc1.bias": sd["fc1.bias"][kh],
            "fc2.weight": sd["fc2.weight"][:, kh],
            "fc2.bias": sd["fc2.bias"],
        }
    )
    return small.eval()


@dataclass(frozen=True)
class Measured:
    """Accuracy (fraction) and size (bytes) of one model variant."""

    accuracy: float
    state_bytes: int
    deflated_bytes: int
    params: int
    nonzero_params: int

    @classmethod
    def of(cls, model: nn.Module) -> Measured:
        raw, deflated = sizes(model)
        return cls(test_accuracy(model), raw, deflated, param_count(model), param_count(model, nonzero=True))


# --- argument checks of the library functions (a runner's parameters are checked by its Params model at load) ----


def _values(values: object) -> list:
    return list(values) if isinstance(values, list | tuple) else [values]


def check_fraction(name: str, values: Iterable[float] | float, lo_inclusive: bool = True) -> None:
    """Every value must be a number in [0, 1) (or (0, 1] for mixing weights when lo_inclusive is False)."""
    vals = _values(values)
    ok = [isinstance(v, int | float) and not isinstance(v, bool) for v in vals]
    if lo_inclusive:
        ok = [o and 0.0 <= v < 1.0 for o, v in zip(ok, vals, strict=True)]
        what = "numbers with 0 <= value < 1"
    else:
        ok = [o and 0.0 <= v <= 1.0 for o, v in zip(ok, vals, strict=True)]
        what = "numbers with 0 <= value <= 1"
    if not vals or not all(ok):
        raise ValueError(f"params.{name} {vals}: allowed {what}")


def check_positive(name: str, values: Iterable[float] | float, integer: bool = False) -> None:
    """Every value must be > 0 (an integer >= 1 when integer is set)."""
    vals = _values(values)
    typ = int if integer else (int, float)
    if not vals or not all(isinstance(v, typ) and not isinstance(v, bool) and v > 0 for v in vals):
        raise ValueError(f"params.{name} {vals}: allowed {'integers >= 1' if integer else 'numbers > 0'}")
