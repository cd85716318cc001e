"""Intensity normalisation for tomography volumes.

Grey levels differ between scanners, energies and reconstructions, so a model never sees raw
values: each volume is mapped linearly so that its robust low / high percentiles land on 0 / 1.
The percentiles are estimated from a random sample of slabs, never a full pass over the volume,
so inference starts at once on volumes larger than memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import BatterySegError
from ..io._lazy import read_planes

__all__ = ["IntensityRange", "Normalization", "estimate_intensity_range", "normalize"]


@dataclass(frozen=True)
class Normalization:
    """How a model wants its input scaled: which percentiles map to 0 and 1."""

    low_percentile: float = 0.5
    high_percentile: float = 99.5
    max_samples: int = 2_000_000

    def __post_init__(self) -> None:
        low, high = self.low_percentile, self.high_percentile
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
        if not numbers or not 0 <= low < high <= 100:  # also refuses NaN
            raise BatterySegError(
                f"Normalisation percentiles low={low!r}, high={high!r} must be numbers with "
                "0 <= low < high <= 100 (e.g. 0.5 and 99.5)."
            )
        count = self.max_samples
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise BatterySegError(f"Normalisation max_samples={count!r} must be a positive count.")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class IntensityRange:
    """Grey values of one volume that map to 0 and 1."""

    low: float
    high: float

    def to_dict(self) -> dict:
        return asdict(self)


def _sample_slices(volume, n_slices: int, rng: np.random.Generator) -> np.ndarray:
    """Read ``n_slices`` random axis-0 slices (strided in y/x for big slices)."""
    depth = volume.shape[0]
    picks = np.sort(rng.choice(depth, size=min(n_slices, depth), replace=False))
    return np.concatenate([p.ravel() for p in read_planes(volume, picks)])


def estimate_intensity_range(
    volume, normalization: Normalization | None = None, *, seed: int = 0
) -> IntensityRange:
    """Estimate the grey values at the normalisation percentiles from a sample of ``volume``.

    ``volume`` may be a NumPy or dask array of any dimensionality >= 2; at most about
    ``max_samples`` voxels are read, from whole random slices (slab-friendly for chunked data).

    Raises
    ------
    BatterySegError
        If the sample holds NaN / inf voxels or the volume is constant.
    """
    norm = normalization or Normalization()
    rng = np.random.default_rng(seed)
    if volume.ndim == 2:
        volume = volume[None]
    slice_size = int(np.prod(volume.shape[1:]))
    n_slices = max(1, min(volume.shape[0], norm.max_samples // max(slice_size, 1)))
    sample = _sample_slices(volume, max(n_slices, min(8, volume.shape[0])), rng)
    if sample.size > norm.max_samples:
        sample = rng.choice(sample, size=norm.max_samples, replace=False)
    sample = sample.astype(np.float64, copy=False)
    if not np.isfinite(sample).all():
        bad = int((~np.isfinite(sample)).sum())
        raise BatterySegError(
            f"The image holds NaN or infinite voxels ({bad} in a sample of {sample.size}). "
            "Replace them first (for example with the reconstruction's background value) and run "
            "again."
        )
    low, high = np.percentile(sample, [norm.low_percentile, norm.high_percentile])
    if not high > low:
        low, high = float(sample.min()), float(sample.max())
    if not high > low:
        raise BatterySegError(
            f"The image is constant (every sampled voxel is {low:g}); there is nothing to "
            "segment. Check that the right file or layer is selected."
        )
    return IntensityRange(float(low), float(high))


def normalize(block: np.ndarray, intensity: IntensityRange) -> np.ndarray:
    """Map ``block`` linearly so ``intensity.low`` -> 0 and ``intensity.high`` -> 1 (float32)."""
    scale = np.float32(1.0 / (intensity.high - intensity.low))
    out = block.astype(np.float32, copy=True)
    out -= np.float32(intensity.low)
    out *= scale
    return out
