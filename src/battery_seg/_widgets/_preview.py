"""Live preview during training: the model's prediction of the slice on screen, every epoch.

:meth:`SlicePreview.start` returns the ``preview(model, card)`` callable that
:func:`~battery_seg.training.train_job` calls in its worker thread after each epoch; it predicts
only the displayed z slice (and its context neighbours are read), so it costs one slice's worth
of inference. The slice index is read on the Qt thread whenever the dims move and handed over as
a plain integer. :meth:`SlicePreview.show` (Qt thread) puts the result in a one-slice Labels layer
``<image> preview`` at that slice's position, so it appears only on that slice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._space import same_space

__all__ = ["SlicePreview", "displayed_index"]


def displayed_index(viewer: Any, image: Any) -> int:
    """The axis-0 slice of ``image`` (a 3D layer) that the viewer shows."""
    data = image.data[0] if image.multiscale else image.data
    position = image.world_to_data(viewer.dims.point)
    return int(np.clip(round(float(position[-3])), 0, data.shape[0] - 1))


class SlicePreview:
    """The preview of one training run on one image layer."""

    def __init__(self, viewer: Any) -> None:
        self._viewer = viewer
        self.image: Any = None
        self.index = 0
        self.layer: Any = None
        viewer.dims.events.point.connect(self._follow_dims)

    def start(self, image: Any) -> Callable[[Any, Any], dict] | None:
        """The callable for ``train_job(preview=...)``; None for images that are not volumes."""
        data = image.data[0] if image.multiscale else image.data
        if data.ndim != 3:
            return None
        self.image = image
        self._follow_dims()
        intensity: list[Any] = []

        def preview(model: Any, card: Any) -> dict:
            # runs in the training thread: torch is loaded there anyway
            from ..model import estimate_intensity_range
            from ..training import predict_slice

            if not intensity:  # once per run, from a sample of the whole volume
                intensity.append(estimate_intensity_range(data, card.normalization))
            index = self.index
            labels = predict_slice(model, card, data, index, intensity[0])
            return {"slice": index, "labels": labels, "phases": card.phases}

        return preview

    def _follow_dims(self, _event: Any = None) -> None:
        if self.image is not None:
            self.index = displayed_index(self._viewer, self.image)

    def show(self, preview: dict) -> None:
        """Show a ``{"slice", "labels", "phases"}`` preview over its slice of the image."""
        from ._strokes import PREVIEW, style_phase_layer

        index, labels = preview["slice"], preview["labels"]
        image = self.image
        translate = np.asarray(image.translate, dtype=float)[-3:].copy()
        translate[0] += index * float(image.scale[-3])
        name = f"{image.name} preview"
        layer = self._viewer.layers[name] if name in self._viewer.layers else None
        if layer is None:
            layer = self._viewer.add_labels(
                labels[None],
                name=name,
                translate=tuple(translate),
                opacity=0.5,
                metadata={"battery_seg": {"role": PREVIEW, "slice": index}},
                **same_space(image, last=3),
            )
        else:
            layer.data = labels[None]
            layer.translate = tuple(translate)
            layer.metadata["battery_seg"]["slice"] = index
        self.layer = layer
        style_phase_layer(layer, preview["phases"])
