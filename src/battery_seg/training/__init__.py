"""Train a U-Net from sparse painted strokes (or fine-tune one) and keep the best checkpoint.

The user paints a few strokes of each phase on a few slices (0 = unpainted); :func:`train_job`
samples phase-balanced patches around the painted voxels, augments them, optimises BCE + soft
Dice over the painted voxels only, validates on held-back whole strokes every epoch, and saves
the best model atomically on every improvement.

``TrainConfig``, ``TrainingPair`` and ``simulate_strokes`` import without torch; the rest loads
torch on first use.

Examples
--------
>>> from battery_seg.phantom import make_sample
>>> from battery_seg.training import TrainConfig, simulate_strokes, train
>>> sample = make_sample((16, 64, 64), seed=0)
>>> painted = simulate_strokes(sample.labels, slices=[8], fraction=0.05, seed=0)
>>> config = TrainConfig(phases="si-graphite", epochs=1, steps_per_epoch=2,
...                      base_channels=4, depth=2, patch_size=32, batch_size=2)
>>> result = train([(sample.image, painted, "phantom")], config)
>>> result.card.phases.names
('pore', 'silicon', 'cbd', 'graphite')
"""

from __future__ import annotations

import importlib
from typing import Any

from ._config import CONTEXTS, LiveConfig, TrainConfig, TrainingPair
from ._strokes import simulate_strokes

__all__ = [
    "CONTEXTS",
    "LiveConfig",
    "LiveModel",
    "TrainConfig",
    "TrainResult",
    "TrainingPair",
    "live_fit",
    "live_job",
    "painted_loss",
    "predict_slice",
    "predict_volume",
    "simulate_strokes",
    "suggest_slices",
    "train",
    "train_job",
    "uncertainty",
]

_LAZY = {
    "TrainResult": "._train",
    "train": "._train",
    "train_job": "._train",
    "painted_loss": "._loss",
    "predict_slice": "._predict",
    "predict_volume": "._predict",
    "LiveModel": "._live",
    "live_fit": "._live",
    "live_job": "._live",
    "uncertainty": "._live",
    "suggest_slices": "._suggest",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
