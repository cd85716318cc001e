"""Dock widget "Segment volume": run a U-Net over an image layer, block by block.

The widget gathers the options into a :class:`~battery_seg.inference.SegmentConfig`, runs
:func:`~battery_seg.inference.segment_job` through :class:`JobControls` and paints each finished
block into a Labels layer created at the start and named after the image and the model
(``anode phases (default)``), so that two models can be compared side by side; the layer of the
same name is replaced only when asked. An OME-Zarr output is shown lazily from its store. On
Cancel the half-painted layer is removed (a replaced layer gets its data back).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, LineEdit, SpinBox

from .._bundled import BUNDLED_MODELS, DEFAULT_MODEL, FLAT_MODELS
from ..cluster import ClusterOptions
from ..errors import BatterySegError
from ..inference import SegmentConfig, SegmentResult, segment_job
from ..jobs import Progress
from ..names import DEVICES, LABELS_ARRAY
from ._jobs import JobControls
from ._layout import PhaseLegend, ScrollingDock, Section, WrappedLabel
from ._model import MODEL_FILTER, chosen_model
from ._space import displayed_volume, same_space

if TYPE_CHECKING:
    import napari

__all__ = ["SegmentWidget"]

_FROM_FILE = "from file"
_MODEL_TIP = (
    "default: the most accurate bundled model · fast: about 2x faster, CBD a little "
    "less accurate · 2d: slice by slice, for single images and stacks of unrelated slices "
    "(chosen for you when the image has fewer slices than the others need) · from file: a "
    "model you trained (.pt) or a bioimage.io package (.zip)"
)
_IN_LAYER, _TO_ZARR = "layer (in memory)", "OME-Zarr file"
_TRIPLANAR = "tri-planar (z + y + x)"
_SCHEDULER_TIP = (
    "Address of a dask.distributed scheduler (tcp://host:8786) to run the blocks on a cluster; "
    "empty = this machine. The workers need napari-battery-seg and, for an OME-Zarr output, a "
    "folder they can write at the same path."
)
_TILE_TIP = (
    "In-plane tile size in pixels. auto: the fewest tiles of up to 1152 pixels that cover a "
    "plane (a plane up to 1152 wide is one tile, computed once)."
)
_NOTE = (
    "<i>The bundled models learnt generated electrodes: default, fast and 2d Si–graphite anodes, "
    "nmc and nmc-2d NMC / LFP cathodes. On your own data, paint a few strokes of every phase and "
    "train or fine-tune a model (Train widget).</i>"
)


class SegmentWidget(ScrollingDock):
    """Segment an image layer into phases; blocks appear in a Labels layer as they finish."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._image = ComboBox(label="image", choices=self._image_layers)
        self._model = ComboBox(
            label="model",
            choices=[*BUNDLED_MODELS, _FROM_FILE],
            value=DEFAULT_MODEL,
            tooltip=_MODEL_TIP,
        )
        self._model_file = FileEdit(
            label="model file", mode="r", filter=MODEL_FILTER, visible=False
        )
        self._model_info = Label(label="context", value="")
        self._legend = PhaseLegend(label="phases")
        self._axis = ComboBox(label="slicing", choices=["z", "y", "x", _TRIPLANAR], value="z")
        self._tile = SpinBox(
            label="tile size", value=0, min=0, max=4096, step=16, tooltip=_TILE_TIP
        )
        self._tile.native.setSpecialValueText("auto")
        self._device = ComboBox(label="device", choices=list(DEVICES), value="auto")
        self._scheduler = LineEdit(label="scheduler", value="", tooltip=_SCHEDULER_TIP)
        self._probabilities = CheckBox(text="per-phase probabilities", value=False)
        self._uncertainty = ComboBox(label="uncertainty", choices=["none", "entropy", "margin"])
        self._output = ComboBox(label="output", choices=[_IN_LAYER, _TO_ZARR], value=_IN_LAYER)
        self._output_file = FileEdit(label="OME-Zarr", mode="w", filter="*.zarr", visible=False)
        self._overwrite = CheckBox(text="overwrite an existing output", value=False, visible=False)
        self._replace = CheckBox(
            text="replace the layer of the same name",
            value=False,
            tooltip="Off: every run adds a layer named '<image> phases (<model>)', so that "
            "models can be compared side by side. On: the layer of that name is reused.",
        )
        self.controls = JobControls("Segment", "Segment volume")
        note = WrappedLabel(value=_NOTE)
        self.advanced = Section(
            "Tiles, device, cluster, probabilities",
            [
                self._tile,
                self._device,
                self._scheduler,
                self._probabilities,
                self._uncertainty,
            ],
            expanded=False,
        )
        super().__init__(
            [
                Container(
                    widgets=[
                        self._image,
                        self._model,
                        self._model_file,
                        self._model_info,
                        self._legend,
                        self._axis,
                        self._output,
                        self._output_file,
                        self._overwrite,
                        self._replace,
                    ]
                ),
                self.advanced,
                self.controls,
                note,
            ]
        )
        self.labels_layer: Any = None
        self.result: SegmentResult | None = None
        self.blocks_painted = 0
        self._phases: Any = None
        self._running_output: Path | None = None
        self._created_layer = False
        self._previous_data: Any = None
        self._run_image: Any = None
        self._run_names: tuple[str, str] | None = None
        self._model.changed.connect(self._on_model_changed)
        self._model_file.changed.connect(self._on_model_changed)
        self._output.changed.connect(self._on_output_changed)
        self.controls.run_button.changed.connect(self.run)
        self._image.changed.connect(self._on_image_changed)
        viewer.layers.events.inserted.connect(self._image.reset_choices)
        viewer.layers.events.removed.connect(self._image.reset_choices)
        self._on_image_changed()
        self._on_model_changed()

    # -- public -------------------------------------------------------------------------------
    def set_model(self, path: str | Path) -> None:
        """Use the model file ``path`` (the Train widget calls this after training)."""
        self._model_file.value = Path(path)
        self._model.value = _FROM_FILE
        self._on_model_changed()

    def config(self) -> SegmentConfig:
        """The :class:`SegmentConfig` the widget's current values describe."""
        axis = self._axis.value
        return SegmentConfig(
            model=self._model_path(),
            axis="z" if axis == _TRIPLANAR else axis,
            triplanar=axis == _TRIPLANAR,
            tile=int(self._tile.value) or None,
            device=self._device.value,
            probabilities=bool(self._probabilities.value),
            uncertainty=self._uncertainty.value,
            output=self._output_path(),
            overwrite=bool(self._overwrite.value),
            cluster=ClusterOptions(scheduler=self._scheduler.value.strip() or None),
        )

    def run(self) -> None:
        """Start segmenting the selected image layer (errors become notifications)."""
        from napari.utils.notifications import show_error

        try:
            self._start()
        except BatterySegError as exc:
            self.controls.set_status(f"Error: {exc}")
            show_error(str(exc))

    # -- options ------------------------------------------------------------------------------
    def _image_layers(self, _widget: Any = None) -> list:
        from napari.layers import Image

        return [layer for layer in self._viewer.layers if isinstance(layer, Image)]

    def _model_path(self) -> str:
        return chosen_model(self._model.value, self._model_file.value, _FROM_FILE)

    def _output_path(self) -> Path | None:
        if self._output.value == _IN_LAYER:
            return None
        path = Path(self._output_file.value)
        if not path.name.endswith(".zarr"):
            raise BatterySegError("Choose where to write the OME-Zarr output (a .zarr path).")
        return path

    def _on_image_changed(self, _value: Any = None) -> None:
        """A 2D image, a stack thinner than the 2.5D models' five slices or a stack of unrelated
        slices gets the 2D model."""
        from ..checks import correlation_evidence, unrelated_slices

        image = self._image.value
        if image is None or self._model.value not in FLAT_MODELS:
            return
        spatial = image.ndim - (1 if getattr(image, "rgb", False) else 0)
        data = image.data[0] if getattr(image, "multiscale", False) else image.data
        if spatial < 3 or data.shape[spatial - 3] < 5:
            why = "has fewer slices than the 2.5D models need"
        elif spatial == 3 and (r := unrelated_slices(data)) is not None:
            why = f"looks like unrelated slices {correlation_evidence(r)}"
        else:
            return
        flat = FLAT_MODELS[self._model.value]
        self._model.value = flat
        self.controls.set_status(f"{image.name} {why}: the one-slice model {flat} is chosen.")

    def _on_model_changed(self, _value: Any = None) -> None:
        from ..model import load_card

        self._model_file.visible = self._model.value == _FROM_FILE
        try:
            card = load_card(self._model_path())
        except BatterySegError as exc:
            self._model_info.value, self._phases = f"({exc})", None
            self._legend.show_phases(None)
            return
        self._phases = card.phases
        slices = "slice" if card.context == 1 else "slices"
        self._model_info.value = f"{card.context} {slices} (from the model)"
        self._legend.show_phases(card.phases)

    def _on_output_changed(self, _value: Any = None) -> None:
        to_zarr = self._output.value == _TO_ZARR
        self._output_file.visible = self._overwrite.visible = to_zarr

    # -- running ------------------------------------------------------------------------------
    def _start(self) -> None:
        image = self._image.value
        if image is None:
            raise BatterySegError("Add or open an image layer to segment first.")
        if getattr(image, "rgb", False):
            raise BatterySegError(
                f"Layer '{image.name}' is an RGB image; convert it to greyscale first "
                "(napari: Layers > Convert > Split RGB)."
            )
        config = self.config()
        data = displayed_volume(image, self._viewer)
        voxel_size = tuple(float(s) for s in image.scale[-3:])
        if data.ndim == 2:
            voxel_size = (1.0, *voxel_size)
        self.result, self.blocks_painted, self.labels_layer = None, 0, None
        self._running_output = config.output
        self._run_image, self._run_names = image, (image.name, self.model_name())
        if config.output is None:
            self._open_layer(image, np.zeros(data.shape, np.uint8))

        self.controls.start(
            lambda: segment_job(data, config, voxel_size=voxel_size),
            self._on_progress,
            self._on_returned,
            self._on_errored,
            self._on_aborted,
        )

    def model_name(self) -> str:
        """The model's short name: a bundled model's name or the model file's stem."""
        if self._model.value != _FROM_FILE:
            return self._model.value
        path = Path(self._model_file.value)
        return path.parent.name if path.name == "rdf.yaml" else path.stem  # a package's folder

    def layer_name(self, suffix: str = "phases") -> str:
        """``<image> phases (<model>)``: the output layer's name (of the running job, else of
        the current settings)."""
        image, model = self._run_names or (self._image.value.name, self.model_name())
        return f"{image} {suffix} ({model})"

    def _open_layer(self, image: Any, data: Any) -> None:
        """Create the output Labels layer; reuse the one of the same name only when asked."""
        from napari.layers import Labels

        name = self.layer_name()
        layer = self._viewer.layers[name] if name in self._viewer.layers else None
        space = same_space(image, leading_axes=max(0, data.ndim - image.ndim), last=data.ndim)
        self._created_layer = not (self._replace.value and isinstance(layer, Labels))
        if self._created_layer:
            layer = self._viewer.add_labels(data, name=name, **space)
            self._previous_data = None
        else:
            self._previous_data = layer.data
            layer.data = data
            for key, value in space.items():
                setattr(layer, key, value)
        self.labels_layer = layer
        layer.metadata["battery_seg"] = {"role": "segmentation", "model": self.model_name()}
        if self._phases is not None:  # the phases' colours from the first painted block on
            self._style_layer(self._phases)

    def _style_layer(self, result_phases: Any) -> None:
        from ._strokes import style_phase_layer

        style_phase_layer(self.labels_layer, result_phases)

    def _on_progress(self, event: Progress) -> None:
        store = event.data.get("store")
        if store is not None:  # an OME-Zarr output: show the store being written
            import zarr

            array = zarr.open_array(str(Path(store) / LABELS_ARRAY), mode="r")
            if self.labels_layer is None:
                self._open_layer(self._run_image, array)
            else:
                self.labels_layer.data = array
            return
        region, layer = event.data.get("region"), self.labels_layer
        if region is None or layer is None:
            return
        if isinstance(layer.data, np.ndarray):  # in memory: paint; a store is read on refresh
            target = region[1:] if layer.data.ndim == 2 else region
            labels = event.data["labels"]
            layer.data[target] = labels[0] if len(target) == 2 else labels
        self.blocks_painted += 1
        layer.refresh()

    def _on_returned(self, result: SegmentResult) -> None:
        self.result = result
        layer = self.labels_layer
        if isinstance(result.labels, Path):
            from ..checks import forget_input
            from ..io import open_volume

            layer.data = open_volume(result.labels).data
            forget_input(result.labels)  # shown, not an input: a re-run may replace it
        else:
            layer.data = result.labels[0] if layer.data.ndim == 2 else result.labels
        self._style_layer(result.phases)
        self._add_maps(result)
        seconds = result.timing.get("seconds", 0.0)
        where = f" → {result.labels}" if isinstance(result.labels, Path) else ""
        notes = "".join(f" Note: {note}" for note in result.notes)
        self.controls.set_status(f"Done in {seconds:.1f} s{where}.{notes}")

    def _add_maps(self, result: SegmentResult) -> None:
        labels = self.labels_layer
        flat = labels.ndim == 2  # a 2D image: drop the single slice
        meta = {"phases": result.phases.to_dict(), "scaled_by": 255}
        if result.probabilities is not None:
            data = result.probabilities[:, 0] if flat else result.probabilities
            name = self.layer_name("probabilities")
            self._add_map(name, data, same_space(labels, 1), meta, "gray")
        if result.uncertainty is not None:
            data = result.uncertainty[0] if flat else result.uncertainty
            self._add_map(self.layer_name("uncertainty"), data, same_space(labels), meta, "magma")

    def _add_map(self, name: str, data: Any, space: dict, meta: dict, colormap: str) -> None:
        if self._replace.value and name in self._viewer.layers:
            self._viewer.layers.remove(name)
        self._viewer.add_image(
            data,
            name=name,
            metadata=meta,
            colormap=colormap,
            contrast_limits=(0, 255),
            visible=False,
            **space,
        )

    def _on_aborted(self) -> None:
        self._discard_layer()
        store = self._running_output
        if store is not None and store.name.endswith(".zarr"):
            self.controls.set_status(
                f"Cancelled; finished blocks are kept in {store.name}.partial: run again with "
                "the same settings to continue, or delete it."
            )

    def _on_errored(self, _exc: BaseException) -> None:
        self._discard_layer()

    def _discard_layer(self) -> None:
        layer, self.labels_layer = self.labels_layer, None
        if layer is None:
            return
        if not self._created_layer:
            layer.data = self._previous_data
        elif layer.name in self._viewer.layers:  # by name: the viewer hands us layer proxies
            self._viewer.layers.remove(layer.name)
        self._previous_data = None
