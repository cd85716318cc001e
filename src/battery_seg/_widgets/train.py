"""Dock widget "Train from labels": train or fine-tune a U-Net from strokes painted in napari.

The widget gathers image / labels layer pairs and the options into a
:class:`~battery_seg.training.TrainConfig`, runs :func:`~battery_seg.training.train_job` through
:class:`JobControls`, plots the loss and per-phase validation IoU after every epoch, and then
offers to open "Segment volume" with the new model.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    PushButton,
    SpinBox,
)

from ..checks import output_lock
from ..errors import BatterySegError
from ..jobs import Progress
from ..phases import PhaseSet
from ..training import CONTEXTS, TrainConfig, TrainingPair, train_job
from ._jobs import JobControls
from ._model import MODEL_FILTER, chosen_model
from ._space import displayed_volume, voxel_size_um
from ._train_plot import TrainingPlot

if TYPE_CHECKING:
    import napari

__all__ = ["TrainWidget"]

_SCRATCH, _FILE = "scratch (new model)", "model file"
_BUNDLED = {"default model": "default", "fast model": "fast"}  # choice -> bundled model name
PLUGIN, SEGMENT_WIDGET = "napari-battery-seg", "Segment volume"
EXPORT_WIDGET = "Export for bioimage.io"


class _PairRow(Container):
    """One image layer and the labels layer painted on it, with a remove button."""

    def __init__(self, owner: TrainWidget) -> None:
        self.image_box = ComboBox(label="image", choices=owner.layers_of("Image"))
        self.labels_box = ComboBox(label="labels", choices=owner.layers_of("Labels"))
        self.remove_button = PushButton(text="−", tooltip="remove this pair")
        self.remove_button.max_width = 30
        super().__init__(
            widgets=[self.image_box, self.labels_box, self.remove_button],
            layout="horizontal",
            labels=False,
        )
        self.remove_button.changed.connect(lambda: owner.remove_pair(self))
        self.labels_box.changed.connect(owner.phases_from_layer)


class TrainWidget(Container):
    """Train a model from painted Labels layers; live loss / IoU plot; segment with the result."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._pairs = Container(labels=False)
        self._add_pair = PushButton(text="+ add image / labels pair")
        self._phases = LineEdit(
            label="phases",
            value="si-graphite",
            tooltip=(
                "A preset (si-graphite, nmc), names in label order (pore,active,cbd) or "
                "NAME=VALUE pairs for labels from other tools. Taken from the labels layer when "
                "it names its phases."
            ),
        )
        self._context = ComboBox(
            label="context",
            choices=list(CONTEXTS),
            value=3,
            tooltip="neighbouring slices the network sees (1 = 2D)",
        )
        self._epochs = SpinBox(
            label="epochs", value=40, min=0, max=100_000, tooltip="0 = no epoch limit (use minutes)"
        )
        self._minutes = FloatSpinBox(
            label="minutes",
            value=0.0,
            min=0.0,
            max=10_000.0,
            step=0.5,
            tooltip="time budget; 0 = no time limit",
        )
        self._start = ComboBox(
            label="start from", choices=[_SCRATCH, *_BUNDLED, _FILE], value=_SCRATCH
        )
        self._init_file = FileEdit(label="model file", mode="r", filter=MODEL_FILTER, visible=False)
        self._output = FileEdit(
            label="save model to",
            mode="w",
            filter="*.pt",
            value=Path.home() / "battery-seg-model.pt",
        )
        self._overwrite = CheckBox(text="overwrite an existing model file", value=False)
        self._missing = CheckBox(
            text="train painted phases only",
            value=False,
            tooltip=("Go on when a phase has no painted voxel; otherwise that is an error."),
        )
        self.controls = JobControls("Train", "Train from labels")
        self.plot = TrainingPlot()
        self._segment = PushButton(text="Segment volume with this model", enabled=False)
        self._export = PushButton(text="Export for bioimage.io", enabled=False)
        super().__init__(
            widgets=[
                self._pairs,
                self._add_pair,
                self._phases,
                self._context,
                self._epochs,
                self._minutes,
                self._start,
                self._init_file,
                self._output,
                self._overwrite,
                self._missing,
                self.controls,
                self._segment,
                self._export,
            ]
        )
        self.native.layout().addWidget(self.plot.canvas)
        self.result: Any = None
        self.model_path: Path | None = None
        # TrainConfig fields the dock does not show (patch_size, batch_size, ...), for scripts.
        self.extra_settings: dict[str, Any] = {}
        self._started_at = 0.0
        self.add_pair()
        self._add_pair.changed.connect(self.add_pair)
        self._start.changed.connect(self._on_start_changed)
        self._init_file.changed.connect(self._follow_model_context)
        self.controls.run_button.changed.connect(self.run)
        self._segment.changed.connect(self.open_segment)
        self._export.changed.connect(self.open_export)
        viewer.layers.events.inserted.connect(self._reset_layer_choices)
        viewer.layers.events.removed.connect(self._reset_layer_choices)

    # -- pairs --------------------------------------------------------------------------------
    @property
    def pair_rows(self) -> list[_PairRow]:
        return list(self._pairs)

    def layers_of(self, kind: str):
        """Choices callback: the viewer's layers of type ``kind`` (newest first)."""

        def choices(_widget: Any = None) -> list:
            return [
                layer for layer in reversed(self._viewer.layers) if type(layer).__name__ == kind
            ]

        return choices

    def add_pair(self) -> _PairRow:
        row = _PairRow(self)
        self._pairs.append(row)
        self.phases_from_layer()
        return row

    def remove_pair(self, row: _PairRow) -> None:
        if len(self._pairs) > 1:
            self._pairs.remove(row)

    def _reset_layer_choices(self, _event: Any = None) -> None:
        for row in self.pair_rows:
            row.image_box.reset_choices()
            row.labels_box.reset_choices()

    def phases_from_layer(self, _value: Any = None) -> None:
        """Show the phase set a selected labels layer names in its metadata."""
        for row in self.pair_rows:
            phases = _layer_phases(row.labels_box.value)
            if phases is not None:
                self._phases.value = phases.spec()
                return

    def _on_start_changed(self, _value: Any = None) -> None:
        self._init_file.visible = self._start.value == _FILE
        self._follow_model_context()

    def _follow_model_context(self, _value: Any = None) -> None:
        """Starting from a model, show its context (a deeper one may still be chosen)."""
        if self._start.value == _SCRATCH:
            return
        from ..model import load_card  # torch: only once a model is chosen

        try:
            choice = _BUNDLED.get(self._start.value, self._start.value)
            card = load_card(chosen_model(choice, self._init_file.value, _FILE))
        except BatterySegError:
            return  # the same message comes back, with its fix, when Train is pressed
        self._context.value = card.context

    # -- configuration ------------------------------------------------------------------------
    def config(self) -> TrainConfig:
        """The :class:`TrainConfig` of the current settings."""
        epochs, minutes = int(self._epochs.value), float(self._minutes.value)
        init = None
        if self._start.value != _SCRATCH:
            choice = _BUNDLED.get(self._start.value, self._start.value)
            init = chosen_model(choice, self._init_file.value, _FILE)
        phases = PhaseSet.parse(self._phases.value)
        output = Path(self._output.value)
        if not output.name or output.is_dir():
            raise BatterySegError("Choose a file to save the model to, e.g. model.pt.")
        return TrainConfig(
            phases=phases,
            context=int(self._context.value),
            epochs=epochs or None,
            minutes=minutes or None,
            init=init,
            output=output,
            overwrite=bool(self._overwrite.value),
            train_missing_phases=bool(self._missing.value),
            **self.extra_settings,
        )

    def pairs(self, phases: PhaseSet | None = None) -> list[TrainingPair]:
        """The selected image / labels layers as training pairs (labels are never modified)."""
        pairs = []
        for row in self.pair_rows:
            image, labels = row.image_box.value, row.labels_box.value
            if image is None or labels is None:
                raise BatterySegError(
                    "Select an image layer and the labels layer painted on it (add a Labels "
                    "layer with the image selected, then paint strokes of every phase)."
                )
            own = _layer_phases(labels)
            if phases is not None and own is not None and own.names != phases.names:
                raise BatterySegError(
                    f"Labels layer {labels.name!r} names its phases {own.describe()}, not "
                    f"{phases.describe()}; set 'phases' to {own.spec()}."
                )
            data = displayed_volume(image, self._viewer)
            name = f"labels layer {labels.name!r} (image {image.name!r})"
            pairs.append(
                TrainingPair(
                    data, displayed_volume(labels, self._viewer), name, voxel_size_um(image)
                )
            )
        return pairs

    # -- running ------------------------------------------------------------------------------
    def run(self) -> None:
        """Start training with the current settings (errors become notifications)."""
        from napari.utils.notifications import show_error

        try:
            config = self.config()
            config.check()
            pairs = self.pairs(config.phase_set())
        except BatterySegError as exc:
            self.controls.set_status(f"Error: {exc}")
            show_error(str(exc))
            return
        self.result, self.model_path = None, None
        self._segment.enabled = self._export.enabled = False
        self.plot.reset(config.phase_set())
        self._started_at = time.time()

        def run_job():  # a generator function, so the worker is a GeneratorWorker
            with output_lock(config.output):  # one run at a time writes a model file
                return (yield from train_job(pairs, config))

        worker = self.controls.start(
            run_job, on_progress=self._on_progress, on_returned=self._on_returned
        )
        worker.aborted.connect(lambda: self._on_aborted(config.output))

    def _on_progress(self, event: Progress) -> None:
        if event.data:
            self.plot.add_epoch(event.data)

    def _on_returned(self, result: Any) -> None:
        self.result = result
        self.model_path = result.model_path
        self._init_file.value = result.model_path  # ready to fine-tune after more painting
        self._segment.enabled = self._export.enabled = True
        scores = ", ".join(f"{k} {v:.2f}" for k, v in result.best_val_iou.items()) or "-"
        self.controls.set_status(
            f"Saved {result.model_path.name}: epoch {result.best_epoch} of "
            f"{len(result.history)} (stopped by {result.stopped_by}); validation IoU {scores}."
        )

    def _on_aborted(self, output: Path) -> None:
        if output.is_file() and output.stat().st_mtime >= self._started_at - 1:
            self.model_path = output
            self._segment.enabled = self._export.enabled = True
            self.controls.set_status(f"Cancelled; the best model so far is in {output.name}.")

    def open_segment(self) -> Any:
        """Open the "Segment volume" dock with the trained model selected; return its widget."""
        return self._open_with_model(SEGMENT_WIDGET)

    def open_export(self) -> Any:
        """Open the "Export for bioimage.io" dock with the trained model; return its widget."""
        widget = self._open_with_model(EXPORT_WIDGET)
        if widget is not None and hasattr(widget, "set_sample"):
            widget.set_sample(self.pair_rows[0].image_box.value)  # test input from its image
        return widget

    def _open_with_model(self, dock: str) -> Any:
        from napari.utils.notifications import show_info

        if self.model_path is None:
            return None
        try:
            _, widget = self._viewer.window.add_plugin_dock_widget(PLUGIN, dock)
        except (KeyError, ValueError, ImportError) as exc:
            show_info(f"'{dock}' is not available ({exc}); the model is in {self.model_path}.")
            return None
        if hasattr(widget, "set_model"):
            widget.set_model(self.model_path)
        return widget


def _layer_phases(layer: Any) -> PhaseSet | None:
    stored = getattr(layer, "metadata", {}).get("phases") if layer is not None else None
    if isinstance(stored, PhaseSet):
        return stored
    if isinstance(stored, dict):
        try:
            return PhaseSet.from_dict(stored)
        except (KeyError, TypeError, BatterySegError):
            return None
    return None
