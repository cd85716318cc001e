"""Dock widget "Train from labels": train or fine-tune a U-Net from strokes painted in napari.

The widget gathers image / labels layer pairs and the options into a
:class:`~battery_seg.training.TrainConfig`, runs :func:`~battery_seg.training.train_job` through
:class:`JobControls`, plots the loss and per-phase validation IoU after every epoch, shows the
model's prediction of the displayed slice after every epoch (computed in the job's thread), and
then offers to open "Segment volume" with the new model. "New strokes layer" adds a Labels layer
that knows the phases' names and colours; the start model defaults to ``TrainConfig().init``;
models are saved next to the image under a free name, so retraining keeps earlier files.
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
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)

from .._bundled import BUNDLED_MODELS
from ..checks import output_lock
from ..errors import BatterySegError
from ..jobs import Progress
from ..phases import PhaseSet
from ..training import CONTEXTS, TrainConfig, TrainingPair
from ._jobs import JobControls
from ._layout import PhaseLegend, ScrollingDock, Section
from ._live import LiveSection
from ._model import MODEL_FILTER
from ._pairs import PairList
from ._preview import SlicePreview
from ._strokes import new_strokes_layer
from ._train_files import FILE, MODELS_FOLDER, SCRATCH, model_output, start_choices
from ._train_plot import TrainingPlot

if TYPE_CHECKING:
    import napari

__all__ = ["MODELS_FOLDER", "TrainWidget", "start_choices"]

PLUGIN, SEGMENT_WIDGET = "napari-battery-seg", "Segment volume"
EXPORT_WIDGET = "Export for bioimage.io"


class TrainWidget(ScrollingDock):
    """Train a model from painted Labels layers; live loss / IoU plot; segment with the result."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._pairs = PairList(viewer, lambda phases: setattr(self._phases, "value", phases.spec()))
        self._add_pair = PushButton(text="+ image / labels pair")
        self._new_strokes = PushButton(
            text="New strokes layer",
            tooltip="Add a Labels layer over the first pair's image to paint strokes in, with "
            "the phases' names (shown on hover) and colours; label value k paints phase k.",
        )
        self._phases = LineEdit(
            label="phases",
            value="si-graphite",
            tooltip=(
                "A preset (si-graphite, nmc), names in label order (pore,active,cbd) or "
                "NAME=VALUE pairs for labels from other tools. Taken from the labels layer when "
                "it names its phases."
            ),
        )
        self._legend = PhaseLegend(label="paint")
        choices, start = start_choices()
        self._start = ComboBox(label="start from", choices=choices, value=start)
        self._init_file = FileEdit(label="model file", mode="r", filter=MODEL_FILTER, visible=False)
        self._output = FileEdit(
            label="save model to",
            mode="w",
            filter="*.pt",
            value="",
            tooltip="Empty: next to the image as '<image>-model.pt'. An existing file is kept: "
            "the model goes to the next free name (model-2.pt, ...) unless 'overwrite' is on.",
        )
        self._epochs = SpinBox(
            label="epochs",
            value=TrainConfig().epochs or 0,
            min=0,
            max=100_000,
            tooltip="0 = no epoch limit (use minutes)",
        )
        self._minutes = FloatSpinBox(
            label="minutes",
            value=0.0,
            min=0.0,
            max=10_000.0,
            step=0.5,
            tooltip="time budget; 0 = no time limit",
        )
        self._context = ComboBox(
            label="context",
            choices=list(CONTEXTS),
            value=3,
            tooltip="neighbouring slices the network sees (1 = 2D); follows the start model",
        )
        self._overwrite = CheckBox(text="overwrite an existing model file", value=False)
        self._missing = CheckBox(
            text="train painted phases only",
            value=False,
            tooltip="Go on when a phase has no painted voxel; otherwise that is an error.",
        )
        self._match = CheckBox(
            text="keep the start model's phase fractions",
            value=True,
            tooltip="When the start model labels the strokes well, shift the trained model's "
            "per-phase biases so that it predicts the start model's phase fractions: strokes of "
            "every phase in equal amounts make a network over-predict the rare phases (CBD "
            "taken from pore). Off: keep the fractions the strokes give.",
        )
        self._grey = CheckBox(
            text="blend in grey levels",
            value=True,
            tooltip="When the start model does not know the imaging (it labels the strokes "
            "poorly) or training starts from scratch, blend a classifier of filter features "
            "fitted to the same strokes into the model: it draws the boundaries of look-alike "
            "phases (pore and CBD) from the grey values. Off: the network alone.",
        )
        self._preview = CheckBox(
            text="live preview of the displayed slice",
            value=True,
            tooltip="After every epoch, show the model's prediction of the slice on screen "
            "(layer '<image> preview').",
        )
        self.controls = JobControls("Train", "Train from labels")
        self.plot = TrainingPlot()
        self._data_notes = ""  # notes about the painting (or the model), from a run's start
        self._epoch_note = ""  # what the last epoch's validation numbers say
        self.validation_note = Label(value="")
        self.validation_note.native.setWordWrap(True)
        self.validation_note.visible = False
        self._segment = PushButton(text="Segment volume with this model", enabled=False)
        self._export = PushButton(text="Export for bioimage.io", enabled=False)
        self.advanced = Section(
            "More options",
            [
                self._context,
                self._overwrite,
                self._missing,
                self._match,
                self._grey,
                self._preview,
            ],
            expanded=False,
        )
        self.live = LiveSection(viewer, self.live_settings, self.apply_live)
        self.live_section = Section("Live", [self.live], labels=False)
        self.curves = Section("Loss and validation IoU", [self.validation_note], labels=False)
        self.curves.append_native(self.plot.canvas)
        layer_buttons = Container(
            widgets=[self._add_pair, self._new_strokes], layout="horizontal", labels=False
        )
        layer_buttons.margins = (0, 0, 0, 0)
        super().__init__(
            [
                self._pairs,
                layer_buttons,
                Container(
                    widgets=[
                        self._phases,
                        self._legend,
                        self._start,
                        self._init_file,
                        self._output,
                        self._epochs,
                        self._minutes,
                    ]
                ),
                self.advanced,
                self.live_section,
                self.controls,
                self._segment,
                self._export,
                self.curves,
            ]
        )
        self.result: Any = None
        self.model_path: Path | None = None
        # TrainConfig fields the dock does not show (patch_size, batch_size, ...), for scripts.
        self.extra_settings: dict[str, Any] = {}
        self._started_at = 0.0
        self.slice_preview = SlicePreview(viewer)
        self.add_pair()
        self._add_pair.changed.connect(self._pairs.add)
        self._new_strokes.changed.connect(self.new_strokes_layer)
        self._phases.changed.connect(self._on_phases_changed)
        self._start.changed.connect(self._on_start_changed)
        self._init_file.changed.connect(self._follow_model_context)
        self.controls.run_button.changed.connect(self.run)
        self._segment.changed.connect(self.open_segment)
        self._export.changed.connect(self.open_export)
        self._on_phases_changed()
        self._follow_model_context()

    # -- pairs and phases ---------------------------------------------------------------------
    @property
    def pair_rows(self) -> list:
        return self._pairs.rows

    def add_pair(self):
        return self._pairs.add()

    def remove_pair(self, row) -> None:
        self._pairs.remove(row)

    def pairs(self, phases: PhaseSet | None = None) -> list[TrainingPair]:
        """The selected image / labels layers as training pairs (labels are never modified)."""
        return self._pairs.pairs(phases)

    def new_strokes_layer(self) -> Any:
        """Add an empty strokes layer over the first pair's image, select it in that pair and
        make it the active layer in paint mode; return it."""
        from napari.utils.notifications import show_error

        row = self.pair_rows[0]
        try:
            image = row.image_box.value
            if image is None:
                raise BatterySegError("Open an image first; the strokes layer is made for it.")
            phases = PhaseSet.parse(self._phases.value)
        except BatterySegError as exc:
            self.controls.set_status(f"Error: {exc}")
            show_error(str(exc))
            return None
        layer = new_strokes_layer(self._viewer, image, phases)
        row.labels_box.value = layer
        self.controls.set_status(
            f"Paint strokes of every phase in '{layer.name}' ({phases.describe()}; the label "
            "number picks the phase), then press Train."
        )
        return layer

    def _on_phases_changed(self, _value: Any = None) -> None:
        try:
            self._legend.show_phases(PhaseSet.parse(self._phases.value))
        except BatterySegError:
            self._legend.show_phases(None)

    def _on_start_changed(self, _value: Any = None) -> None:
        self._init_file.visible = self._start.value == FILE
        self._follow_model_context()

    def _follow_model_context(self, _value: Any = None) -> None:
        """Starting from a model, show its context (a deeper one may still be chosen)."""
        try:
            source = self._init()
        except BatterySegError:
            return
        if source is None or not (source in BUNDLED_MODELS or Path(source).exists()):
            return
        from ..model import load_card  # torch: only once a model is chosen

        try:
            card = load_card(source)
        except BatterySegError:
            return  # the same message comes back, with its fix, when Train is pressed
        self._context.value = card.context

    # -- configuration ------------------------------------------------------------------------
    def _init(self) -> str | None:
        """The ``init`` of the chosen start: None (scratch), a bundled name or a file path."""
        value = self._start.value
        if value == SCRATCH:
            return None
        if value == FILE:
            path = Path(self._init_file.value)
            if not path.name or not path.exists():
                raise BatterySegError(
                    "Choose the model to start from: a .pt file from training, or a "
                    "bioimage.io package (.zip, folder or rdf.yaml) from 'Export for bioimage.io'."
                )
            return str(path)
        return value

    def output_path(self) -> Path:
        """Where the model will be saved: the chosen file, or ``<image>-model.pt`` next to the
        first pair's image; an existing file is kept (the next free name) unless 'overwrite'."""
        image = self.pair_rows[0].image_box.value
        return model_output(str(self._output.value), image, overwrite=bool(self._overwrite.value))

    def config(self) -> TrainConfig:
        """The :class:`TrainConfig` of the current settings."""
        epochs, minutes = int(self._epochs.value), float(self._minutes.value)
        return TrainConfig(
            phases=PhaseSet.parse(self._phases.value),
            context=int(self._context.value),
            epochs=epochs or None,
            minutes=minutes or None,
            init=self._init(),
            output=self.output_path(),
            overwrite=bool(self._overwrite.value),
            train_missing_phases=bool(self._missing.value),
            match_fractions=bool(self._match.value),
            grey_weight=TrainConfig.grey_weight if self._grey.value else 0.0,
            **self.extra_settings,
        )

    # -- live mode ----------------------------------------------------------------------------
    def live_settings(self) -> tuple[list[tuple[Any, Any]], Any]:
        """The ``(image layer, strokes layer)`` of every pair with both chosen (a strokes layer
        once) and the :class:`LiveConfig` of the dock."""
        from ..training import LiveConfig

        pairs, used = [], set()
        for row in self.pair_rows:
            image, strokes = row.image_box.value, row.labels_box.value
            if image is not None and strokes is not None and id(strokes) not in used:
                pairs.append((image, strokes))
                used.add(id(strokes))
        if not pairs:
            raise BatterySegError(
                "Choose an image and its strokes layer (or press 'New strokes layer') first."
            )
        config = LiveConfig(phases=PhaseSet.parse(self._phases.value), init=self._init() or "auto")
        return pairs, config

    def apply_live(self, live: Any) -> Any:
        """Save the live model (where Train would save) and open Segment volume with it."""
        path = self.output_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model_path = live.save(path)
        self._segment.enabled = self._export.enabled = True
        self.controls.set_status(f"Saved the live model to {path}; segment the volume with it.")
        return self.open_segment()

    # -- running ------------------------------------------------------------------------------
    def run(self) -> None:
        """Start training with the current settings (errors become notifications)."""
        from napari.utils.notifications import show_error

        try:
            config = self.config()
            pairs = self.pairs(config.phase_set())
            if Path(config.output).parent == MODELS_FOLDER:
                MODELS_FOLDER.mkdir(parents=True, exist_ok=True)
        except BatterySegError as exc:
            self.controls.set_status(f"Error: {exc}")
            show_error(str(exc))
            return
        self.result, self.model_path = None, None
        self._segment.enabled = self._export.enabled = False
        self.plot.reset(config.phase_set())
        self._data_notes = self._epoch_note = ""
        self.show_validation_note("")
        self._started_at = time.time()
        image = self.pair_rows[0].image_box.value
        preview = self.slice_preview.start(image) if self._preview.value else None

        def run_job():  # a generator function, so the worker is a GeneratorWorker
            with output_lock(config.output):  # one run at a time writes a model file
                from ..training import train_job  # torch: only once Train is pressed

                return (yield from train_job(pairs, config, preview=preview))

        worker = self.controls.start(
            run_job, on_progress=self._on_progress, on_returned=self._on_returned
        )
        worker.aborted.connect(lambda: self._on_aborted(Path(config.output)))

    def _on_progress(self, event: Progress) -> None:
        if not event.data:
            return
        if "notes" in event.data:  # about the painting or the model, shown for the whole run
            self._data_notes = " ".join([self._data_notes, *event.data["notes"]]).strip()
        elif "epoch" in event.data:
            self.plot.add_epoch(event.data)
            self._epoch_note = _validation_note(event.data)
        notes = [n for n in (self._epoch_note, self._data_notes) if n]
        self.show_validation_note("\n".join(notes))
        if event.data.get("preview") is not None:
            self.slice_preview.show(event.data["preview"])

    def show_validation_note(self, text: str) -> None:
        """A note next to the validation IoU (e.g. phases whose validation says little)."""
        self.validation_note.value = text
        self.validation_note.visible = bool(text)

    def _on_returned(self, result: Any) -> None:
        self.result = result
        self.model_path = result.model_path
        self._use_as_start(result.model_path)
        self._segment.enabled = self._export.enabled = True
        scores = ", ".join(f"{k} {v:.2f}" for k, v in result.best_val_iou.items()) or "-"
        self.controls.set_status(
            f"Saved {result.model_path} in {self.controls.elapsed()}: epoch {result.best_epoch} "
            f"of {len(result.history)} (stopped by {result.stopped_by}); validation IoU "
            f"{scores}. Paint corrections and press Train again to continue from it."
        )

    def _use_as_start(self, path: Path) -> None:
        """Retrain from the model just trained (the next save goes to a free name)."""
        self._init_file.value = path
        self._start.value = FILE
        self._init_file.visible = True

    def _on_aborted(self, output: Path) -> None:
        if output.is_file() and output.stat().st_mtime >= self._started_at - 1:
            self.model_path = output
            self._use_as_start(output)
            self._segment.enabled = self._export.enabled = True
            self.controls.set_status(f"Cancelled; the best model so far is in {output}.")

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


def _validation_note(record: dict) -> str:
    """What an epoch record says about its validation numbers (``val_notes``: a text or
    ``{phase: text}``), e.g. that a phase's held-back strokes are too few to mean much."""
    notes = record.get("val_notes")
    if isinstance(notes, dict):
        return "; ".join(f"{phase}: {text}" for phase, text in notes.items() if text)
    return str(notes or "")
