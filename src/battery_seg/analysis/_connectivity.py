"""Face-connected clusters of a phase and how they touch the faces of the volume.

Clusters use face connectivity (6 neighbours), the same stencil as TauFactor's finite-difference
solver, so "through-connected" means "can carry a steady flux". :class:`Clusters` holds the
labels of a mask in memory (4 bytes per voxel; needed for the through-connected masks);
``_chunked_clusters`` gives the same fractions out of core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BatterySegError

__all__ = ["Clusters", "Connectivity", "connectivity_fractions", "find_clusters"]


@dataclass(frozen=True)
class Connectivity:
    """Fractions of one phase's voxels, along one axis, by how their cluster touches the faces.

    ``through``: touches both faces (carries flux). ``front``: touches the front (separator)
    face only, dead ends that still take part in a charge. ``back``: touches the back face only.
    ``isolated``: touches neither face. The four add up to 1 (NaN for an absent phase).
    """

    through: float
    front: float
    back: float
    isolated: float

    def to_dict(self) -> dict[str, float]:
        return {
            "through": self.through,
            "front": self.front,
            "back": self.back,
            "isolated": self.isolated,
        }


def connectivity_fractions(sizes: np.ndarray, front: np.ndarray, back: np.ndarray) -> Connectivity:
    """Shares of the voxels in clusters touching the front / back face (boolean per cluster)."""
    total = float(np.sum(sizes))
    if total == 0:
        nan = float("nan")
        return Connectivity(nan, nan, nan, nan)

    def share(selected: np.ndarray) -> float:
        return float(sizes[selected].sum() / total)

    return Connectivity(
        through=share(front & back),
        front=share(front & ~back),
        back=share(back & ~front),
        isolated=share(~front & ~back),
    )


class Clusters:
    """Face-connected clusters of a boolean mask (``scipy.ndimage.label``, 6-neighbour).

    Examples
    --------
    >>> mask = np.zeros((3, 1, 3), dtype=bool)
    >>> mask[:, 0, 0] = True      # a column from the first to the last z slice
    >>> mask[0, 0, 2] = True      # a voxel on the z = 0 face only
    >>> Clusters(mask).connectivity(0).to_dict()
    {'through': 0.75, 'front': 0.25, 'back': 0.0, 'isolated': 0.0}
    """

    def __init__(self, mask: np.ndarray) -> None:
        from scipy import ndimage

        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 3:
            raise BatterySegError(f"A phase mask must be 3D (Z, Y, X), got shape {mask.shape}.")
        structure = ndimage.generate_binary_structure(3, 1)
        self.labels, self.count = ndimage.label(mask, structure=structure)
        self.sizes = np.bincount(self.labels.ravel(), minlength=self.count + 1)
        self.sizes[0] = 0
        self.volume = int(self.sizes.sum())

    def _face_clusters(self, axis: int, high: bool) -> np.ndarray:
        face = np.take(self.labels, -1 if high else 0, axis=axis)
        touching = np.zeros(self.count + 1, dtype=bool)
        touching[np.unique(face)] = True
        touching[0] = False
        return touching

    def touching(self, axis: int, front_face: str = "low") -> tuple[np.ndarray, np.ndarray]:
        """Boolean tables over cluster ids: touching the front face, touching the back face."""
        front = self._face_clusters(axis, high=front_face == "high")
        back = self._face_clusters(axis, high=front_face != "high")
        return front, back

    def connectivity(self, axis: int, front_face: str = "low") -> Connectivity:
        """Through / front-only / back-only / isolated fractions along ``axis``."""
        front, back = self.touching(axis, front_face)
        return connectivity_fractions(self.sizes, front, back)

    def keep(self, axis: int, *, front_connected: bool = False, front_face: str = "low"):
        """Boolean mask of the through-connected (or front-connected) clusters."""
        front, back = self.touching(axis, front_face)
        selected = front if front_connected else front & back
        selected[0] = False
        return selected[self.labels]


def find_clusters(mask: np.ndarray) -> Clusters:
    """Face-connected clusters of ``mask`` (see :class:`Clusters`)."""
    return Clusters(mask)
