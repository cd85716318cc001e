"""Surface area weights of the 256 binary 2x2x2 voxel configurations, and multi-label counting.

A surface crosses the cells between voxel centres; each cell's 8 corners, inside a phase or
not, form one of 256 binary configurations, and the area is a weighted count of them (a local
estimator: it adds up over any partition of the volume, so blocks stream exactly).

Weights. The prior is the Crofton formula with 13 lattice directions (Ohser and Mücklich 2000;
MorphoLibJ and MAVI do the same): a configuration contributes the transitions along its 28 corner
pairs, each weighted by the spherical Voronoi share of its direction (anisotropic voxels change
the directions and shares) over the number of cells that share the pair. That estimator is
unbiased for isotropic surfaces but not for planes: -7.3 % for axis-aligned planes with cubic
voxels. Following Lindblad (2005, "Surface area estimation of digitized 3D objects using weighted
local configurations") the weights are then fitted to planes: a plane with unit normal ``n``
meets configuration ``c`` in a known number of cells per unit area (the interval of offsets for
which the corners with the k smallest ``n . corner`` lie inside, over the cell volume), so a
ridge least-squares fit towards the Crofton prior over 4000 orientations, with axis-aligned
planes and the mean over all orientations held exact, gives the weights. Configurations that
planes never produce keep their Crofton weight. No 2x2x2 weights get every plane right: the area
of a plane is piecewise linear in its normal, so tilted planes stay within about -8 / +4.5 %
(cubic voxels; more with anisotropic ones), which averages out on isotropic surfaces (balls
within 1.5 % from a radius of 5 voxels, see ``bench/surface_accuracy.py``).

Multi-label counting: with L classes (0 = no phase, 1..K) a cell's configuration is the code
``sum(label_v * L**v)`` over its 8 corners ``v = 4 bz + 2 by + bx``; one histogram of codes per
block gives every phase's configuration (corner in the phase or not) and every pair's union.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import product

import numpy as np

__all__ = [
    "area_weights",
    "areas_from_histogram",
    "configuration_histogram",
    "crofton_weights",
    "merge_histograms",
]

CORNERS = np.array(list(product((0, 1), repeat=3)))  # (bz, by, bx), index 4 bz + 2 by + bx
_ORIENTATIONS = 4000
_SUB_BLOCK_VOXELS = 1 << 22  # cells per bincount: bounds its int64 temporaries (32 MB)
_DENSE_BINS = 1 << 24  # up to 7 phases (8 classes): a dense bincount; more: np.unique


def _directions() -> list[tuple[int, int, int]]:
    """The 13 lattice directions of a 2x2x2 cell (one of each +-pair)."""
    found = []
    for step in product((-1, 0, 1), repeat=3):
        if any(step) and tuple(-s for s in step) not in found:
            found.append(step)
    return found


def _sphere_points(count: int) -> np.ndarray:
    """``count`` nearly uniform unit vectors (a Fibonacci sphere), (count, 3)."""
    index = np.arange(count) + 0.5
    polar = np.arccos(1 - 2 * index / count)
    azimuth = np.pi * (1 + 5**0.5) * index
    return np.stack(
        [np.cos(polar), np.sin(polar) * np.sin(azimuth), np.sin(polar) * np.cos(azimuth)], 1
    )


def _voronoi_shares(units: np.ndarray) -> np.ndarray:
    """Share of the unit sphere closest (up to sign) to each of ``units`` (a fine point set)."""
    points = _sphere_points(200_000)
    nearest = np.abs(points @ units.T).argmax(axis=1)
    return np.bincount(nearest, minlength=len(units)) / len(points)


@lru_cache(maxsize=16)
def crofton_weights(voxel_size: tuple[float, float, float]) -> np.ndarray:
    """Area (``unit**2``) of each binary configuration by Crofton's formula, 13 directions."""
    spacing = np.asarray(voxel_size, dtype=float)
    cell = float(np.prod(spacing))
    steps = np.array(_directions())
    vectors = steps * spacing
    lengths = np.linalg.norm(vectors, axis=1)
    shares = _voronoi_shares(vectors / lengths[:, None])
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1  # (config, corner)
    weights = np.zeros(256)
    for step, length, share in zip(steps, lengths, shares, strict=True):
        cells_sharing = 2 ** (3 - int(np.count_nonzero(step)))  # 4 for an axis edge, 1 diagonal
        for a in range(8):
            b_corner = CORNERS[a] + step
            if np.all((b_corner >= 0) & (b_corner <= 1)):
                b = int(b_corner @ (4, 2, 1))
                crossing = bits[:, a] != bits[:, b]
                weights += crossing * (2 * share * cell / length / cells_sharing)
    return weights


def _plane_rows(normals: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Cells of each configuration per unit area of a plane with each normal (rows)."""
    heights = normals @ (CORNERS * spacing).T  # (orientation, corner)
    order = np.argsort(heights, axis=1)
    sorted_heights = np.take_along_axis(heights, order, axis=1)
    codes = np.cumsum(1 << order, axis=1)[:, :7]  # corners below the plane, k = 1..7
    lengths = np.diff(sorted_heights, axis=1) / float(np.prod(spacing))
    rows = np.zeros((len(normals), 256))
    np.add.at(rows, (np.arange(len(normals))[:, None], codes), lengths)
    return rows


@lru_cache(maxsize=16)
def area_weights(voxel_size: tuple[float, float, float]) -> np.ndarray:
    """Area (``unit**2``) of each binary configuration: Crofton's, fitted to planes."""
    spacing = np.asarray(voxel_size, dtype=float)
    prior = crofton_weights(tuple(voxel_size))
    rows = _plane_rows(_sphere_points(_ORIENTATIONS), spacing)
    # exact: planes along the axes (layers, box-aligned interfaces), and isotropic surfaces
    exact = np.vstack(
        [_plane_rows(np.concatenate([np.eye(3), -np.eye(3)]), spacing), rows.mean(axis=0)]
    )
    gram = rows.T @ rows
    ridge = 1e-4 * np.trace(gram) / 256
    system = np.block([[gram + ridge * np.eye(256), exact.T], [exact, np.zeros((7, 7))]])
    rhs = np.concatenate([rows.T @ np.ones(len(rows)) + ridge * prior, np.ones(7)])
    weights = np.linalg.lstsq(system, rhs, rcond=None)[0][:256]
    weights = (weights + weights[::-1]) / 2  # a phase and its complement: the same surface
    weights[[0, 255]] = 0.0
    return weights


def configuration_histogram(block: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The multi-label 2x2x2 configurations of ``block`` (values 0..classes-1) and their counts.

    Returns ``(codes, counts)`` of the configurations present; a configuration's code is
    ``sum(label_v * classes**v)``. Works a few planes at a time to bound the temporaries.
    """
    block = np.asarray(block)
    found: list[tuple[np.ndarray, np.ndarray]] = []
    if min(block.shape) < 2:
        return merge_histograms(found)
    bins = classes**8
    face_dtype = np.uint16 if classes**4 <= 1 << 16 else np.uint32
    code_dtype = np.uint32 if bins <= 1 << 32 else np.uint64
    plane = (block.shape[1] - 1) * (block.shape[2] - 1)
    step = max(1, _SUB_BLOCK_VOXELS // max(plane, 1))
    dense = np.zeros(bins, dtype=np.int64) if bins <= _DENSE_BINS else None
    for start in range(0, block.shape[0] - 1, step):
        faces = _face_codes(block[start : start + step + 1], classes, face_dtype)
        codes = faces[:-1].astype(code_dtype)
        codes += faces[1:].astype(code_dtype) * code_dtype(classes**4)
        if dense is not None:
            dense += np.bincount(codes.ravel(), minlength=bins)
        else:
            found.append(np.unique(codes, return_counts=True))
    if dense is not None:
        present = np.flatnonzero(dense)
        return present.astype(np.int64), dense[present]
    return merge_histograms(found)


def merge_histograms(found: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Add up ``(codes, counts)`` pairs into one pair with unique codes."""
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    codes = np.concatenate([c.astype(np.int64) for c, _ in found])
    counts = np.concatenate([n for _, n in found])
    unique, inverse = np.unique(codes, return_inverse=True)
    return unique, np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.int64)


def _face_codes(block: np.ndarray, classes: int, dtype) -> np.ndarray:
    """Code of the 2x2 corners of every cell face in each plane (corners by + bx order)."""
    codes = block[:, :-1, :-1].astype(dtype)
    for power, (dy, dx) in enumerate(((0, 1), (1, 0), (1, 1)), start=1):
        codes += block[:, dy : block.shape[1] - 1 + dy, dx : block.shape[2] - 1 + dx].astype(
            dtype
        ) * dtype(classes**power)
    return codes


def areas_from_histogram(
    codes: np.ndarray, counts: np.ndarray, classes: int, voxel_size: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Area of each class's boundary and of each pair's union, from configuration counts.

    Returns ``(areas, unions)``: ``areas[c]`` the surface of class ``c`` (0..classes-1) and
    ``unions[i, j]`` the surface of the union of classes ``i`` and ``j``.
    """
    weights = area_weights(tuple(float(v) for v in voxel_size))
    number = np.asarray(counts, dtype=np.float64)
    corners = (np.asarray(codes, dtype=np.int64)[:, None] // classes ** np.arange(8)) % classes
    member = np.stack([(corners == c) @ (1 << np.arange(8)) for c in range(classes)])
    areas = np.array([number @ weights[m] for m in member])
    unions = np.zeros((classes, classes))
    for i in range(classes):
        for j in range(i + 1, classes):
            unions[i, j] = unions[j, i] = number @ weights[member[i] | member[j]]
    return areas, unions
