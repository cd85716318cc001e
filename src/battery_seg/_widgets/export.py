"""Dock widget "Export for bioimage.io": a model as a bioimage.io model package to share.

The widget gathers the model, authors, licence and output into an
:class:`~battery_seg.export.ExportConfig` and runs :func:`~battery_seg.export.export_job`
through :class:`JobControls`. The Train dock opens it with the model it just trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, LineEdit

from .._bundled import BUNDLED_MODELS
from ..errors import BatterySegError
from ..export import DEFAULT_LICENSE, ExportConfig, export_job
from ._jobs import JobControls
from ._model import MODEL_FILTER, chosen_model

if TYPE_CHECKING:
    import napari

__all__ = ["ExportWidget"]

_FROM_FILE = "from file"
_NOTE = (
    "<i>Writes a bioimage.io model package (.zip): battery-seg (--model, the docks), "
    "bioimage.io tools, ilastik and deepImageJ run it. Publish it at bioimage.io (Upload).</i>"
)


class ExportWidget(Container):
    """Export a model (a trained file or a bundled one) as a bioimage.io package."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._model = ComboBox(
            label="model", choices=[*BUNDLED_MODELS, _FROM_FILE], value=_FROM_FILE
        )
        self._model_file = FileEdit(label="model file", mode="r", filter=MODEL_FILTER)
        self._name = LineEdit(label="name", tooltip="name on bioimage.io; empty = automatic")
        self._authors = LineEdit(
            label="authors", tooltip="who made the model: names separated by ';'"
        )
        self._license = LineEdit(
            label="licence", value=DEFAULT_LICENSE, tooltip="SPDX identifier: CC-BY-4.0, MIT, ..."
        )
        self._sample = ComboBox(
            label="sample image",
            choices=self._image_layers,
            nullable=True,
            tooltip="the test input and cover are cut from it; empty = the synthetic sample",
        )
        self._output = FileEdit(
            label="save to", mode="w", filter="*.zip", value=Path.home() / "battery-seg-model.zip"
        )
        self._overwrite = CheckBox(text="overwrite an existing file", value=False)
        self.controls = JobControls("Export", "Export for bioimage.io")
        note = Label(value=_NOTE)
        note.native.setWordWrap(True)
        super().__init__(
            widgets=[
                self._model,
                self._model_file,
                self._name,
                self._authors,
                self._license,
                self._sample,
                self._output,
                self._overwrite,
                self.controls,
                note,
            ]
        )
        self.result: Any = None
        self._model.changed.connect(self._on_model_changed)
        self.controls.run_button.changed.connect(self.run)
        viewer.layers.events.inserted.connect(self._sample.reset_choices)
        viewer.layers.events.removed.connect(self._sample.reset_choices)

    def set_model(self, path: str | Path) -> None:
        """Export the model file ``path``, to a .zip beside it (the Train dock calls this)."""
        path = Path(path)
        self._model.value = _FROM_FILE
        self._model_file.value = path
        self._output.value = path.with_suffix(".zip")

    def set_sample(self, layer: Any) -> None:
        """Cut the test input from ``layer`` (an image layer of the viewer)."""
        self._sample.reset_choices()
        if layer is not None and layer in self._sample.choices:
            self._sample.value = layer

    def config(self) -> ExportConfig:
        """The :class:`ExportConfig` of the current settings."""
        layer = self._sample.value
        return ExportConfig(
            model=chosen_model(self._model.value, self._model_file.value, _FROM_FILE),
            output=Path(self._output.value),
            name=self._name.value.strip() or None,
            authors=[a.strip() for a in self._authors.value.split(";")],
            license=self._license.value.strip(),
            sample=None if layer is None else (layer.data[0] if layer.multiscale else layer.data),
            overwrite=bool(self._overwrite.value),
        )

    def run(self) -> None:
        """Start the export (errors become notifications)."""
        from napari.utils.notifications import show_error

        try:
            config = self.config()  # checked in the worker: the licence check imports a lot
        except BatterySegError as exc:
            self.controls.set_status(f"Error: {exc}")
            show_error(str(exc))
            return
        self.result = None
        self.controls.start(lambda: export_job(config), on_returned=self._on_returned)

    def _image_layers(self, _widget: Any = None) -> list:
        from napari.layers import Image

        return [layer for layer in self._viewer.layers if isinstance(layer, Image)]

    def _on_model_changed(self, _value: Any = None) -> None:
        self._model_file.visible = self._model.value == _FROM_FILE

    def _on_returned(self, result: Any) -> None:
        self.result = result
        self.controls.set_status(
            f"Wrote {result.path.name}. Check it with 'bioimageio test {result.path.name}'; "
            "publish it at bioimage.io (Upload)."
        )
