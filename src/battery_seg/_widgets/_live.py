"""The Train dock's Live mode: refit the live classifier after every stroke, show the slice.

When **Live** is on, every finished stroke (napari's ``paint`` event of a strokes layer) and
every move to another slice starts an update in a worker thread: :func:`~battery_seg.training.
live_job` (features of the painted slices are cached, so a refit takes a fraction of a second),
then the displayed slice's prediction and uncertainty, then the slices to paint next. A newer
stroke quits the running update at its next step and runs once it has stopped (one update at a
time: the feature cache is not shared between threads).

Every image / strokes pair of the dock takes part: one classifier is fitted to the strokes of
all of them (each image normalised with its own grey-value range), each visible image shows its
displayed slice's prediction, and "paint next" ranks the slices of all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, PushButton
from napari.qt.threading import create_worker

from ..errors import BatterySegError
from ..jobs import Progress
from ._preview import displayed_index

__all__ = ["LiveSection"]

UNCERTAINTY = "live uncertainty"  # the role of the uncertainty layers in their metadata

_READS = {  # what the live head reads, for the status line
    "network": "reads the start model's features",
    "filters": "reads filter features; the start model does not know this imaging",
}


class LiveSection(Container):
    """Live switch, uncertainty overlay, "paint next" list and "Apply to volume".

    ``settings()`` (Qt thread) returns ``([(image layer, strokes layer), ...], LiveConfig)`` or
    raises :class:`BatterySegError`; ``apply(live)`` saves the live model and opens Segment with
    it.
    """

    def __init__(self, viewer: Any, settings: Callable, apply: Callable) -> None:
        self.live_box = CheckBox(
            text="Live: refit after every stroke",
            value=False,
            tooltip="Fit a small classifier on the start model's features to the strokes after "
            "every stroke (seconds) and show the displayed slice's prediction.",
        )
        self.overlay = CheckBox(text="show uncertainty", value=True)
        self.paint_next = ComboBox(label="paint next", choices=[])
        self.go = PushButton(text="Go", tooltip="Show the chosen slice, to paint on it")
        self.apply_button = PushButton(text="Apply to volume", enabled=False)
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        lines = self.status.native.fontMetrics().lineSpacing()
        self.status.native.setMinimumHeight(3 * lines + 4)  # the status is up to three lines
        self.go.native.setMaximumWidth(60)
        self.paint_next.tooltip = "The most uncertain slices first, with their mean uncertainty"
        row = Container(widgets=[self.paint_next, self.go], layout="horizontal")
        row.margins = (0, 0, 0, 0)
        super().__init__(
            widgets=[self.live_box, self.overlay, row, self.apply_button, self.status],
            labels=False,
        )
        self._viewer, self._settings, self._apply = viewer, settings, apply
        self.live: Any = None  # the last fitted LiveModel
        self.worker: Any = None
        self._pending = ""  # what to run once the current update ends: refit or slice
        self._bank: Any = None
        self._strokes: list = []  # the strokes layers whose paint events refit
        self.live_box.changed.connect(self._on_switch)
        self.overlay.changed.connect(self._on_overlay)
        self.go.changed.connect(self.go_to_suggestion)
        self.apply_button.changed.connect(lambda: self._apply(self.live))
        viewer.dims.events.current_step.connect(self._on_slice)

    # -- switching and events -----------------------------------------------------------------
    def _listen(self, layers: list) -> None:
        """Refit after a paint event of exactly these strokes layers."""
        for strokes in self._strokes:
            if not any(strokes is layer for layer in layers):
                strokes.events.paint.disconnect(self.update)
        for layer in layers:
            if not any(layer is strokes for strokes in self._strokes):
                layer.events.paint.connect(self.update)
        self._strokes = list(layers)

    def _on_switch(self, on: bool) -> None:
        self._listen([])
        if not on:
            return
        try:
            pairs, _ = self._settings()
        except BatterySegError as exc:
            self.status.value = f"Error: {exc}"
            self.live_box.value = False
            return
        self._listen([strokes for _, strokes in pairs])
        if any(np.asarray(strokes.data).any() for strokes in self._strokes):
            self.update()
        else:
            self.status.value = "Paint a stroke of every phase; the slice updates after each."

    def _on_overlay(self, on: bool) -> None:
        """Show or hide every uncertainty layer this section made, at once."""
        from ._strokes import layer_role

        for layer in self._viewer.layers:
            if layer_role(layer) == UNCERTAINTY:
                layer.visible = bool(on)

    def _on_slice(self, _event: Any = None) -> None:
        if self.live_box.value and self.live is not None:
            self.update(refit=False)

    def update(self, _event: Any = None, refit: bool = True) -> None:
        """Refit (or only predict, ``refit=False``) and repaint the displayed slice, superseding
        an update still running."""
        if self.worker is not None:  # a stroke quits it; a slice move waits for it
            if refit:
                self._pending = "refit"
                self.worker.quit()
            elif not self._pending:
                self._pending = "slice"
            return
        try:
            pairs, config = self._settings()
        except BatterySegError as exc:
            self.status.value = f"Error: {exc}"
            return
        self._listen([strokes for _, strokes in pairs])  # pairs added or changed since
        images = [image.data[0] if image.multiscale else image.data for image, _ in pairs]
        shown = [k for k, (image, _) in enumerate(pairs) if image.visible] or [0]
        indices = {
            k: displayed_index(self._viewer, pairs[k][0]) if images[k].ndim == 3 else 0
            for k in shown
        }
        job = _update_job(
            images,
            [strokes.data for _, strokes in pairs],
            indices,
            config,
            self._bank,
            self.live,
            refit,
            [image.name for image, _ in pairs],
        )
        started = time.perf_counter()
        worker = create_worker(lambda: (yield from job), _start_thread=False)
        worker.yielded.connect(lambda event: self._on_progress(event, pairs, started))
        worker.returned.connect(lambda found: self._on_suggestions(found, pairs))
        worker.errored.connect(lambda exc: setattr(self.status, "value", f"Error: {exc}"))
        worker.finished.connect(self._on_finished)
        self.worker = worker
        worker.start()

    def _on_finished(self) -> None:
        self.worker = None
        pending, self._pending = self._pending, ""
        if pending and self.live_box.value:
            self.update(refit=pending == "refit")

    # -- showing results ----------------------------------------------------------------------
    def _on_progress(self, event: Progress, pairs: list, started: float) -> None:
        shown = event.data.get("shown") if isinstance(event, Progress) else None
        if shown is None:
            return
        self.live, self._bank = shown["live"], shown["live"].bank
        self.apply_button.enabled = True
        image = pairs[shown["image"]][0]
        self.show_slice(image, shown)
        where = f" of {image.name}" if len(pairs) > 1 else ""
        self.status.value = (
            f"Slice {shown['slice']}{where} updated {time.perf_counter() - started:.2f} s after "
            f"the stroke ({self.live.painted_voxels} painted voxels; "
            f"{_READS.get(self.live.features, self.live.features)})."
        )

    def show_slice(self, image: Any, shown: dict) -> None:
        """The prediction (Labels ``<image> live``) and uncertainty (``<image> uncertainty``)
        of one slice, placed over that slice of ``image``."""
        from ._strokes import PREVIEW, style_phase_layer

        active = self._viewer.layers.selection.active  # the strokes layer: painting goes on
        labels = _place(self._viewer, image, "live", shown["labels"], shown["slice"], "labels")
        labels.metadata["battery_seg"] = {"role": PREVIEW, "slice": shown["slice"]}
        if labels.metadata.get("phases") != self.live.card.phases.to_dict():  # costly: once
            style_phase_layer(labels, self.live.card.phases)
        doubt = _place(
            self._viewer, image, "uncertainty", shown["uncertainty"], shown["slice"], "image"
        )
        doubt.metadata["battery_seg"] = {"role": UNCERTAINTY, "slice": shown["slice"]}
        if doubt.visible != bool(self.overlay.value):  # setting it redraws, even unchanged
            doubt.visible = bool(self.overlay.value)
        if active is not None and active in self._viewer.layers:
            self._viewer.layers.selection.active = active

    def _on_suggestions(self, suggestions: list | None, pairs: list) -> None:
        """Fill "paint next" with ``(image number, Suggestion)`` pairs; each choice's value is
        ``(image layer, slice)`` (the image named when the dock has several)."""
        if suggestions is None:  # only the slice changed: the list stays
            return
        choices = []
        for k, s in suggestions:
            image = pairs[k][0]
            where = f"{image.name}, " if len(pairs) > 1 else ""
            painted = " (painted)" if s.painted else ""
            choices.append(
                (f"{where}slice {s.index}: {s.uncertainty:.2f}{painted}", (image, s.index))
            )
        self.paint_next.choices = choices
        if choices:
            self.paint_next.value = choices[0][1]

    def go_to_suggestion(self) -> None:
        """Move the viewer to the chosen "paint next" slice (showing its image, with its strokes
        layer selected for painting)."""
        chosen = self.paint_next.value
        if chosen is None:
            return
        image, index = chosen
        if image not in self._viewer.layers:
            return
        image.visible = True
        try:
            pairs, _ = self._settings()
        except BatterySegError:
            pairs = []
        strokes = next((s for i, s in pairs if i is image), None)
        if strokes is not None:
            self._viewer.layers.selection.active = strokes
        world = image.data_to_world([index, 0, 0][-image.ndim :])
        step = list(self._viewer.dims.point)
        step[-3] = world[-3]
        self._viewer.dims.point = step


SUGGESTION_SLICES = 8  # candidate slices ranked after each stroke, shared among the volumes


def _update_job(images, strokes, indices, config, bank, previous, refit=True, names=None):
    """Worker body: refit on every image's strokes (unless only the slice changed), show the
    displayed slice of each image in ``indices`` (``{image number: slice}``; a ``shown``
    progress event each), then rank the slices of the volumes to paint next: a list of
    ``(image number, Suggestion)``, the most uncertain first, unpainted slices before painted."""
    from ..training._live import base_bank, live_job
    from ..training._suggest import suggest_job

    if refit or previous is None:
        bank = bank or base_bank(config, images)
        live = yield from live_job(
            images, strokes, config, bank=bank, previous=previous, names=names
        )
    else:
        live = previous
    for k, index in indices.items():
        yield Progress(0, 1, "predicting")
        labels, doubt = live.predict_slice(images[k], index)
        shown = {"live": live, "image": k, "slice": index, "labels": labels, "uncertainty": doubt}
        yield Progress(1, 1, "shown", {"shown": shown})
    volumes = [k for k, image in enumerate(images) if image.ndim == 3]
    if not volumes or not refit:
        return None
    candidates = max(3, SUGGESTION_SLICES // len(volumes))
    found = []
    for k in volumes:
        ranked = yield from suggest_job(live, images[k], strokes[k], candidates=candidates)
        found += [(k, s) for s in ranked]
    return sorted(found, key=lambda pair: (pair[1].painted, -pair[1].uncertainty))[:5]


def _place(viewer: Any, image: Any, what: str, data: np.ndarray, index: int, kind: str) -> Any:
    """A one-slice layer ``<image> <what>`` showing ``data`` over slice ``index`` of ``image``."""
    from ._space import same_space

    name = f"{image.name} {what}"
    flat = image.ndim == 2
    translate = np.asarray(image.translate, dtype=float)[-(2 if flat else 3) :].copy()
    if not flat:
        translate[0] += index * float(image.scale[-3])
        data = data[None]
    if name in viewer.layers:
        layer = viewer.layers[name]
        current, moved = layer.data, not np.allclose(layer.translate, translate)
        if (
            isinstance(current, np.ndarray)
            and current.shape == data.shape
            and current.dtype == data.dtype
            and current.flags.writeable
        ):
            # the layer's own array (a copy made below): writing into it and refreshing skips
            # the new-data bookkeeping of ``layer.data =`` on the Qt thread
            current[...] = data
            if not moved:
                layer.refresh()
        else:
            layer.data = np.array(data)  # owned by the layer, as below
        if moved:  # each change redraws the layer
            layer.translate = tuple(translate)
        return layer
    data = np.array(data)  # the layer owns its array, so later slices can be written into it
    space = same_space(image, last=2 if flat else 3)
    if kind == "labels":
        return viewer.add_labels(data, name=name, translate=tuple(translate), opacity=0.5, **space)
    return viewer.add_image(
        data,
        name=name,
        translate=tuple(translate),
        colormap="magma",
        contrast_limits=(0, 1),
        opacity=0.5,
        blending="additive",
        **space,
    )
