"""Surface areas of phases and interfacial areas of phase pairs, in physical units, in one pass.

Method (``_cells``): each cell between voxel centres adds the area weight of its 2x2x2
configuration (``_configurations``: Crofton's weights fitted to planes), divided by that
weight's known relative error on a plane of the surface's orientation, the normal taken from
the phase indicator smoothed with a Gaussian of 1.5 voxels. Pairs from the same pass:
``A_ij = (A_i + A_j - A_{i+j}) / 2``, the union's normal from the sum of the two smoothed
indicators. Measured (``docs/analysis_speed.md``, ``bench/surface_accuracy.py``): balls from a
radius of 5 voxels and planes at 0-45 degrees within 2 %, with cubic, 2:1:1 and 1:1.5:0.7
voxels; balls of radius 4 voxels 1 voxel apart within 1 %.

The volume streams in slabs along axis 0 on all cores (``_slabs``); each slab reads ``HALO``
planes of its neighbours for the smoothing and counts the cells of its own planes only, so the
slab areas add up to the in-memory ones. Areas are normalised by the volume spanned by the voxel
centres, ``prod((n_i - 1) * d_i)``, the region the cells cover; the box faces themselves are
not surfaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from itertools import combinations

import numpy as np

from ..jobs import Job, Progress, run_job
from ..phases import PhaseSet
from ._cells import HALO, cell_areas
from ._fractions import encoded_view
from ._slabs import map_slabs

__all__ = ["SurfaceAreas", "surface_areas", "surface_areas_job"]

# a slab's own planes up to 16 M voxels (plus 2 x HALO planes of its neighbours); the smoothing
# and the corrections work in tiles of 2 M cells along y: a slab holds its bytes and one tile's
# temporaries
_SLAB_VOXELS = 1 << 24
# but at least 4 halos' worth of own planes: with 2048 x 2048 planes, 4 own planes would smooth
# 12 (3x the work); 16 smooth 24
_MIN_SLAB_PLANES = 4 * HALO


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


def _slab_areas(block: np.ndarray, own, first: int, classes, voxel_size):
    """Phase and union areas of one slab's own cells (``block`` has its neighbours' halo)."""
    block = np.where(block < classes, block, 0).astype(np.uint8)  # unknown values: no phase
    return cell_areas(block, own, classes, voxel_size)


def surface_areas_job(
    labels,
    phases: PhaseSet | str | None,
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    *,
    roi=None,
    pairs: bool = True,
) -> Job[SurfaceAreas]:
    """Surface area per phase and interfacial area per phase pair, in one streamed pass.

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
        Also report the interfacial area of every phase pair (from the same pass).
    """
    phases = PhaseSet.parse(phases)
    encoded = encoded_view(labels, phases, roi)
    classes = len(phases) + 1
    work = partial(_slab_areas, classes=classes, voxel_size=tuple(voxel_size))
    areas_by_class, unions = np.zeros(classes), np.zeros((classes, classes))
    plane = int(np.prod(encoded.shape[1:]))
    most = max(_SLAB_VOXELS, _MIN_SLAB_PLANES * plane)
    slabs = map_slabs(encoded, work, max_voxels=most, halo=HALO)
    for number, total, (slab_areas, slab_unions) in slabs:
        areas_by_class += slab_areas
        unions += slab_unions
        yield Progress(number, total, f"slab {number} of {total}")
    names = phases.names
    areas = {name: float(areas_by_class[i]) for i, name in enumerate(names, start=1)}
    interfaces = {}
    if pairs:
        for i, j in combinations(range(1, classes), 2):
            shared = (areas_by_class[i] + areas_by_class[j] - unions[i, j]) / 2.0
            interfaces[(names[i - 1], names[j - 1])] = max(0.0, float(shared))
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
