"""What the validation IoU on held-back strokes can and cannot say, phase by phase.

Held-back strokes are painted like the training strokes: in the middle of each phase, away from
its boundaries, often on the very slice the model trains on. An IoU of 1.000 on them may only
mean that the painted places are easy. Two checks say when a number means little:

* **few**: fewer than ``MIN_STROKES`` separate held-back strokes or ``MIN_VOXELS`` voxels of the
  phase; one stroke is one place in the image.
* **easy**: a grey-level rule (each held-back voxel takes the phase whose training strokes have
  the nearest median grey value, after a light smoothing) already scores ``EASY_IOU`` or more on
  them: the strokes do not test what a grey threshold cannot do (boundaries, texture, CBD
  against pore).

Each phase gets a short note ("" when its number is informative), shown next to its IoU.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._samples import Crop

__all__ = ["EASY_IOU", "MIN_STROKES", "MIN_VOXELS", "validation_notes"]

MIN_STROKES = 2
MIN_VOXELS = 100
EASY_IOU = 0.95


def validation_notes(crops: list[Crop], names: tuple[str, ...]) -> dict[str, str]:
    """``{phase: note}`` for the held-back strokes of ``crops`` ("" where the IoU is informative).

    Examples
    --------
    >>> image = np.zeros((1, 8, 8), np.float32); image[0, :, 4:] = 1.0
    >>> train = np.zeros((8, 8), np.uint8); train[0, :4], train[0, 4:] = 1, 2
    >>> val = np.zeros((8, 8), np.uint8); val[7, :2], val[7, 6:] = 1, 2
    >>> crop = Crop("v", 0, 0, (0, 0), image, train, val)
    >>> validation_notes([crop], ("pore", "graphite"))["pore"]
    'few held back: 1 stroke, 2 voxels'
    """
    n = len(names)
    voxels, strokes = np.zeros(n, np.int64), np.zeros(n, np.int64)
    train_grey: list[list[np.ndarray]] = [[] for _ in range(n)]
    val_grey, val_truth = [], []
    for crop in crops:
        grey = ndimage.gaussian_filter(crop.image[crop.image.shape[0] // 2], 1.0)
        for k in range(n):
            held = crop.val == k + 1
            voxels[k] += int(held.sum())
            strokes[k] += ndimage.label(held)[1] if held.any() else 0
            train_grey[k].append(grey[crop.train == k + 1])
        painted = crop.val > 0
        val_grey.append(grey[painted])
        val_truth.append(crop.val[painted])
    notes = {}
    easy = _grey_rule_iou(train_grey, np.concatenate(val_grey), np.concatenate(val_truth), n)
    for k, name in enumerate(names):
        if voxels[k] == 0:
            notes[name] = "no strokes held back"
        elif strokes[k] < MIN_STROKES or voxels[k] < MIN_VOXELS:
            s, v = int(strokes[k]), int(voxels[k])
            notes[name] = f"few held back: {s} stroke{'s' * (s != 1)}, {v} voxel{'s' * (v != 1)}"
        elif easy[k] >= EASY_IOU:
            notes[name] = f"easy strokes: a grey threshold scores {easy[k]:.2f} too"
        else:
            notes[name] = ""
    return notes


def _grey_rule_iou(train_grey, grey: np.ndarray, truth: np.ndarray, n: int) -> np.ndarray:
    """Per-phase IoU of the nearest-median grey-level rule on the held-back voxels."""
    medians = np.array(
        [np.median(np.concatenate(g)) if sum(map(len, g)) else np.nan for g in train_grey]
    )
    scores = np.zeros(n)
    if truth.size == 0 or np.isnan(medians).all():
        return scores
    distance = np.abs(grey[:, None] - np.where(np.isnan(medians), np.inf, medians)[None])
    predicted = distance.argmin(axis=1) + 1
    for k in range(n):
        a, b = truth == k + 1, predicted == k + 1
        union = (a | b).sum()
        scores[k] = (a & b).sum() / union if union else 0.0
    return scores
