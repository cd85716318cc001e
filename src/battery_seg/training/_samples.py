"""Training patches from painted voxels: image crops around the strokes and a balanced sampler.

Each stroke is assigned the axis it was painted on (its thinnest extent), so strokes painted on
z, y or x slices all give in-plane patches with the stroke's own slice at the centre of the
``context`` neighbouring slices. For every painted plane one crop is read around its strokes
(plus a margin, reflect-padded at the volume edge, context slices mirrored at the first and last
slice) and normalised once; patches are then cut from memory. Patch centres are drawn phase by
phase so a rare phase (silicon) is seen as often as the dominant one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BatterySegError
from ..model.normalization import IntensityRange, normalize
from ._painted import PaintedVoxels

__all__ = [
    "Crop",
    "PatchSampler",
    "build_crops",
    "mirror_index",
    "plane_axes",
    "unlabelled_regions",
]


@dataclass(frozen=True)
class Crop:
    """A normalised image crop ``(context, H, W)`` around the strokes of one painted plane."""

    volume: str
    axis: int
    index: int
    origin: tuple[int, int]
    image: np.ndarray
    train: np.ndarray
    val: np.ndarray


def mirror_index(index: np.ndarray, size: int) -> np.ndarray:
    """Reflect indices into ``0..size-1`` like ``numpy.pad(mode="reflect")``.

    Examples
    --------
    >>> mirror_index(np.array([-2, -1, 0, 4, 5]), 5).tolist()
    [2, 1, 0, 4, 3]
    """
    index = np.asarray(index)
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    index = np.abs(index) % period
    return np.where(index >= size, period - index, index)


def plane_axes(painted: PaintedVoxels) -> np.ndarray:
    """The axis each voxel's stroke was painted on: the stroke's thinnest extent."""
    order = np.argsort(painted.stroke, kind="stable")
    ids = painted.stroke[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    coords = painted.coords[order]
    extent = np.maximum.reduceat(coords, starts, axis=0) - np.minimum.reduceat(
        coords, starts, axis=0
    )
    stroke_axis = np.argmin(extent, axis=1)  # ties go to the lower axis (z first)
    axes = np.empty(len(ids), np.int64)
    axes[order] = np.repeat(stroke_axis, np.diff(np.r_[starts, len(ids)]))
    return axes


def build_crops(
    image,
    painted: PaintedVoxels,
    held: np.ndarray,
    intensity: IntensityRange,
    *,
    context: int,
    margin: int,
    min_size: int,
) -> list[Crop]:
    """One crop per painted plane of ``image``, with training and validation label planes."""
    axes = plane_axes(painted)
    crops = []
    for axis in range(3):
        on_axis = axes == axis
        for index in np.unique(painted.coords[on_axis, axis]):
            member = on_axis & (painted.coords[:, axis] == index)
            crops.append(
                _crop(
                    image,
                    painted,
                    member,
                    held,
                    intensity,
                    axis,
                    int(index),
                    context,
                    margin,
                    min_size,
                )
            )
    return crops


def _crop(image, painted, member, held, intensity, axis, index, context, margin, min_size):
    inplane = [a for a in range(3) if a != axis]
    points = painted.coords[member][:, inplane]
    lows, highs = points.min(axis=0) - margin, points.max(axis=0) + 1 + margin
    for d in range(2):  # widen small regions symmetrically to at least min_size
        grow = max(0, min_size - (highs[d] - lows[d]))
        lows[d] -= grow // 2
        highs[d] += grow - grow // 2
    block = _read_plane_stack(image, axis, index, context, lows, highs, painted.shape)
    if not np.isfinite(block).all():
        raise BatterySegError(
            f"{painted.name}: the image holds NaN or infinite voxels near the strokes painted on "
            f"slice {index} of axis {'zyx'[axis]}. Replace them (e.g. with the background grey "
            "value) before training."
        )
    block = normalize(block, intensity)
    train = np.zeros(block.shape[1:], np.uint8)
    val = np.zeros(block.shape[1:], np.uint8)
    local = points - lows
    is_val = held[member]
    values = painted.values[member]
    train[local[~is_val, 0], local[~is_val, 1]] = values[~is_val]
    val[local[is_val, 0], local[is_val, 1]] = values[is_val]
    return Crop(painted.name, axis, index, (int(lows[0]), int(lows[1])), block, train, val)


def _read_plane_stack(image, axis, index, context, lows, highs, shape) -> np.ndarray:
    """``(context, H, W)`` from ``image`` around slice ``index`` of ``axis``, reflect-padded."""
    radius = context // 2
    slices_along = mirror_index(np.arange(index - radius, index + radius + 1), shape[axis])
    first, last = int(slices_along.min()), int(slices_along.max()) + 1
    inplane = [a for a in range(3) if a != axis]
    region = [slice(None)] * 3
    region[axis] = slice(first, last)
    pads = []
    for d, a in enumerate(inplane):
        lo, hi = max(int(lows[d]), 0), min(int(highs[d]), shape[a])
        region[a] = slice(lo, hi)
        pads.append((lo - int(lows[d]), int(highs[d]) - hi))
    block = np.moveaxis(np.asarray(image[tuple(region)]), axis, 0)[slices_along - first]
    if any(p for pair in pads for p in pair):
        block = np.pad(block, [(0, 0), *pads], mode="reflect")
    return block


def unlabelled_regions(
    image,
    shape: tuple[int, int, int],
    axes: list[int],
    intensity: IntensityRange,
    *,
    context: int,
    size: int,
    count: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """``count`` normalised ``(context, h, w)`` regions at random places of ``image``.

    Regions lie on random slices of ``axes`` (the axes the strokes were painted on), are at
    ``size`` wide (reflect-padded in small volumes); they feed unpainted
    patches to the network (batch statistics and consistency training), never the loss of
    painted voxels. NaN / inf voxels are replaced by 0.
    """
    regions = []
    for i in range(count):
        axis = axes[i % len(axes)]
        inplane = [a for a in range(3) if a != axis]
        index = int(rng.integers(shape[axis]))
        lows, highs = np.zeros(2, int), np.zeros(2, int)
        for d, a in enumerate(inplane):
            extent = min(size, shape[a])
            lows[d] = int(rng.integers(shape[a] - extent + 1))
            highs[d] = lows[d] + extent
            grow = size - extent  # small volumes: reflect-pad up to the region size
            lows[d] -= grow // 2
            highs[d] += grow - grow // 2
        block = _read_plane_stack(image, axis, index, context, lows, highs, shape)
        regions.append(np.nan_to_num(normalize(block, intensity), nan=0.0, posinf=0.0, neginf=0.0))
    return regions


class PatchSampler:
    """Draw batches of ``(image, painted labels)`` patches, phase-balanced.

    Each patch is centred (up to a random shift) on a training voxel of a phase drawn uniformly
    among the phases with training voxels.
    """

    def __init__(
        self,
        crops: list[Crop],
        n_phases: int,
        patch_size: int,
        rng: np.random.Generator,
        unlabelled: list[np.ndarray] | None = None,
    ) -> None:
        self.crops = crops
        self.unlabelled = [r for r in (unlabelled or []) if min(r.shape[1:]) >= patch_size]
        self.patch_size = patch_size
        self.rng = rng
        self.by_phase: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for value in range(1, n_phases + 1):
            parts = [(i, *np.nonzero(c.train == value)) for i, c in enumerate(crops)]
            which = np.concatenate([np.full(len(u), i) for i, u, _ in parts])
            if which.size:
                us = np.concatenate([u for _, u, _ in parts])
                vs = np.concatenate([v for _, _, v in parts])
                self.by_phase[value] = (which, us, vs)

    @property
    def phases(self) -> list[int]:
        """Phase values with training voxels."""
        return sorted(self.by_phase)

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` patches: images ``(n, context, P, P)`` float32, labels ``(n, P, P)`` int64."""
        size = self.patch_size
        images, labels = [], []
        values = self.rng.choice(self.phases, size=n)
        for value in values:
            which, us, vs = self.by_phase[int(value)]
            k = self.rng.integers(len(which))
            crop = self.crops[which[k]]
            height, width = crop.train.shape
            shift = self.rng.integers(size // 8, size - size // 8, size=2)
            top = int(np.clip(us[k] - shift[0], 0, height - size))
            left = int(np.clip(vs[k] - shift[1], 0, width - size))
            images.append(crop.image[:, top : top + size, left : left + size])
            labels.append(crop.train[top : top + size, left : left + size])
        return np.stack(images), np.stack(labels).astype(np.int64)

    def sample_unlabelled(self, n: int) -> np.ndarray:
        """``n`` patches ``(n, context, P, P)`` from the unpainted regions (may be empty)."""
        if not self.unlabelled or n == 0:
            return np.zeros(
                (0, *self.crops[0].image.shape[:1], self.patch_size, self.patch_size), np.float32
            )
        size = self.patch_size
        out = []
        for k in self.rng.integers(len(self.unlabelled), size=n):
            region = self.unlabelled[k]
            top = int(self.rng.integers(region.shape[1] - size + 1))
            left = int(self.rng.integers(region.shape[2] - size + 1))
            out.append(region[:, top : top + size, left : left + size])
        return np.stack(out)
