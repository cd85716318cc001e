"""Painted voxels of a labels volume, read sparsely, checked, and grouped into strokes.

Painted labels are sparse (strokes on a few slices), so they are kept as coordinates and phase
values instead of dense arrays: a labels volume bigger than memory is scanned slab by slab and
only its painted voxels are kept. The user's array is only read, never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from ..errors import BatterySegError
from ..names import AXES
from ..phases import PhaseSet

__all__ = ["PaintedVoxels", "as_volume", "one_slice_note", "read_painted", "stroke_ids"]

_SLAB_VOXELS = 16_000_000


@dataclass(frozen=True)
class PaintedVoxels:
    """The painted voxels of one labels volume.

    ``coords`` is ``(M, 3)`` (z, y, x), ``values`` the phase values 1..K, ``stroke`` the id of
    the stroke (connected painted region of one phase) of each voxel.
    """

    name: str
    shape: tuple[int, int, int]
    coords: np.ndarray
    values: np.ndarray
    stroke: np.ndarray

    def counts(self, n_phases: int) -> np.ndarray:
        """Painted voxels per phase value 1..K."""
        return np.bincount(self.values, minlength=n_phases + 1)[1 : n_phases + 1]


class NothingPaintedError(BatterySegError):
    """A labels volume without a single painted voxel."""


def as_volume(array, name: str, what: str):
    """``array`` as ``(Z, Y, X)``: a 2D ``(Y, X)`` array becomes one slice."""
    ndim = getattr(array, "ndim", None)
    if ndim == 2:
        return array[None]
    if ndim != 3:
        raise BatterySegError(
            f"{name}: the {what} has {ndim} dimensions; training needs a 3D volume (z, y, x) or "
            "a 2D slice (y, x). Select a single channel / time point first."
        )
    return array


def _decoder(phases: PhaseSet) -> tuple[np.ndarray, set[int], str]:
    """Lookup table file value -> 0 (unpainted) or 1..K, the allowed values, and their listing.

    Without file values, 0 is unpainted and 1..K are the phases. With ``NAME=VALUE`` file values,
    0 is unpainted unless it names a phase; then every voxel must carry a phase value.
    """
    sources = [p.value if p.source_value is None else p.source_value for p in phases]
    allowed = set(sources)
    listing = ", ".join(f"{s}={p.name}" for s, p in zip(sources, phases, strict=True))
    if 0 not in allowed:
        allowed.add(0)
        listing = "0=unpainted, " + listing
    lut = np.zeros(max(allowed) + 1, dtype=np.uint8)
    for source, phase in zip(sources, phases, strict=True):
        lut[source] = phase.value
    return lut, allowed, listing


def _present_values(slab: np.ndarray) -> np.ndarray:
    if slab.dtype.itemsize <= 2 and slab.dtype.kind == "u":
        return np.flatnonzero(np.bincount(slab.ravel()))
    return np.unique(slab)


def read_painted(labels, phases: PhaseSet, name: str) -> PaintedVoxels:
    """Scan ``labels`` (NumPy or dask, 2D or 3D) slab by slab and keep its painted voxels.

    Raises
    ------
    BatterySegError
        For non-integer labels, values outside the phase set (listed, with the fix) or when
        ``name`` holds no painted voxel.
    """
    labels = as_volume(labels, name, "Labels")
    dtype = np.dtype(labels.dtype)
    if dtype.kind not in "uib":
        raise BatterySegError(
            f"{name}: the labels hold {dtype} values; painted labels must be integers "
            "(0 = unpainted, 1..K = phases). Use a napari Labels layer or an integer label file."
        )
    lut, allowed, listing = _decoder(phases)
    shape = tuple(int(s) for s in labels.shape)
    slab = max(1, _SLAB_VOXELS // max(shape[1] * shape[2], 1))
    coords, values = [], []
    for z0 in range(0, shape[0], slab):
        block = np.asarray(labels[z0 : z0 + slab])
        if dtype.kind == "b":
            block = block.view(np.uint8)
        present = _present_values(block)
        unknown = [int(v) for v in present if int(v) not in allowed]
        if unknown:
            raise BatterySegError(
                f"{name}: the labels hold values {unknown[:10]} outside the phase set "
                f"({listing}). Choose the phase set that matches the painting (e.g. add phases "
                "or use NAME=VALUE for a label file from another tool), or erase those voxels."
            )
        encoded = lut[block]
        found = np.nonzero(encoded)
        coords.append(np.stack(found, axis=1).astype(np.int32) + np.array([z0, 0, 0], np.int32))
        values.append(encoded[found])
    coords_all = np.concatenate(coords) if coords else np.zeros((0, 3), np.int32)
    values_all = np.concatenate(values) if values else np.zeros(0, np.uint8)
    if values_all.size == 0:
        raise NothingPaintedError(
            f"{name}: nothing is painted. Paint a few strokes of every phase "
            f"({phases.describe()}) on one or more slices, then train."
        )
    stroke = stroke_ids(coords_all, values_all, shape)
    return PaintedVoxels(name, shape, coords_all, values_all, stroke)


_MIN_SLICES = 8  # thinner stacks: painting one slice of them is painting most of the volume


def one_slice_note(painted: PaintedVoxels) -> str:
    """A note when every stroke of a 3D volume lies on one slice ("" otherwise).

    The model then sees one slice's grey levels and texture only, and its held-back strokes
    come from the same slice, so the validation IoU says nothing about the other slices (grey
    level and texture drift with depth in real tomograms). Training goes on; the note says so
    and names slices to paint.

    Examples
    --------
    >>> coords = np.array([[5, 1, 1], [5, 3, 4]])
    >>> painted = PaintedVoxels("v", (40, 8, 8), coords, np.array([1, 2]), np.array([0, 1]))
    >>> one_slice_note(painted)[:47]
    'v: every stroke is on slice z=5 of 40; the mode'
    """
    if painted.shape[0] < _MIN_SLICES or len(painted.coords) == 0:
        return ""  # a slice or a thin stack
    for axis, size in enumerate(painted.shape):
        if size < _MIN_SLICES:
            continue
        at = np.unique(painted.coords[:, axis])
        if at.size != 1:
            continue
        index = int(at[0])
        others = [q * size // 4 for q in (1, 2, 3) if abs(q * size // 4 - index) > size // 8]
        name = AXES[axis]
        where = ", ".join(f"{name}={o}" for o in others[:2])
        return (
            f"{painted.name}: every stroke is on slice {name}={index} of {size}; the model "
            "learns that slice only and its validation IoU is measured on it too, so it says "
            "nothing about other depths (grey levels drift through a tomogram). Paint a few "
            f"strokes on one or two more slices ({where}) and train again for a model that "
            "holds through the volume."
        )
    return ""


def stroke_ids(coords: np.ndarray, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Connected painted regions of one value (26-connectivity), from coordinates only.

    Returns an id 0..S-1 per voxel; works without a dense array, so huge volumes are fine.

    Examples
    --------
    >>> coords = np.array([[0, 0, 0], [0, 1, 1], [0, 5, 5], [0, 5, 6]])
    >>> stroke_ids(coords, np.array([1, 1, 1, 2]), (1, 8, 8)).tolist()
    [0, 0, 1, 2]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(coords)
    if n == 0:
        return np.zeros(0, np.int64)
    coords = coords.astype(np.int64)
    linear = np.ravel_multi_index(tuple(coords.T), shape)
    order = np.argsort(linear)
    ordered = linear[order]
    rows, cols = [], []
    offsets = [d for d in product((-1, 0, 1), repeat=3) if d > (0, 0, 0)]
    for offset in offsets:
        neighbour = coords + np.array(offset)
        inside = np.all((neighbour >= 0) & (neighbour < np.array(shape)), axis=1)
        idx = np.flatnonzero(inside)
        target = np.ravel_multi_index(tuple(neighbour[idx].T), shape)
        pos = np.minimum(np.searchsorted(ordered, target), n - 1)
        hit = ordered[pos] == target
        j = order[pos[hit]]
        i = idx[hit]
        same = values[i] == values[j]
        rows.append(i[same])
        cols.append(j[same])
    rows_all, cols_all = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(rows_all), np.int8), (rows_all, cols_all)), shape=(n, n))
    _, ids = connected_components(graph, directed=False)
    # Renumber in order of first appearance so ids are deterministic and readable.
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inverse].astype(np.int64)
