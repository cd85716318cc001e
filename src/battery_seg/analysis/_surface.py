"""Surface areas of phases and interfacial areas of phase pairs, in physical units.

Method: each phase mask is smoothed with a Gaussian of ``0.5 * sqrt(d_i / d_min)`` voxels along
axis i (0.5 voxel for cubic voxels; this removes most of the voxel staircase, which makes raw
marching cubes overestimate curved surfaces by 8-13 %), then scikit-image's marching cubes at
level 0.5 with ``spacing=voxel_size`` gives a mesh whose area is in physical units, so anisotropic
voxels are honoured. Measured accuracy on cubic voxels: spheres of radius 3-20 voxels within 4 %
of 4 pi r^2, cylinders of radius 2-5 voxels within 2 %, axis-aligned planes exact, sharp cube
edges rounded (-4 % on a 20-voxel cube). With 2:1 anisotropic voxels spheres are within 5.5 %.

The volume is processed in slabs along axis 0 that share one slice (marching cubes works on the
cells between neighbouring slices, so the slab areas add up exactly) with a halo for the
smoothing; this gives progress and keeps memory to a few slabs. Areas are normalised by the
volume spanned by the voxel centres, ``prod((n_i - 1) * d_i)``, the region the mesh samples; the
box faces themselves are not surfaces.

The interfacial area between phases i and j follows from the areas of i, j and their union:
``A_ij = (A_i + A_j - A_{i+j}) / 2`` (smoothing is linear, so the union's smoothed mask is the sum).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ..jobs import Job, Progress, run_job
from ..phases import PhaseSet
from ._fractions import encoded_view

__all__ = [
    "SMOOTHING_SIGMA",
    "SurfaceAreas",
    "smoothing_sigma",
    "surface_areas",
    "surface_areas_job",
]

SMOOTHING_SIGMA = 0.5  # voxels, along the axes with the finest voxel size
_SLAB_VOXELS = 1 << 22


@dataclass(frozen=True)
class SurfaceAreas:
    """Surface area of each phase and interfacial area of each phase pair (``unit**2``).

    ``volume`` is the sampled volume (``unit**3``) used for the specific areas.
    """

    areas: dict[str, float]
    interfaces: dict[tuple[str, str], float]
    volume: float

    def specific(self, name: str) -> float:
        """Surface area of phase ``name`` per total volume (``1/unit``)."""
        return self.areas[name] / self.volume if self.volume else float("nan")

    def specific_interface(self, pair: tuple[str, str]) -> float:
        return self.interfaces[pair] / self.volume if self.volume else float("nan")


def _mesh_area(field: np.ndarray, voxel_size: Sequence[float]) -> float:
    from skimage import measure

    if min(field.shape) < 2 or field.max() <= 0.5 or field.min() >= 0.5:
        return 0.0
    vertices, faces, _, _ = measure.marching_cubes(field, 0.5, spacing=tuple(voxel_size))
    return float(measure.mesh_surface_area(vertices, faces))


def smoothing_sigma(voxel_size: Sequence[float]) -> tuple[float, ...]:
    """Gaussian sigma in voxels along each axis: ``0.5 * sqrt(d_i / d_min)``."""
    finest = min(voxel_size)
    return tuple(SMOOTHING_SIGMA * float(np.sqrt(d / finest)) for d in voxel_size)


def _slab_areas(encoded: np.ndarray, keep: slice, n_phases: int, voxel_size) -> np.ndarray:
    """Areas of phases 1..K (index 0..K-1) and of pair unions (row-major pairs) in one slab."""
    from scipy import ndimage

    sigma = smoothing_sigma(voxel_size)
    smoothed = []
    for value in range(1, n_phases + 1):
        mask = (encoded == value).astype(np.float32)
        if mask.any():
            mask = ndimage.gaussian_filter(mask, sigma, mode="nearest")
        smoothed.append(mask[keep])
    areas = [_mesh_area(s, voxel_size) for s in smoothed]
    for i, j in combinations(range(n_phases), 2):
        areas.append(_mesh_area(smoothed[i] + smoothed[j], voxel_size))
    return np.array(areas)


def surface_areas_job(
    labels,
    phases: PhaseSet | str | None,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    *,
    roi=None,
    pairs: bool = True,
) -> Job[SurfaceAreas]:
    """Surface area per phase and interfacial area per phase pair, slab by slab.

    Parameters
    ----------
    labels : numpy, dask or zarr array (Z, Y, X)
    phases : PhaseSet or str
    voxel_size : (dz, dy, dx)
        Physical voxel size; areas come out in its unit squared.
    roi : box or boolean mask, optional
        As in :func:`~battery_seg.analysis.volume_fractions`. Unlabelled voxels count as no phase,
        so a phase's surface includes its boundary with unlabelled voxels.
    pairs : bool
        Also compute interfacial areas of every phase pair (one more mesh per pair).
    """
    phases = PhaseSet.parse(phases)
    encoded = encoded_view(labels, phases, roi)
    halo = int(4.0 * smoothing_sigma(voxel_size)[0] + 0.5)  # gaussian_filter's reach (truncate=4)
    depth = encoded.shape[0]
    plane = int(np.prod(encoded.shape[1:])) or 1
    step = max(1, _SLAB_VOXELS // plane)
    starts = list(range(0, max(depth - 1, 1), step))
    n_phases = len(phases)
    pair_list = list(combinations(range(n_phases), 2)) if pairs else []
    totals = np.zeros(n_phases + len(list(combinations(range(n_phases), 2))))
    for number, start in enumerate(starts, start=1):
        stop = min(start + step + 1, depth)  # one shared slice with the next slab
        low, high = max(0, start - halo), min(depth, stop + halo)
        block = np.asarray(encoded[low:high].compute())
        totals += _slab_areas(block, slice(start - low, stop - low), n_phases, voxel_size)
        yield Progress(number, len(starts), f"surface areas: slab {number} of {len(starts)}")
    names = phases.names
    areas = {name: float(totals[i]) for i, name in enumerate(names)}
    interfaces = {}
    for offset, (i, j) in enumerate(pair_list):
        union = totals[n_phases + offset]
        interfaces[(names[i], names[j])] = max(
            0.0, float(areas[names[i]] + areas[names[j]] - union) / 2.0
        )
    volume = float(np.prod([(n - 1) * d for n, d in zip(encoded.shape, voxel_size, strict=True)]))
    return SurfaceAreas(areas, interfaces, volume)


def surface_areas(
    labels, phases: PhaseSet | str | None, voxel_size: Sequence[float] = (1.0, 1.0, 1.0), **kw
) -> SurfaceAreas:
    """Surface and interfacial areas (see :func:`surface_areas_job`).

    Examples
    --------
    >>> labels = np.ones((10, 10, 10), dtype=np.uint8)
    >>> labels[5:] = 2                                   # a flat interface of 9 x 9 voxel pitches
    >>> result = surface_areas(labels, "pore,solid", voxel_size=(1.0, 2.0, 2.0))
    >>> round(result.interfaces[("pore", "solid")], 6)
    324.0
    """
    return run_job(surface_areas_job(labels, phases, voxel_size, **kw))
