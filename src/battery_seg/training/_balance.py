"""Phase fractions after fine-tuning: undo the equal-phases prior that strokes teach.

A user paints about as much of every phase, and the patch sampler and the loss weights balance
the phases further, so a network trained on strokes learns that every phase is equally common.
Where two phases look alike (CBD and pore in X-ray CT) the boundary between them then moves into
the common one: on a real NMC geometry under imaging no model saw, fine-tuning from 1 % strokes
moved 10 points of pore into CBD (pore fraction 0.35 for a truth of 0.45, the start model's 0.43).

When the start model knows the data (its ``trust`` on the strokes, see
:mod:`battery_seg.training._transfer`, at least ``MIN_TRUST``, and at least ``MIN_RECALL`` of
every phase's strokes labelled right), its phase fractions are the better estimate. (Not its
fractions corrected by its confusion on the strokes, black-box shift estimation: strokes keep
away from phase boundaries, and on that NMC case the correction gave the strokes' 0.35 again.)
A user who paints to correct a start model that misses a phase lowers its recall on that phase,
which turns matching off. After
training, the output layer's biases are shifted so that the trained network predicts the start
model's fractions on a survey of the training images: a constant per-phase offset of the
logits, so what the strokes taught about *where* each phase is stays and only the balance
between look-alike phases moves. The shift is stored in the model's weights, so segmentation,
export and later fine-tuning all see it, and the provenance records it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..model import UNet
from ._predict import predict_planes

__all__ = [
    "MIN_RECALL",
    "MIN_TRUST",
    "fraction_shift",
    "match_fractions",
    "predicted_fractions",
    "shift_to",
]

MIN_TRUST = 0.5  # a start model below this trust on the strokes is not a judge of fractions
MIN_RECALL = 0.5  # nor one that labels less than half of some phase's strokes right
_STEPS = 60


def predicted_fractions(log_p: np.ndarray, shift: np.ndarray | None = None) -> np.ndarray:
    """Fraction of voxels whose most probable phase is each phase; ``log_p`` is ``(N, K, ...)``.

    Examples
    --------
    >>> log_p = np.log(np.array([[[0.6, 0.2], [0.4, 0.8]]]))  # 1 image, 2 phases, 2 voxels
    >>> predicted_fractions(log_p).tolist()
    [0.5, 0.5]
    >>> predicted_fractions(log_p, np.array([2.0, 0.0])).tolist()
    [1.0, 0.0]
    """
    n = log_p.shape[1]
    scores = log_p if shift is None else log_p + shift.reshape((1, n) + (1,) * (log_p.ndim - 2))
    labels = scores.argmax(axis=1)
    return np.bincount(labels.ravel(), minlength=n) / labels.size


def fraction_shift(log_p: np.ndarray, target: np.ndarray, steps: int = _STEPS) -> np.ndarray:
    """Per-phase logit offsets (summing to 0) after which ``log_p`` predicts ``target``'s fractions.

    A damped fixed-point iteration on the log ratio of target and predicted fractions; phases
    whose target is 0 are left alone (no offset can be solved for them).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> log_p = np.log(rng.dirichlet([1, 1, 1], size=20_000).T[None])  # about 1/3 each
    >>> shift = fraction_shift(log_p, np.array([0.5, 0.3, 0.2]))
    >>> np.round(predicted_fractions(log_p, shift), 2).tolist()
    [0.5, 0.3, 0.2]
    """
    target = np.asarray(target, np.float64)
    active = target > 0
    shift = np.zeros(log_p.shape[1], np.float32)
    for _ in range(steps):
        now = predicted_fractions(log_p, shift)
        step = 0.5 * (np.log(target + 1e-4) - np.log(now + 1e-4))
        shift[active] += step[active].astype(np.float32)
        shift[active] -= shift[active].mean()
    return shift


def match_fractions(model: UNet, survey: list[np.ndarray], target: np.ndarray) -> dict:
    """Shift ``model``'s output biases (in place) so that it predicts ``target`` on ``survey``.

    ``survey`` holds normalised ``(context, h, w)`` regions of the training images. Returns what
    was done, for the provenance: the fractions before and after and the offsets.
    """
    shift, report = shift_to(survey_log_probabilities(model, survey), target)
    with torch.no_grad():
        model.head.bias += torch.as_tensor(shift, dtype=model.head.bias.dtype)
    return report


def shift_to(log_p: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, dict]:
    """:func:`fraction_shift` of ``log_p`` to ``target``, and what it does, for the provenance:
    the fractions before and after and the offsets."""
    shift = fraction_shift(log_p, target)
    return shift, {
        "target": np.round(target, 4).tolist(),
        "before": np.round(predicted_fractions(log_p), 4).tolist(),
        "after": np.round(predicted_fractions(log_p, shift), 4).tolist(),
        "shift": np.round(shift, 4).tolist(),
    }


def survey_log_probabilities(model: UNet, survey: list[np.ndarray]) -> np.ndarray:
    """``(N, K, h*w)`` log probabilities of every survey region (regions may differ in size)."""
    device = next(model.parameters()).device
    out = [
        predict_planes(model, region[None], device=device).reshape(1, model.config.n_phases, -1)
        for region in survey
    ]
    return np.log(np.concatenate(out, axis=2) + 1e-6)
