"""Face-connected clusters of every phase and of unions of phases, out of core.

Each slab along axis 0 is labelled by connected-components-3d (6-neighbour, the same stencil as
:class:`~battery_seg.analysis.Clusters`; every value of the slab in one pass, and clusters never
join different values). Of each cluster only its voxel count, its value and the box faces it
touches are kept; clusters of consecutive slabs that meet across the shared face with the same
value are joined afterwards (a union-find: scipy's connected components of the graph of joins).
Memory: a few slabs at once, plus about 10 bytes per cluster and one plane of cluster ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..jobs import Job, Progress
from . import _slabs
from ._connectivity import Connectivity, connectivity_fractions
from ._slabs import map_slabs

__all__ = ["ChunkedClusters", "chunked_clusters_job"]

# a chunk row up to this size is read once and labelled in pieces of SLAB_VOXELS (cc3d's ids
# and their int64 bincount cost 12 bytes per voxel of a piece)
_ROW_VOXELS = 1 << 27


@dataclass
class _SlabClusters:
    """Clusters of one slab: per local id 1..n its size, value and touched faces."""

    sizes: np.ndarray
    values: np.ndarray
    faces: np.ndarray
    first: np.ndarray  # cluster ids of the first plane (0 = background)
    last: np.ndarray


def _label_row(block: np.ndarray, tables: Sequence[np.ndarray]) -> list[list[_SlabClusters]]:
    """A chunk row read once, labelled in pieces of at most ``SLAB_VOXELS`` (in order)."""
    step = max(1, _slabs.SLAB_VOXELS // max(block.shape[1] * block.shape[2], 1))
    return [_label_slab(block[s : s + step], tables) for s in range(0, block.shape[0], step)]


def _label_slab(block: np.ndarray, tables: Sequence[np.ndarray]) -> list[_SlabClusters]:
    """Clusters of ``table[block]`` for each grouping table (0 = background)."""
    import cc3d

    found = []
    for table in tables:
        grouped = table[block]
        ids, count = cc3d.connected_components(
            grouped, connectivity=6, return_N=True, out_dtype=np.uint32
        )
        sizes = np.bincount(ids.ravel(), minlength=count + 1)
        if table.max() <= 1:  # a network: every cluster has the value 1
            values = np.ones(count + 1, dtype=np.uint8)
        else:
            values = np.zeros(count + 1, dtype=np.uint8)
            values[ids.ravel()] = grouped.ravel()
        faces = np.zeros(count + 1, dtype=np.uint8)
        for axis in range(3):
            for high in (0, 1):
                face = np.take(ids, -high, axis=axis)
                faces[np.unique(face)] |= np.uint8(1 << (2 * axis + high))
        found.append(_SlabClusters(sizes[1:], values[1:], faces[1:], ids[0].copy(), ids[-1].copy()))
    return found


class _Joiner:
    """Collects the clusters of successive slabs of one grouping and the joins between them."""

    def __init__(self) -> None:
        self.parts: list[_SlabClusters] = []
        self.offset = 0
        self.joins: list[np.ndarray] = []
        self.previous: tuple[np.ndarray, np.ndarray, int] | None = None  # last plane, values

    def add(self, part: _SlabClusters, first: bool, last: bool) -> None:
        if not first:
            part.faces &= np.uint8(~1 & 0xFF)  # the slab's low z face is inside the volume
        if not last:
            part.faces &= np.uint8(~2 & 0xFF)
        if self.previous is not None:
            self.joins.append(self._joins(part))
        self.previous = (part.last, part.values, self.offset)
        part.first = part.last = None
        self.parts.append(part)
        self.offset += len(part.sizes)

    def _joins(self, part: _SlabClusters) -> np.ndarray:
        below, below_values, below_offset = self.previous
        above = part.first
        meet = (below > 0) & (above > 0)
        meet[meet] = below_values[below[meet] - 1] == part.values[above[meet] - 1]
        pairs = np.unique(below[meet].astype(np.int64) << 32 | above[meet].astype(np.int64))
        return np.stack([(pairs >> 32) - 1 + below_offset, (pairs & 0xFFFFFFFF) - 1 + self.offset])

    def clusters(self) -> ChunkedClusters:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        sizes = np.concatenate([p.sizes for p in self.parts]) if self.parts else np.zeros(0)
        values = np.concatenate([p.values for p in self.parts]) if self.parts else np.zeros(0)
        faces = np.concatenate([p.faces for p in self.parts]) if self.parts else np.zeros(0)
        joins = np.concatenate(self.joins, axis=1) if self.joins else np.zeros((2, 0), np.int64)
        count = len(sizes)
        graph = coo_matrix((np.ones(joins.shape[1], np.int8), (joins[0], joins[1])), (count,) * 2)
        merged, root = connected_components(graph, directed=False)
        merged_faces = np.zeros(merged, dtype=np.uint8)
        np.bitwise_or.at(merged_faces, root, faces.astype(np.uint8))
        merged_values = np.zeros(merged, dtype=np.uint8)
        merged_values[root] = values
        merged_sizes = np.bincount(root, weights=sizes, minlength=merged).astype(np.int64)
        return ChunkedClusters(merged_sizes, merged_values, merged_faces)


@dataclass(frozen=True)
class ChunkedClusters:
    """Clusters of a whole volume: per cluster its voxel count, value and touched faces."""

    sizes: np.ndarray
    values: np.ndarray
    faces: np.ndarray

    def connectivity(self, value: int, axis: int, front_face: str = "low") -> Connectivity:
        """Through / front-only / back-only / isolated fractions of ``value`` along ``axis``."""
        chosen = self.values == value
        low = (self.faces[chosen] & (1 << (2 * axis))) > 0
        high = (self.faces[chosen] & (1 << (2 * axis + 1))) > 0
        front, back = (low, high) if front_face != "high" else (high, low)
        return connectivity_fractions(self.sizes[chosen], front, back)


def chunked_clusters_job(
    encoded, tables: Sequence[np.ndarray], *, max_voxels: int | None = None
) -> Job[list[ChunkedClusters]]:
    """Clusters of ``table[encoded]`` for each grouping table, slab by slab on all cores.

    Parameters
    ----------
    encoded : dask array (Z, Y, X) of uint8 phase indices
    tables : sequence of uint8 arrays
        Each maps a phase index to a cluster value (0 = background): the identity for every
        phase at once, or 1 for the members of a network.
    """
    joiners = [_Joiner() for _ in tables]
    label = partial(_label_row, tables=[np.asarray(t, dtype=np.uint8) for t in tables])
    for number, total, pieces in map_slabs(encoded, label, max_voxels=max_voxels or _ROW_VOXELS):
        for piece, parts in enumerate(pieces):
            first = number == 1 and piece == 0
            last = number == total and piece == len(pieces) - 1
            for joiner, part in zip(joiners, parts, strict=True):
                joiner.add(part, first=first, last=last)
        yield Progress(number, total, f"clusters: slab {number} of {total}")
    return [joiner.clusters() for joiner in joiners]
