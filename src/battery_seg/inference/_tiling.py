"""Seamless 2D tiling of a stack of planes: a global tile grid and Gaussian blending.

The network sees square-ish tiles of a plane; overlapping tiles are blended with a Gaussian
importance map (MONAI ``mode="gaussian"``, ``sigma_scale=0.125``, weights clamped below at
``max(min, 1e-3)``). Tiles lie on one *global* grid per in-plane axis (MONAI's scan: start
``i * stride``, the last tile shifted to end at the image edge), never relative to a block, so a
block of planes that reads the union of the tiles touching it computes exactly the values a single
pass over the whole plane would: the same tiles, the same inputs, accumulated in the same order.

An axis no longer than the tile gets a single tile of the smallest allowed size (a multiple of
``2**depth``) covering it; the missing pixels are filled by mirror (``reflect``) padding.

With no tile size given (``tile=None``, the default) :func:`plan_axis_auto` covers each axis with
the fewest tiles of at most :data:`MAX_AUTO_TILE` pixels, evenly spaced and overlapping by at
least :data:`AUTO_MARGIN` pixels: a plane up to 1152 pixels wide is one tile (nothing computed
twice); a 2048-wide plane is two tiles of 1056. A plane covered by one tile needs no blending.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "AUTO_MARGIN",
    "MAX_AUTO_TILE",
    "NUMPY",
    "ArrayOps",
    "AxisGrid",
    "blend_planes",
    "gaussian_importance_map",
    "plan_axis",
    "plan_axis_auto",
]

MAX_AUTO_TILE = 1152
"""Largest automatic tile side (pixels): one tile of the default model then needs ~0.4 GB."""
AUTO_MARGIN = 64
"""Least overlap (pixels) of automatic tiles: their borders fall in the Gaussian's low tail."""

Predict = Callable[[np.ndarray], np.ndarray]
"""(N, context, H, W) float32 tiles -> (N, K, H, W) float32 per-phase probabilities."""


@dataclass(frozen=True)
class AxisGrid:
    """Tile positions along one in-plane axis of length ``length``."""

    length: int
    tile: int
    starts: tuple[int, ...]

    @property
    def padded_length(self) -> int:
        """Length after mirror padding (longer than ``length`` only for a single short tile)."""
        return max(self.length, self.tile)

    def window(self, lo: int, hi: int) -> tuple[tuple[int, ...], int, int]:
        """Starts of the tiles touching ``[lo, hi)`` and the extent ``[u0, u1)`` they cover."""
        starts = tuple(s for s in self.starts if s < hi and s + self.tile > lo)
        return starts, starts[0], starts[-1] + self.tile


def plan_axis(length: int, tile: int, overlap: float, multiple: int) -> AxisGrid:
    """Global tile grid along one axis.

    Examples
    --------
    >>> plan_axis(300, 128, 0.25, 16).starts
    (0, 96, 172)
    >>> plan_axis(53, 128, 0.25, 16)  # shorter than a tile: one 64-pixel tile, padded
    AxisGrid(length=53, tile=64, starts=(0,))
    """
    if length <= tile:
        return AxisGrid(length, max(multiple, math.ceil(length / multiple) * multiple), (0,))
    stride = max(1, int(tile * (1 - overlap)))  # MONAI's scan interval
    starts = []
    for i in range(math.ceil(length / stride)):
        starts.append(min(i * stride, length - tile))
        if i * stride + tile >= length:
            break
    return AxisGrid(length, tile, tuple(starts))


def plan_axis_auto(
    length: int, multiple: int, max_tile: int | None = None, margin: int | None = None
) -> AxisGrid:
    """The fewest evenly spaced tiles of at most ``max_tile`` pixels covering the axis.

    Examples
    --------
    >>> plan_axis_auto(512, 16)  # one tile: the whole axis
    AxisGrid(length=512, tile=512, starts=(0,))
    >>> plan_axis_auto(2048, 16)  # two tiles overlapping by 64 pixels
    AxisGrid(length=2048, tile=1056, starts=(0, 992))
    """
    max_tile, margin = max_tile or MAX_AUTO_TILE, margin or AUTO_MARGIN
    if length <= max_tile:
        return plan_axis(length, max_tile, 0.0, multiple)
    count = math.ceil((length - margin) / (max_tile - margin))
    tile = math.ceil(math.ceil((length + (count - 1) * margin) / count) / multiple) * multiple
    starts = tuple(round(i * (length - tile) / (count - 1)) for i in range(count))
    return AxisGrid(length, tile, starts)


@lru_cache(maxsize=16)
def gaussian_importance_map(shape: tuple[int, int], sigma_scale: float = 0.125) -> np.ndarray:
    """Gaussian tile weights as MONAI's ``compute_importance_map(mode="gaussian")`` (float32)."""
    profiles = []
    for size in shape:
        x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
        sigma = size * sigma_scale
        profiles.append(np.exp(x**2 / (-2.0 * sigma**2)))
    weights = np.multiply.outer(*profiles).astype(np.float32)
    np.maximum(weights, max(float(weights.min()), 1e-3), out=weights)
    weights.setflags(write=False)
    return weights


@dataclass(frozen=True)
class ArrayOps:
    """The few array functions blending needs, for NumPy arrays or tensors on a device."""

    zeros: Callable[[tuple[int, ...], Any], Any]  # (shape, like) -> float32 zeros near `like`
    stack: Callable[[list], Any]
    concatenate: Callable[[list], Any]
    from_numpy: Callable[[np.ndarray, Any], Any]  # host array -> array near `like`


NUMPY = ArrayOps(
    zeros=lambda shape, like: np.zeros(shape, np.float32),
    stack=np.stack,
    concatenate=np.concatenate,
    from_numpy=lambda array, like: array,
)


def blend_planes(
    stack: Any,
    context: int,
    grids: tuple[AxisGrid, AxisGrid],
    region: tuple[tuple[int, int], tuple[int, int]],
    predict: Predict,
    n_phases: int,
    batch_size: int = 4,
    max_bytes: int = 32 * 2**20,
    ops: ArrayOps = NUMPY,
) -> Iterator[tuple[int, Any]]:
    """Blended per-phase probabilities of the planes in ``stack``, a few planes at a time.

    Parameters
    ----------
    stack
        ``(P + context - 1, H, W)`` normalised float32 planes; output plane ``j`` is predicted
        from ``stack[j:j + context]``. In-plane it covers exactly the tile window of ``region``
        (see :meth:`AxisGrid.window`), in padded coordinates.
    context
        Number of neighbouring planes the network sees (input channels).
    grids
        Global tile grids of the two in-plane axes.
    region
        ``((y0, y1), (x0, x1))``: the output region, in image coordinates.
    predict
        The network: ``(N, context, th, tw)`` tiles to ``(N, K, th, tw)`` probabilities.
    n_phases
        ``K``, the number of output channels of ``predict``.
    batch_size
        Tiles per call of ``predict``.
    max_bytes
        Rough cap on the accumulator memory of one group of planes.
    ops
        NumPy (the default), or torch functions for a ``stack`` on a device (see
        :mod:`._device`): the same operations in the same order either way.

    Yields
    ------
    first_plane, probabilities
        Index of the first plane of a group and its ``(g, K, y1 - y0, x1 - x0)`` probabilities.

    Notes
    -----
    A window of one tile is not blended: its probabilities are the network's, unweighted.
    """
    tiles, (th, tw), weights, weight_sum, crop = _layout(stack, grids, region, ops)
    window = tuple(stack.shape[1:])
    n_planes = stack.shape[0] - context + 1
    plane_bytes = 4 * n_phases * window[0] * window[1]
    group = max(1, -(-batch_size // len(tiles)), max_bytes // plane_bytes)
    for first in range(0, n_planes, group):
        count = min(group, n_planes - first)
        work = [(j, oy, ox) for j in range(count) for oy, ox in tiles]
        parts, accumulator = [], None
        for b in range(0, len(work), batch_size):
            batch = work[b : b + batch_size]
            inputs = ops.stack(
                [
                    stack[first + j : first + j + context, oy : oy + th, ox : ox + tw]
                    for j, oy, ox in batch
                ]
            )
            probabilities = predict(inputs)  # (N, K, th, tw)
            if len(tiles) == 1:  # the tile is the window: nothing to blend
                parts.append(probabilities[(Ellipsis, *crop)])
                continue
            if accumulator is None:
                accumulator = ops.zeros((count, n_phases, *window), stack)
            for (j, oy, ox), p in zip(batch, probabilities, strict=True):
                accumulator[j, :, oy : oy + th, ox : ox + tw] += p * weights
        if accumulator is None:
            yield first, parts[0] if len(parts) == 1 else ops.concatenate(parts)
        else:
            yield first, accumulator[(Ellipsis, *crop)] / weight_sum[crop]


class _Layout(NamedTuple):
    """Where the tiles of a window lie (offsets in the window), their size, their Gaussian
    weights and the sum of those over the window, and the output region in the window."""

    tiles: list[tuple[int, int]]
    tile: tuple[int, int]
    weights: Any
    weight_sum: Any
    crop: tuple[slice, slice]


def _layout(stack: Any, grids: tuple[AxisGrid, AxisGrid], region, ops: ArrayOps) -> _Layout:
    (y0, y1), (x0, x1) = region
    ty, uy0, uy1 = grids[0].window(y0, y1)
    tx, ux0, ux1 = grids[1].window(x0, x1)
    th, tw = grids[0].tile, grids[1].tile
    if tuple(stack.shape[1:]) != (uy1 - uy0, ux1 - ux0):
        raise ValueError(f"stack covers {stack.shape[1:]}, tile window is {(uy1 - uy0, ux1 - ux0)}")
    weights = ops.from_numpy(gaussian_importance_map((th, tw)), stack)
    tiles = [(sy - uy0, sx - ux0) for sy in ty for sx in tx]  # global order: y-major, then x
    weight_sum = ops.zeros((uy1 - uy0, ux1 - ux0), stack)
    for oy, ox in tiles:
        weight_sum[oy : oy + th, ox : ox + tw] += weights
    crop = (slice(y0 - uy0, y1 - uy0), slice(x0 - ux0, x1 - ux0))
    return _Layout(tiles, (th, tw), weights, weight_sum, crop)
