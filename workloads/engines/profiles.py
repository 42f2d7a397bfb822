"""Optimisation profiles (min/opt/max shapes) as TensorRT takes them, and the buckets that stand in for them.

A profile is checked before any engine is built: same rank in min/opt/max, every dimension positive and
min ≤ opt ≤ max; errors name the profile, the input, the field and the values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Shape = tuple[int, ...]


class ProfileError(ValueError):
    """A bad optimisation profile; the message names the field and the values."""


@dataclass(frozen=True)
class ShapeProfile:
    """min/opt/max shapes of one input (TensorRT's `IOptimizationProfile.set_shape`)."""

    input: str
    min: Shape
    opt: Shape
    max: Shape
    name: str = "profile0"

    def __post_init__(self) -> None:
        where = f"profile {self.name!r} input {self.input!r}"
        if not (len(self.min) == len(self.opt) == len(self.max)):
            raise ProfileError(
                f"{where}: min {self.min}, opt {self.opt}, max {self.max} have different ranks; all must be equal"
            )
        for field in ("min", "opt", "max"):
            if any(int(d) < 1 for d in getattr(self, field)):
                raise ProfileError(f"{where}: field {field} = {getattr(self, field)}: every dimension must be >= 1")
        for i, (lo, mid, hi) in enumerate(zip(self.min, self.opt, self.max, strict=True)):
            if lo > mid:
                raise ProfileError(
                    f"{where}: field min = {self.min} exceeds opt = {self.opt} at dim {i}; need min <= opt"
                )
            if mid > hi:
                raise ProfileError(
                    f"{where}: field opt = {self.opt} exceeds max = {self.max} at dim {i}; need opt <= max"
                )

    def admits(self, shape: Sequence[int]) -> bool:
        """Whether an input of `shape` can run under this profile."""
        return len(shape) == len(self.min) and all(
            lo <= d <= hi for d, lo, hi in zip(shape, self.min, self.max, strict=True)
        )

    def trtexec(self) -> dict[str, str]:
        """`--minShapes/--optShapes/--maxShapes` values: `input:1x3x224x224`."""
        return {k: f"{self.input}:{'x'.join(str(d) for d in getattr(self, k))}" for k in ("min", "opt", "max")}


def batch_profile(
    input: str, sample: Shape, min_b: int, opt_b: int, max_b: int, name: str = "profile0"
) -> ShapeProfile:
    """A profile over the batch dimension only; `sample` is one item's shape (3, 224, 224)."""
    return ShapeProfile(input, (min_b, *sample), (opt_b, *sample), (max_b, *sample), name)


def pick_profile(profiles: Sequence[ShapeProfile], shape: Sequence[int]) -> ShapeProfile:
    """The profile whose opt is closest to `shape` among those that admit it (what a runtime would select)."""
    fits = [p for p in profiles if p.admits(shape)]
    if not fits:
        ranges = ", ".join(f"{p.name}: {p.min}..{p.max}" for p in profiles)
        raise ProfileError(f"input shape {tuple(shape)} is outside every profile ({ranges})")
    return min(fits, key=lambda p: sum(abs(a - b) for a, b in zip(p.opt, shape, strict=True)))


def bucket_for(batch: int, buckets: Sequence[int]) -> int:
    """Smallest static bucket that holds `batch` (inputs are padded up to it)."""
    if batch < 1:
        raise ProfileError(f"field batch = {batch}: must be >= 1")
    fit = [b for b in sorted(buckets) if b >= batch]
    if not fit:
        raise ProfileError(f"field batch = {batch}: larger than the largest bucket {max(buckets)}")
    return fit[0]
