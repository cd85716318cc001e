"""Simulated painting: thin scribbles inside phase regions, as a user paints in napari.

Used by tests, benchmarks and demos to train from a known ground truth the way a user would:
a few short strokes of every phase (the rare silicon included) on a few slices, kept away from
phase boundaries, covering at most a given fraction of the painted slices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import BatterySegError

__all__ = ["simulate_strokes"]


def simulate_strokes(
    truth: np.ndarray,
    *,
    slices: int | Sequence[int] | Sequence[tuple[int, int]] = 3,
    axis: int = 0,
    fraction: float = 0.01,
    width: int = 1,
    margin: int = 1,
    stroke_length: tuple[int, int] = (8, 40),
    seed: int = 0,
) -> np.ndarray:
    """Paint random strokes of every phase of ``truth`` on a few slices.

    Parameters
    ----------
    truth : ndarray
        Ground-truth labels ``(Z, Y, X)`` or ``(Y, X)``, phases 1..K (0 is never painted).
    slices : int or sequence
        Number of evenly spaced slices along ``axis`` (at most all of them), their indices, or
        ``(axis, index)`` pairs to paint on slices of several axes.
    axis : int
        Axis of the slices when ``slices`` is an int or a list of indices.
    fraction : float
        At most this fraction of each painted slice's voxels is painted, shared equally by the
        phases present on it.
    width : int
        Brush width in pixels (1 = one-pixel lines).
    margin : int
        Pixels kept between a stroke and the phase's boundary where the region allows (a
        phase too thin for it is painted anyway, without margin).
    stroke_length : (int, int)
        Range of a stroke's length in pixels.
    seed : int
        Random seed; the same seed gives the same strokes.

    Returns
    -------
    ndarray
        uint8 painted labels of ``truth``'s shape, 0 = unpainted.

    Examples
    --------
    >>> truth = np.ones((1, 40, 40), np.uint8)
    >>> truth[0, :, 20:] = 2
    >>> painted = simulate_strokes(truth, slices=[0], fraction=0.05, seed=1)
    >>> sorted(np.unique(painted).tolist()), int((painted > 0).sum()) <= 0.05 * 40 * 40
    ([0, 1, 2], True)
    >>> bool(np.all(painted[painted > 0] == truth[painted > 0]))
    True
    """
    squeeze = truth.ndim == 2
    volume = np.asarray(truth)[None] if squeeze else np.asarray(truth)
    if volume.ndim != 3:
        raise BatterySegError(f"truth must be 2D or 3D labels, got shape {truth.shape}.")
    rng = np.random.default_rng(seed)
    painted = np.zeros(volume.shape, np.uint8)
    for plane_axis, index in _plane_list(volume.shape, slices, axis):
        plane = np.take(volume, index, axis=plane_axis)
        budget = int(fraction * plane.size)
        index_tuple = [slice(None)] * 3
        index_tuple[plane_axis] = index
        painted[tuple(index_tuple)] = _paint_plane(plane, budget, width, margin, stroke_length, rng)
    return painted[0] if squeeze else painted


def _paint_plane(plane: np.ndarray, budget: int, width: int, margin: int, stroke_length, rng):
    """Strokes of every phase of one 2D ``plane``, ``budget`` pixels shared equally by them."""
    from scipy import ndimage

    out = np.zeros(plane.shape, np.uint8)
    phases = [int(v) for v in np.unique(plane) if v > 0]
    for value in phases:
        region = plane == value
        inner = (
            ndimage.binary_erosion(region, iterations=margin + width // 2)
            if margin + width // 2
            else region
        )
        _scribble(
            out,
            inner if inner.any() else region,
            value,
            budget // len(phases),
            width,
            stroke_length,
            rng,
        )
    return out


def _plane_list(shape, slices, axis) -> list[tuple[int, int]]:
    if isinstance(slices, (int, np.integer)):
        n = min(int(slices), shape[axis])  # a 2D slice has one plane to paint
        if n < 1:
            raise BatterySegError(f"Number of slices to paint must be at least 1, got {slices}.")
        edges = np.linspace(0, shape[axis], n + 2)[1:-1] if shape[axis] > 1 else np.zeros(1)
        return [(axis, int(i)) for i in edges]
    planes = []
    for item in slices:
        plane_axis, index = (axis, item) if np.ndim(item) == 0 else item
        if not 0 <= int(index) < shape[int(plane_axis)]:
            raise BatterySegError(
                f"Slice {index} is outside axis {plane_axis} of length {shape[int(plane_axis)]}."
            )
        planes.append((int(plane_axis), int(index)))
    return planes


def _scribble(out, region, value, budget, width, stroke_length, rng) -> None:
    """Random smooth walks inside ``region`` until ``budget`` pixels of ``value`` are painted."""
    candidates = np.argwhere(region & (out == 0))
    painted, attempts = 0, 0
    height, wide = out.shape
    radius = (width - 1) // 2
    while painted < budget and attempts < 200 and len(candidates):
        attempts += 1
        position = candidates[rng.integers(len(candidates))].astype(float)
        angle = rng.uniform(0, 2 * np.pi)
        length = int(rng.integers(stroke_length[0], stroke_length[1] + 1))
        for _ in range(length):
            r, c = (int(i) for i in np.rint(position))
            if not (0 <= r < height and 0 <= c < wide and region[r, c]):
                break
            patch = (
                slice(max(r - radius, 0), r + radius + 1),
                slice(max(c - radius, 0), c + radius + 1),
            )
            new = region[patch] & (out[patch] == 0)
            if painted + int(new.sum()) > budget:
                break
            out[patch][new] = value
            painted += int(new.sum())
            angle += rng.normal(0, 0.35)
            position += (np.sin(angle), np.cos(angle))
