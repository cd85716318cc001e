"""2x2x2 configuration areas corrected for the orientation of the surface, cell by cell.

The weights of ``_configurations`` give a plane with unit normal ``n`` the area ``A (1 + e(n))``
exactly, with a known, orientation-dependent error ``e`` (piecewise linear in ``n``; -8 % to
+4.5 % with cubic voxels, up to +10 % with anisotropic ones): any 2x2x2 estimator has one. So
each cell's weight is divided by ``1 + e(n_hat)``, with ``n_hat`` the gradient, at the cell's
centre, of the phase indicator smoothed with a Gaussian of ``SIGMA`` voxels along every axis.

The normal only enters through a factor between about 0.92 and 1.09, so where it is poor (in
gaps and necks narrower than the smoothing, at triple lines) the estimate stays that of the
2x2x2 weights within a few per cent; where it is good (smooth surfaces at any angle) the
orientation error goes. Smoothing the faces themselves instead (flux of the smoothed normal
through the voxel faces, Windreich et al. 2003) is exact on isolated planes and balls with a
wide Gaussian but loses 8 to 56 % of the area of particles 1 voxel apart, where the smoothed
normals of neighbours cancel; see ``docs/analysis_speed.md``.

A phase's surface uses its indicator, the surface of the union of phases ``i`` and ``j`` the sum
of theirs, so one pass gives every phase and every pair (``A_ij = (A_i + A_j - A_{i+j}) / 2``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import combinations

import numpy as np
from scipy import ndimage

from ._configurations import CORNERS, _plane_rows, area_weights

__all__ = ["HALO", "SIGMA", "cell_areas", "plane_error"]

SIGMA = 1.5  # voxels, along every axis
_TRUNCATE = 2.0
HALO = int(_TRUNCATE * SIGMA + 0.5) + 1  # the kernel's reach, plus the cell's second plane
_STEPS = 128  # the table of e(n): octahedral coordinates of the normal, 1/128 steps
_TILE_CELLS = 1 << 21  # cells smoothed and corrected at once: bounds the float32 temporaries


@lru_cache(maxsize=16)
def _factor_table(voxel_size: tuple[float, float, float]) -> np.ndarray:
    """``1 / (1 + e(n))`` at ``n ~ (1 - u - v, u, v)``, ``u, v = k / _STEPS`` (one octant).

    Octahedral coordinates ``u = |n_y| / |n|_1``, ``v = |n_x| / |n|_1`` need no square root or
    trigonometry per cell; lattice reflections keep the weights, so one octant covers all signs.
    """
    steps = np.arange(_STEPS + 1) / _STEPS
    u, v = np.meshgrid(steps, steps, indexing="ij")
    inside = u + v <= 1 + 1e-12
    normals = np.stack([1 - u - v, u, v], -1)[inside]
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    rows = _plane_rows(normals, np.asarray(voxel_size, dtype=float))
    table = np.ones((_STEPS + 1, _STEPS + 1))
    table[inside] = 1.0 / (rows @ area_weights(voxel_size))
    return table.astype(np.float32)


def plane_error(normals: np.ndarray, voxel_size: Sequence[float]) -> np.ndarray:
    """Relative error ``e(n)`` of the 2x2x2 weights on planes with these normals (n, 3)."""
    table = _factor_table(tuple(float(v) for v in voxel_size))
    index = _octant_index(*np.abs(np.asarray(normals, dtype=np.float32)).T)
    return 1.0 / table.ravel()[index] - 1.0


def _octant_index(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Flat table index of normals with components ``|z|, |y|, |x|`` (zero: the z axis)."""
    total = z + y + x
    scale = np.divide(np.float32(_STEPS), total, out=np.zeros_like(total), where=total > 0)
    row = (y * scale + np.float32(0.5)).astype(np.int32)
    column = (x * scale + np.float32(0.5)).astype(np.int32)
    return row * (_STEPS + 1) + column


def _cell_codes(mask: np.ndarray) -> np.ndarray:
    """Binary configuration code of every cell of ``mask`` (corner ``v`` is bit ``v``)."""
    z, y, x = (n - 1 for n in mask.shape)
    codes = np.zeros((z, y, x), dtype=np.uint8)
    for bit, (dz, dy, dx) in enumerate(CORNERS):
        codes |= mask[dz : dz + z, dy : dy + y, dx : dx + x].astype(np.uint8) << np.uint8(bit)
    return codes


def _cell_gradient(field: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Gradient (3, cells) at the centres of the cells of ``field`` (their 8 corners)."""
    gradient = []
    for axis in range(3):
        step = np.diff(field, axis=axis)
        for other in range(3):
            if other != axis:  # the mean over the two corners along the other axes
                low = [slice(None)] * 3
                high = [slice(None)] * 3
                low[other], high[other] = slice(0, -1), slice(1, None)
                step = step[tuple(low)] + step[tuple(high)]
        gradient.append(step * np.float32(0.25 / spacing[axis]))
    return np.stack(gradient)


def _tile_areas(tile, own, classes, voxel_size, areas, unions) -> None:
    """Add the corrected areas of the cells at ``tile[own]`` (slices along z and y)."""
    spacing = np.asarray(voxel_size)
    weights = area_weights(voxel_size).astype(np.float32)
    factors = _factor_table(voxel_size).ravel()
    region = tuple(slice(s.start, s.stop + 1) for s in own)  # the own cells' corners
    corners = tile[region]
    present = np.flatnonzero(np.bincount(tile.ravel(), minlength=classes))
    codes, gradients = {}, {}
    for value in present[:-1]:
        field = ndimage.gaussian_filter(
            (tile == value).astype(np.float32), SIGMA, mode="nearest", truncate=_TRUNCATE
        )
        gradients[value] = _cell_gradient(field[region], spacing)
    # the indicators add up to 1 and the smoothing is linear: the last one's is the rest's negative
    gradients[present[-1]] = -sum(gradients.values()) if len(present) > 1 else np.zeros((3, 1))
    for value in present:
        codes[value] = _cell_codes(corners == value)

    def corrected(code, *fields) -> float:
        """Corrected area of the cells of ``code``, the normal from the sum of ``fields``."""
        cells = np.flatnonzero(code.ravel() - np.uint8(1) < np.uint8(254))  # not 0, not 255
        normal = [
            np.abs(sum(gradients[f][axis].ravel()[cells] for f in fields)) for axis in range(3)
        ]
        factor = factors[_octant_index(*normal)]
        return float(np.sum(weights[code.ravel()[cells]] * factor, dtype=np.float64))

    found = {value: corrected(codes[value], value) for value in present}
    for value, area in found.items():
        areas[value] += area
    for i, j in combinations(range(classes), 2):
        if i in found and j in found:
            union = corrected(codes[i] | codes[j], i, j)
        else:  # with an absent phase: the other's surface
            union = found.get(i, 0.0) + found.get(j, 0.0)
        unions[i, j] += union
        unions[j, i] += union


def cell_areas(
    block: np.ndarray, own: tuple[int, int], classes: int, voxel_size: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Corrected areas of the cells whose lower corner lies in ``block``'s own planes.

    ``block`` (values 0..classes-1) carries up to ``HALO`` planes of its neighbours on either
    side; the smoothing sees them, the counts do not. Works in tiles along y (each with its own
    halo) to bound the temporaries. Returns ``(areas, unions)``: the surface of each class and of
    each pair's union.
    """
    voxel_size = tuple(float(v) for v in voxel_size)
    first, stop = own
    stop = min(stop, block.shape[0] - 1)
    areas, unions = np.zeros(classes), np.zeros((classes, classes))
    rows = block.shape[1] - 1
    if stop <= first or rows < 1 or block.shape[2] < 2:
        return areas, unions
    height = max(1, _TILE_CELLS // ((stop - first) * block.shape[2]))
    for start in range(0, rows, height):
        end = min(rows, start + height)
        low, high = max(0, start - HALO), min(block.shape[1], end + HALO)
        low_z, high_z = max(0, first - HALO), min(block.shape[0], stop + HALO)
        tile = block[low_z:high_z, low:high]
        own_tile = (slice(first - low_z, stop - low_z), slice(start - low, end - low))
        _tile_areas(tile, own_tile, classes, voxel_size, areas, unions)
    return areas, unions
