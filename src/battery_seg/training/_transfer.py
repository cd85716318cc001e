"""Start a fine-tuning run from what the start model already predicts on the user's strokes.

A start model trained on other phases (the Si-graphite bundled models for an NMC cathode, say)
keeps its learnt features, and its output layer is re-used rather than started at random: each
of the user's phases takes the output row of the start model's phase of the same name, or else
of the start model's phase that it predicts most often on that phase's training strokes (NMC
strokes look like graphite to the Si-graphite model). The network then starts from the start
model's own predictions, relabelled, and only has to learn what differs.

How far the start model agrees with the strokes also says how much of it to keep away from
them (learning without forgetting, ``TrainConfig.retain_weight``): a start model that labels the
painted voxels right is a good teacher for the unpainted ones; one that does not is no teacher.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..model import UNet
from ..phases import PhaseSet
from ._predict import predict_planes
from ._samples import Crop

__all__ = ["Agreement", "head_rows", "map_head", "stroke_agreement"]

_MAX_PIXELS = 400_000  # crop pixels predicted to judge the start model (per run)
_NO_TRUST, _FULL_TRUST = 0.5, 0.9  # balanced stroke accuracy -> retain nothing .. everything


@dataclass(frozen=True)
class Agreement:
    """How the start model's predictions relate to the user's training strokes.

    ``counts[k, j]``: training voxels painted as the user's phase ``k`` that the start model
    predicts as its own phase ``j``.
    """

    counts: np.ndarray

    def recall(self, rows: list[int | None]) -> list[float | None]:
        """Per phase, the share of its strokes that the start model relabelled by ``rows`` labels
        right (None: no strokes).

        ``rows[k]`` is the start model's phase that stands for the user's phase ``k``. When
        several phases share one, only the first is ever predicted (the start model cannot tell
        them apart), so the others score 0.
        """
        painted = self.counts.sum(axis=1)
        scores: list[float | None] = []
        seen: set[int | None] = set()
        for k, j in enumerate(rows):
            right = self.counts[k, j] if j is not None and j not in seen else 0
            seen.add(j)
            scores.append(float(right / painted[k]) if painted[k] else None)
        return scores

    def accuracy(self, rows: list[int | None]) -> float:
        """Balanced accuracy on the strokes: the mean recall of the painted phases."""
        scores = [r for r in self.recall(rows) if r is not None]
        return float(np.mean(scores)) if scores else 0.0

    def trust(self, rows: list[int | None]) -> float:
        """0 (ignore the start model away from the strokes) .. 1 (keep it fully)."""
        accuracy = self.accuracy(rows)
        return float(np.clip((accuracy - _NO_TRUST) / (_FULL_TRUST - _NO_TRUST), 0.0, 1.0))


def stroke_agreement(
    model: UNet, crops: list[Crop], n_phases: int, *, device: torch.device | str = "cpu"
) -> Agreement:
    """Count the start model's predictions on the training strokes of ``crops``."""
    n_model = model.config.n_phases
    counts = np.zeros((n_phases, n_model), np.int64)
    budget = _MAX_PIXELS
    for crop in crops:
        rows, cols = np.nonzero(crop.train)
        if rows.size == 0 or budget <= 0:
            continue
        top, bottom = rows.min(), rows.max() + 1
        left, right = cols.min(), cols.max() + 1
        window = (slice(top, bottom), slice(left, right))
        budget -= (bottom - top) * (right - left)
        probability = predict_planes(model, crop.image[(None, slice(None), *window)], device=device)
        predicted = probability[0].argmax(axis=0)
        painted = crop.train[window]
        mask = painted > 0
        np.add.at(counts, (painted[mask].astype(np.int64) - 1, predicted[mask]), 1)
    return Agreement(counts)


def head_rows(start_phases: PhaseSet, phases: PhaseSet, agreement: Agreement) -> list[int | None]:
    """For each of ``phases``, the start model's phase whose output row it takes (or None)."""
    old_names = [n.lower() for n in start_phases.names]
    rows: list[int | None] = []
    for k, name in enumerate(phases.names):
        if name.lower() in old_names:
            rows.append(old_names.index(name.lower()))
        elif agreement.counts[k].sum() > 0:
            rows.append(int(np.argmax(agreement.counts[k])))
        else:
            rows.append(None)
    return rows


def map_head(model: UNet, n_phases: int, rows: list[int | None]) -> UNet:
    """``model`` with an output layer of ``n_phases`` rows copied from its own by ``rows``.

    Phases without a row (None) get a fresh initialisation; everything else is the same.
    """
    fresh = UNet(replace(model.config, n_phases=n_phases))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    head = fresh.head.state_dict()
    with torch.no_grad():
        for k, j in enumerate(rows):
            if j is not None:
                head["weight"][k] = model.head.weight[j]
                head["bias"][k] = model.head.bias[j]
    state.update({f"head.{key}": value for key, value in head.items()})
    fresh.load_state_dict(state)
    return fresh
