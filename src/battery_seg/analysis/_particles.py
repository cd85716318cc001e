"""Discrete particles (or pores) of a phase: watershed on the distance transform.

Method (PoreSpy's SNOW partitioning, with anisotropic voxels): the phase's distance transform
(physical units, :func:`._sizes.distance_transform`) is smoothed with a Gaussian of 0.4 voxel;
its regional maxima higher than their surroundings by at least ``h`` (half the finest voxel size)
are the particle centres; a watershed of ``-dt`` from those markers, inside the phase, splits
touching particles along their necks. Per particle: volume ``V`` (voxels x voxel volume), the
equivalent diameter ``(6 V / pi) ** (1/3)``, the surface area ``A`` (marching cubes on the
smoothed particle mask, as :mod:`._surface`), and Wadell's sphericity
``pi ** (1/3) * (6 V) ** (2/3) / A`` (1 for a sphere).

Particles of fewer than :data:`MIN_VOXELS` voxels are fragments (noise, slivers between
particles): counted apart, left out of the statistics. Particles cut by a face of the box are
counted, but their diameters and sphericities are truncated, so the statistics use the particles
inside when there are any (``edge_excluded`` says so). D10/D50/D90 are volume-weighted (as laser
diffraction reports them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..jobs import Job, Progress, run_job
from ._sizes import distance_transform, percentile_sizes

__all__ = ["MIN_VOXELS", "ParticleStats", "particles", "particles_job"]

MIN_VOXELS = 27  # a 3 x 3 x 3 cube
_SIGMA = 0.4  # voxels, PoreSpy's SNOW smoothing


@dataclass(frozen=True)
class ParticleStats:
    """Separated particles of one phase; diameters in the voxel size's unit."""

    count: int
    fragments: int
    diameters: np.ndarray  # equivalent diameters of the particles the statistics use
    sphericities: np.ndarray
    edge_excluded: bool
    d10: float
    d50: float
    d90: float
    sphericity_mean: float

    def to_dict(self) -> dict:
        mean = float(self.diameters.mean()) if self.diameters.size else math.nan
        return {
            "count": self.count,
            "fragments": self.fragments,
            "measured": int(self.diameters.size),
            "edge_particles_excluded": self.edge_excluded,
            "d10_um": self.d10,
            "d50_um": self.d50,
            "d90_um": self.d90,
            "mean_diameter_um": mean,
            "sphericity_mean": self.sphericity_mean,
            "diameter_um": self.diameters.tolist(),
        }


def separate(mask: np.ndarray, voxel_size: Sequence[float]) -> tuple[np.ndarray, int]:
    """Watershed labels (int32, 0 = background) of the particles of a boolean mask."""
    from scipy import ndimage
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(mask.shape, np.int32), 0
    dt = distance_transform(mask, voxel_size)
    smooth = ndimage.gaussian_filter(dt, _SIGMA)
    peaks = h_maxima(smooth, 0.5 * min(voxel_size)).astype(bool) & mask
    markers, count = ndimage.label(peaks, structure=np.ones((3, 3, 3)))
    labels = watershed(-smooth, markers, mask=mask).astype(np.int32)
    return labels, int(count)


def _surface_area(region: np.ndarray, voxel_size: Sequence[float]) -> float:
    from scipy import ndimage
    from skimage import measure

    finest = min(voxel_size)  # half a voxel along the finest axis removes the staircase
    sigma = tuple(0.5 * float(np.sqrt(d / finest)) for d in voxel_size)
    field = np.pad(region.astype(np.float32), 2)
    field = ndimage.gaussian_filter(field, sigma, mode="constant")
    vertices, faces, _, _ = measure.marching_cubes(field, 0.5, spacing=tuple(voxel_size))
    return float(measure.mesh_surface_area(vertices, faces))


def particles_job(
    mask: np.ndarray, voxel_size: Sequence[float] = (1.0, 1.0, 1.0), *, name: str = "phase"
) -> Job[ParticleStats]:
    """Separate and measure the particles of a boolean mask (Z, Y, X); see the module notes."""
    from scipy import ndimage

    voxel_size = tuple(float(v) for v in voxel_size)
    yield Progress(0, 1, f"particles of {name}: watershed")
    labels, count = separate(mask, voxel_size)
    voxel_volume = float(np.prod(voxel_size))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    boxes = ndimage.find_objects(labels)
    shape = labels.shape
    kept, diameters, sphericities, inside = 0, [], [], []
    for index, box in enumerate(boxes, start=1):
        if box is None or sizes[index] < MIN_VOXELS:
            continue
        kept += 1
        volume = sizes[index] * voxel_volume
        area = _surface_area(labels[box] == index, voxel_size)
        diameters.append((6.0 * volume / math.pi) ** (1.0 / 3.0))
        sphericities.append(math.pi ** (1 / 3) * (6.0 * volume) ** (2 / 3) / area)
        inside.append(all(s.start > 0 and s.stop < n for s, n in zip(box, shape, strict=True)))
        if kept % 200 == 0:
            yield Progress(index, len(boxes), f"particles of {name}: {kept} measured")
    diameters_all, sphericity_all = np.array(diameters), np.array(sphericities)
    inside_all = np.array(inside, dtype=bool)
    edge_excluded = bool(inside_all.any() and not inside_all.all())
    chosen = inside_all if inside_all.any() else np.ones(kept, dtype=bool)
    diameters_used, sphericity_used = diameters_all[chosen], sphericity_all[chosen]
    d10, d50, d90 = percentile_sizes(diameters_used, diameters_used**3)
    mean_sphericity = float(sphericity_used.mean()) if sphericity_used.size else math.nan
    yield Progress(1, 1, f"particles of {name}: {kept} particles")
    return ParticleStats(
        count=kept,
        fragments=int(np.count_nonzero(sizes[1:] < MIN_VOXELS)),
        diameters=diameters_used,
        sphericities=sphericity_used,
        edge_excluded=edge_excluded,
        d10=d10,
        d50=d50,
        d90=d90,
        sphericity_mean=mean_sphericity,
    )


def particles(mask: np.ndarray, voxel_size: Sequence[float] = (1.0, 1.0, 1.0)) -> ParticleStats:
    """Separated particles of a boolean phase mask (see :func:`particles_job`).

    Examples
    --------
    >>> z, y, x = np.ogrid[:24, :24, :40]
    >>> mask = ((z - 12) ** 2 + (y - 12) ** 2 + (x - 11) ** 2 <= 64) | (
    ...     (z - 12) ** 2 + (y - 12) ** 2 + (x - 27) ** 2 <= 64)   # two touching balls
    >>> particles(mask).count
    2
    """
    return run_job(particles_job(mask, voxel_size))
