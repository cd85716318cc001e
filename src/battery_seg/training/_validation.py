"""Stroke-wise validation: hold back whole strokes, score per-phase IoU on them.

Neighbouring voxels of one stroke are nearly copies of each other, so validating on random
painted voxels would only measure memorisation. Whole strokes (connected painted regions of one
phase) are held back instead. A phase painted as a single stroke cannot give one away; its stroke
is cut along its longest extent and the far end is held back.
"""

from __future__ import annotations

import numpy as np

__all__ = ["confusion", "iou_from_confusion", "split_strokes"]


def split_strokes(
    values: np.ndarray,
    stroke: np.ndarray,
    coords: np.ndarray,
    fraction: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Boolean mask of the voxels held back for validation.

    For each phase, whole strokes are drawn at random until about ``fraction`` of its painted
    voxels are held back, always keeping at least one stroke for training.

    Examples
    --------
    >>> values = np.array([1, 1, 1, 1, 2, 2])
    >>> stroke = np.array([0, 0, 1, 1, 2, 3])
    >>> coords = np.zeros((6, 3), int)
    >>> held = split_strokes(values, stroke, coords, 0.5, np.random.default_rng(0))
    >>> int(held[:4].sum()), int(held[4:].sum())
    (2, 1)
    """
    held = np.zeros(len(values), bool)
    if fraction <= 0:
        return held
    for value in np.unique(values):
        in_phase = values == value
        ids, sizes = np.unique(stroke[in_phase], return_counts=True)
        chosen = _choose_strokes(sizes, fraction, rng)
        if chosen.size:
            held |= in_phase & np.isin(stroke, ids[chosen])
        elif in_phase.sum() >= 4:
            held |= _cut_tail(coords, in_phase & (stroke == ids[np.argmax(sizes)]), fraction)
    return held


def _choose_strokes(sizes: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of strokes to hold back: about ``fraction`` of the voxels, never all strokes."""
    if len(sizes) < 2:
        return np.zeros(0, int)
    total = sizes.sum()
    target = fraction * total
    chosen, held = [], 0
    for i in rng.permutation(len(sizes)):
        if len(chosen) == len(sizes) - 1:
            break
        if held + sizes[i] <= 1.5 * target:
            chosen.append(i)
            held += sizes[i]
        if held >= target:
            break
    if not chosen:
        smallest = int(np.argmin(sizes))
        if sizes[smallest] <= 0.5 * total:
            chosen.append(smallest)
    return np.array(chosen, int)


def _cut_tail(coords: np.ndarray, member: np.ndarray, fraction: float) -> np.ndarray:
    """Mask of the far end (``fraction`` of its voxels) of one stroke, along its longest extent."""
    points = coords[member]
    axis = int(np.argmax(points.max(axis=0) - points.min(axis=0)))
    along = points[:, axis]
    cut = np.quantile(along, 1 - fraction)
    tail = np.zeros(len(coords), bool)
    tail[np.flatnonzero(member)[along > cut]] = True
    return tail


def confusion(truth: np.ndarray, predicted: np.ndarray, n_phases: int) -> np.ndarray:
    """``(K, K)`` counts of painted ``truth`` value i+1 predicted as j+1 (0 in truth ignored)."""
    painted = truth > 0
    index = (truth[painted].astype(np.int64) - 1) * n_phases + (predicted[painted] - 1)
    return np.bincount(index, minlength=n_phases * n_phases).reshape(n_phases, n_phases)


def iou_from_confusion(matrix: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """Per-phase IoU for phases with validation voxels (others are left out).

    Examples
    --------
    >>> iou_from_confusion(np.array([[3, 1], [0, 4]]), ("pore", "cbd"))
    {'pore': 0.75, 'cbd': 0.8}
    """
    scores = {}
    for k, name in enumerate(names):
        truth = matrix[k].sum()
        if truth == 0:
            continue
        union = truth + matrix[:, k].sum() - matrix[k, k]
        scores[name] = float(matrix[k, k] / union)
    return scores
