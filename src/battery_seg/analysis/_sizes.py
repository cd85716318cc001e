"""Continuous size distribution (local thickness) of a phase, in physical units.

Definition (PoreSpy's ``local_thickness``, GeoDict's granulometry / continuous PSD): the local
thickness of a voxel of the phase is the diameter of the largest sphere that fits inside the phase
and covers the voxel. The distribution is volume-weighted: ``D50`` is the diameter such that half
of the phase's volume has a smaller local thickness.

Method (PoreSpy's distance-transform method, with anisotropic voxels): the distance transform
``dt`` of the phase is computed with `edt <https://github.com/seung-lab/euclidean-distance-
transform-3d>`_ in physical units (voxel size per axis); for each sphere radius ``r`` from the
largest down, the sphere centres that fit (``dt >= r``) are dilated by ``r`` (a second distance
transform, ``< r``), and voxels not yet covered get diameter ``2 r``. Radii are whole multiples of
the finest voxel size, PoreSpy's integer radii for cubic voxels. The phase mask must be in memory
(about 14 bytes per voxel); :mod:`._report` checks the memory first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BatterySegError
from ..jobs import Job, Progress, run_job

__all__ = [
    "SizeDistribution",
    "distance_transform",
    "local_thickness_job",
    "percentile_sizes",
    "size_distribution",
]


@dataclass(frozen=True)
class SizeDistribution:
    """Volume-weighted distribution of local thickness (diameters in the voxel size's unit).

    ``diameters[i]`` holds ``volume_fraction[i]`` of the phase's volume (they add up to 1);
    ``d10``, ``d50``, ``d90`` are the diameters below which 10, 50, 90 % of the volume lies.
    """

    diameters: np.ndarray
    volume_fraction: np.ndarray
    d10: float
    d50: float
    d90: float
    mean: float

    def to_dict(self) -> dict:
        return {
            "d10_um": self.d10,
            "d50_um": self.d50,
            "d90_um": self.d90,
            "mean_um": self.mean,
            "diameter_um": self.diameters.tolist(),
            "volume_fraction": self.volume_fraction.tolist(),
        }


def distance_transform(mask: np.ndarray, voxel_size: Sequence[float]) -> np.ndarray:
    """Distance (physical units) of every True voxel to the nearest False voxel (float32).

    The faces of the box are not walls (``black_border=False``), as in PoreSpy.
    """
    import edt

    mask = np.ascontiguousarray(mask, dtype=bool)
    sizes = tuple(float(v) for v in voxel_size)
    return edt.edt(mask, anisotropy=sizes, black_border=False, parallel=_threads())


def _threads() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def percentile_sizes(
    diameters: np.ndarray, weights: np.ndarray, percents: Sequence[float] = (10, 50, 90)
) -> list[float]:
    """Weighted percentiles: the smallest diameter whose cumulative weight reaches each percent.

    Examples
    --------
    >>> percentile_sizes(np.array([1.0, 2.0, 4.0]), np.array([1, 1, 2]), (10, 50, 90))
    [1.0, 2.0, 4.0]
    """
    order = np.argsort(diameters)
    diameters, weights = np.asarray(diameters)[order], np.asarray(weights, float)[order]
    total = weights.sum()
    if diameters.size == 0 or total <= 0:
        return [math.nan for _ in percents]
    cumulative = np.cumsum(weights) / total
    positions = [int(np.searchsorted(cumulative, p / 100.0 - 1e-12)) for p in percents]
    return [float(diameters[min(i, diameters.size - 1)]) for i in positions]


def local_thickness_job(
    mask: np.ndarray, voxel_size: Sequence[float] = (1.0, 1.0, 1.0), *, name: str = "phase"
) -> Job[np.ndarray]:
    """Local thickness (diameter, float32, 0 outside the phase) of a boolean mask (Z, Y, X)."""
    mask = np.asarray(mask, dtype=bool)
    thickness = np.zeros(mask.shape, dtype=np.float32)
    if not mask.any():
        return thickness
    if mask.all():
        raise BatterySegError(
            f"The {name} fills the whole box, so its local thickness is larger than the box "
            "and cannot be measured; analyse a box that holds other phases too."
        )
    dt = distance_transform(mask, voxel_size)
    step = min(float(v) for v in voxel_size)
    largest = int(np.floor(float(dt.max()) / step + 1e-6))
    radii = step * np.arange(max(largest, 1), 0, -1)
    previous = -1
    for number, radius in enumerate(radii, start=1):
        seeds = dt >= radius - 1e-6 * step
        count = int(np.count_nonzero(seeds))
        if count and count != previous:  # the same centres with a smaller radius add nothing
            box = _reach(seeds, radius, voxel_size)
            covered = distance_transform(~seeds[box], voxel_size) < radius
            target = thickness[box]
            target[(target == 0) & covered & mask[box]] = 2.0 * radius
        previous = count
        yield Progress(number, len(radii), f"local thickness of {name}: radius {radius:.3g}")
    return thickness


def _reach(seeds: np.ndarray, radius: float, voxel_size: Sequence[float]) -> tuple[slice, ...]:
    """The box around ``seeds`` that spheres of ``radius`` can reach (plus one voxel)."""
    box = []
    for axis, size in enumerate(voxel_size):
        other = tuple(a for a in range(seeds.ndim) if a != axis)
        present = np.flatnonzero(seeds.any(axis=other))
        pad = int(np.ceil(radius / float(size))) + 1
        box.append(slice(max(int(present[0]) - pad, 0), int(present[-1]) + pad + 1))
    return tuple(box)


def distribution_of(thickness: np.ndarray, mask: np.ndarray, voxel_volume: float = 1.0):
    """The :class:`SizeDistribution` of a local-thickness image over ``mask``."""
    values = thickness[np.asarray(mask, dtype=bool)]
    diameters, counts = np.unique(values, return_counts=True)
    weights = counts.astype(np.float64) * voxel_volume
    total = weights.sum()
    d10, d50, d90 = percentile_sizes(diameters, weights)
    mean = float((diameters * weights).sum() / total) if total else math.nan
    fractions = weights / total if total else weights
    return SizeDistribution(diameters.astype(np.float64), fractions, d10, d50, d90, mean)


def size_distribution(
    mask: np.ndarray, voxel_size: Sequence[float] = (1.0, 1.0, 1.0)
) -> SizeDistribution:
    """Continuous (local-thickness) size distribution of a boolean phase mask.

    Examples
    --------
    >>> mask = np.zeros((40, 8, 8), dtype=bool)
    >>> mask[10:30] = True        # a layer 20 voxels thick; the box's side faces are open
    >>> size_distribution(mask, voxel_size=(0.5, 0.25, 0.25)).d50         # µm
    10.0
    """
    thickness = run_job(local_thickness_job(mask, voxel_size))
    return distribution_of(thickness, mask, float(np.prod(voxel_size)))
