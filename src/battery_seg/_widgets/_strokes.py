"""Labels layers that know their phases: names and colours for painting, hovering and training.

A layer made here carries the phase set in ``metadata["phases"]``, the phases' colours as a
direct label colormap and a ``features`` table (``index`` = label value, ``phase`` = name), so
napari's status bar says ``phase: cbd`` under the cursor. ``metadata["battery_seg"]["role"]``
tells strokes (painted by the user) from segmentations, so the Train dock offers strokes first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import BatterySegError
from ..phases import PhaseSet
from ._space import same_space

__all__ = [
    "layer_phases",
    "layer_role",
    "new_strokes_layer",
    "rank_labels_layers",
    "style_phase_layer",
]

STROKES, SEGMENTATION, MASK, PREVIEW = "strokes", "segmentation", "mask", "preview"


def style_phase_layer(layer: Any, phases: PhaseSet) -> None:
    """Give a Labels layer the phases' colours, names (hover) and metadata."""
    layer.colormap = phases.colormap()
    layer.features = {"index": [0, *phases.values], "phase": ["unlabelled", *phases.names]}
    layer.metadata["phases"] = phases.to_dict()


def new_strokes_layer(viewer: Any, image: Any, phases: PhaseSet) -> Any:
    """Add an empty Labels layer over ``image`` to paint strokes of ``phases`` into; it is made
    the active layer, in paint mode, with the first phase selected."""
    data = image.data[0] if image.multiscale else image.data
    shape = tuple(int(s) for s in data.shape)
    layer = viewer.add_labels(
        np.zeros(shape, np.uint8),
        name=f"{image.name} strokes",
        metadata={"battery_seg": {"role": STROKES}},
        translate=tuple(image.translate),
        **same_space(image),
    )
    style_phase_layer(layer, phases)
    viewer.layers.selection.active = layer
    layer.selected_label = phases.values[0]
    layer.brush_size = 5
    layer.mode = "paint"
    return layer


def layer_role(layer: Any) -> str:
    """The role this plugin gave a layer (``"strokes"``, ``"segmentation"``...), ``""`` if none."""
    info = getattr(layer, "metadata", {}).get("battery_seg")
    return str(info.get("role", "")) if isinstance(info, dict) else ""


def rank_labels_layers(layers: list[Any]) -> list[Any]:
    """Labels layers in the order the Train dock offers them, newest first within each rank:
    painted strokes, then other mostly unpainted layers in memory, then other label images
    (ground truth, files), then segmentations and masks."""

    def rank(layer: Any) -> int:
        role = layer_role(layer)
        if role == STROKES or "strokes" in layer.name.lower():
            return 0
        if role in (SEGMENTATION, MASK, PREVIEW):
            return 3
        return 1 if _mostly_unpainted(layer.data) else 2

    return sorted(reversed(layers), key=rank)


def _mostly_unpainted(data: Any) -> bool:
    """Whether an in-memory label array is mostly 0 (a lazy one is a file: not painted here)."""
    if not isinstance(data, np.ndarray) or data.size == 0:
        return False
    step = max(1, round((data.size / 100_000) ** (1 / max(data.ndim, 1))))
    sample = data[(slice(None, None, step),) * data.ndim]
    return np.count_nonzero(sample) < 0.5 * sample.size


def layer_phases(layer: Any) -> PhaseSet | None:
    """The phase set a layer names in ``metadata["phases"]`` (None when it names none)."""
    stored = getattr(layer, "metadata", {}).get("phases") if layer is not None else None
    if isinstance(stored, PhaseSet):
        return stored
    if isinstance(stored, dict):
        try:
            return PhaseSet.from_dict(stored)
        except (KeyError, TypeError, BatterySegError):
            return None
    return None
