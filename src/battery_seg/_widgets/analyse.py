"""Dock widget "Analyse phases": fractions, profiles, surfaces, connectivity and tortuosity.

The widget only gathers parameters into an :class:`~battery_seg.analysis.AnalysisConfig`, runs
:func:`~battery_seg.analysis.analyse_job` through :class:`JobControls` and shows the
:class:`~battery_seg.analysis.AnalysisResult`: small tables with units on every column (one per
kind of measurement, from :meth:`AnalysisResult.tables`), profile plots, the through-connected
masks as layers, and exports (CSV, JSON, mask TIFFs). The dock is made of foldable sections
(:attr:`AnalyseWidget.named_sections`); a further measurement adds a section or a table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    LineEdit,
    PushButton,
    Table,
    show_file_dialog,
)

from ..analysis import AnalysisConfig, AnalysisResult, analyse_job, default_networks, save_mask
from ..analysis._config import parse_roi
from ..cluster import ClusterOptions
from ..errors import BatterySegError
from ..names import DEVICES
from ..phases import PhaseSet
from ._compare import CompareSection
from ._jobs import JobControls
from ._layout import MessageLabel, PhaseLegend, ScrollingDock, Section, show_table
from ._metrics import CellModelExport, MetricOptions, SizeHistograms
from ._space import displayed_volume, same_space
from ._strokes import MASK, layer_phases

if TYPE_CHECKING:
    import napari

__all__ = ["AnalyseWidget"]


class AnalyseWidget(ScrollingDock):
    """Analyse a Labels layer: table, profile plots, through-connected masks and exports."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._labels_layer = ComboBox(label="labels", choices=self._layer_choices("Labels"))
        self._probabilities_layer = ComboBox(
            label="probabilities",
            nullable=True,
            choices=self._layer_choices("Image"),
            tooltip="optional (phases, Z, Y, X) probabilities of the "
            "segmentation, for uncertainty ranges",
        )
        self._phases = LineEdit(
            label="phases",
            value="si-graphite",
            tooltip="preset (si-graphite, nmc), names, or NAME=VALUE pairs",
        )
        self._voxel_size = LineEdit(label="voxel size z y x", value="1 1 1")
        self._roi = LineEdit(
            label="region (optional)",
            value="",
            tooltip="z0:z1,y0:y1,x0:x1 voxel ranges; empty = whole volume",
        )
        self._axes = ComboBox(label="axes", choices=["z", "y", "x", "all"], value="z")
        self._profiles = CheckBox(text="profiles", value=True)
        self._surfaces = CheckBox(text="surface areas", value=True)
        self._connectivity = CheckBox(text="connectivity", value=True)
        self._tortuosity = CheckBox(text="tortuosity (TauFactor)", value=False)
        self._networks = LineEdit(label="tortuosity of", value="")
        self._convention = ComboBox(label="convention", choices=["taufactor", "percolating"])
        self._device = ComboBox(label="device", choices=list(DEVICES), value="auto")
        self._scheduler = LineEdit(
            label="scheduler",
            value="",
            tooltip="address of a dask.distributed scheduler (tcp://host:8786) for the "
            "chunked fraction counting; empty = this machine (the rest always runs here)",
        )
        self._thresholds = LineEdit(
            label="thresholds",
            value="0.3 0.7",
            tooltip="probability thresholds for the uncertainty range",
        )
        self._force = CheckBox(text="run anyway above the time/memory limit", value=False)
        self._legend = PhaseLegend()
        self.controls = JobControls("Analyse", "Analyse phases")
        self._estimate = MessageLabel(max_lines=3)
        self.tables: dict[str, Table] = {}
        self._tables = Container(labels=False)
        self._tables.margins = (0, 0, 0, 0)
        self._export_csv = PushButton(text="Export CSV…")
        self._export_json = PushButton(text="Export JSON…")
        self._export_masks = PushButton(text="Export masks…")
        measures = Container(
            widgets=[
                Container(
                    widgets=[self._profiles, self._surfaces], layout="horizontal", labels=False
                ),
                Container(
                    widgets=[self._connectivity, self._tortuosity],
                    layout="horizontal",
                    labels=False,
                ),
            ],
            labels=False,
        )
        exports = Container(
            widgets=[self._export_csv, self._export_json, self._export_masks],
            layout="horizontal",
            labels=False,
        )
        self.metric_options, self.size_histograms = MetricOptions(), SizeHistograms()
        self.cell_model = CellModelExport(lambda: self.result)
        self.results = Section("Results", [self._tables, exports, self.cell_model], labels=False)
        self.profiles = Section("Profiles", [], labels=False)
        self.sizes = Section("Size distributions", [], labels=False)
        self.sizes.append_native(self.size_histograms.canvas)
        self.sizes.visible = False  # shown with a result that has size distributions
        self.compare = CompareSection(viewer, self._compare_source)
        self.named_sections = {
            "input": Section(
                "Labels",
                [self._labels_layer, self._phases, self._legend, self._voxel_size, self._roi],
            ),
            "measurements": Section(
                "Measurements",
                [self._axes, measures, self.metric_options, self._networks, self._convention],
            ),
            "options": Section(
                "Uncertainty, device, cluster, limits",
                [
                    self._probabilities_layer,
                    self._thresholds,
                    self._device,
                    self._scheduler,
                    self._force,
                ],
                expanded=False,
            ),
            "results": self.results,
            "profiles": self.profiles,
            "sizes": self.sizes,
            "compare": self.compare,
        }
        sections = list(self.named_sections.values())
        super().__init__([*sections[:3], self.controls, self._estimate, *sections[3:]])
        self.result: AnalysisResult | None = None
        self._prefilled_voxel_size = self._voxel_size.value
        self._voxel_size_source = "default"
        self._canvas, self._figure = self._make_canvas()
        self._labels_layer.changed.connect(self._on_labels_changed)
        self._phases.changed.connect(self._on_phases_changed)
        self.controls.run_button.changed.connect(self.run)
        self._export_csv.changed.connect(lambda: self._ask_and_export("csv"))
        self._export_json.changed.connect(lambda: self._ask_and_export("json"))
        self._export_masks.changed.connect(lambda: self._ask_and_export("masks"))
        self._set_exports_enabled(False)
        self._on_labels_changed(self._labels_layer.value)
        self._on_phases_changed(self._phases.value)

    # -- choices and prefill ------------------------------------------------------------------
    def _layer_choices(self, kind: str):
        def choices(_widget=None):
            return [layer for layer in self._viewer.layers if type(layer).__name__ == kind]

        return choices

    def _make_canvas(self):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(4, 2.6), tight_layout=True)
        canvas = FigureCanvasQTAgg(figure)
        canvas.setMinimumHeight(200)
        self.profiles.append_native(canvas)
        return canvas, figure

    def _on_labels_changed(self, layer) -> None:
        self.compare.reset_choices()  # the reference is any other Labels layer
        if layer is None:
            return
        scale = [float(s) for s in layer.scale[-3:]]
        self._voxel_size.value = " ".join(f"{s:g}" for s in scale)
        self._prefilled_voxel_size = self._voxel_size.value
        source = layer.metadata.get("voxel_size_source")
        self._voxel_size_source = source or ("default" if scale == [1.0] * 3 else "metadata")
        phases = layer_phases(layer)
        if phases is not None:
            self._phases.value = phases.spec()

    def _on_phases_changed(self, text: str) -> None:
        try:
            phases = PhaseSet.parse(text)
        except BatterySegError:
            self._legend.show_phases(None)
            return
        self._legend.show_phases(phases)
        self._networks.value = "; ".join(n.spec() for n in default_networks(phases))

    # -- run ----------------------------------------------------------------------------------
    def build_config(self) -> AnalysisConfig:
        """The :class:`AnalysisConfig` of the current settings (raises on bad input)."""
        layer = self._labels_layer.value
        if layer is None:
            raise BatterySegError("No Labels layer to analyse; open or segment a volume first.")
        text = self._voxel_size.value
        try:
            voxel_size = tuple(float(v) for v in text.replace(",", " ").split())
        except ValueError:
            raise BatterySegError(
                f"Voxel size {text!r} is not three numbers, e.g. 0.5 0.5 0.5."
            ) from None
        source = "user" if text != self._prefilled_voxel_size else self._voxel_size_source
        try:
            thresholds = tuple(float(v) for v in self._thresholds.value.split())
        except ValueError:
            raise BatterySegError(
                f"Thresholds {self._thresholds.value!r}: give two numbers, e.g. 0.3 0.7."
            ) from None
        networks = [n for n in self._networks.value.split(";") if n.strip()]
        return AnalysisConfig(
            phases=PhaseSet.parse(self._phases.value),
            voxel_size=voxel_size,
            voxel_size_source=source,
            unit=str(layer.metadata.get("unit", "µm")),
            axes=self._axes.value,
            profiles=self._profiles.value,
            surfaces=self._surfaces.value,
            connectivity=self._connectivity.value,
            tortuosity=self._tortuosity.value,
            convention=self._convention.value,
            networks=tuple(networks) or None,
            device=self._device.value,
            thresholds=thresholds,
            roi=parse_roi(self._roi.value),
            force=self._force.value,
            keep_masks=True,
            cluster=ClusterOptions(scheduler=self._scheduler.value.strip() or None),
            **self.metric_options.config_fields(),
        )

    def run(self) -> None:
        """Start the analysis in a worker thread (the Analyse button)."""
        try:
            config = self.build_config()
        except BatterySegError as exc:
            self.controls.set_status(f"Error: {exc}")
            from napari.utils.notifications import show_error

            show_error(str(exc))
            return
        layer = self._labels_layer.value
        labels = displayed_volume(layer, self._viewer)
        probabilities = self._probabilities_layer.value
        probabilities = None if probabilities is None else probabilities.data
        self._estimate.value = ""
        self._clear_tables()

        def job():  # a generator function, so napari makes a cancellable GeneratorWorker
            return (yield from analyse_job(labels, config, probabilities=probabilities))

        self.controls.start(
            job,
            on_progress=self._on_progress,
            on_returned=self.show_result,
            on_errored=lambda _exc: setattr(self._estimate, "value", ""),
            on_aborted=lambda: setattr(self._estimate, "value", ""),
        )

    def _on_progress(self, event) -> None:
        if "estimate" in event.data:
            self._estimate.value = f"Estimated: {event.data['estimate']}"

    def _compare_source(self) -> tuple[Any, PhaseSet, tuple[str, ...]]:
        """What the Compare section compares: the analysed layer, its phases and axes."""
        axes = ("z", "y", "x") if self._axes.value == "all" else (self._axes.value,)
        return self._labels_layer.value, PhaseSet.parse(self._phases.value), axes

    # -- show ---------------------------------------------------------------------------------
    def show_result(self, result: AnalysisResult) -> None:
        """Fill the tables, draw the profiles and add the through-connected masks as layers."""
        self.result = result
        self._estimate.value = ""  # an estimate is stale once the job is done
        self._clear_tables()
        for table in result.tables():
            widget = Table(value=[], label=table.title)
            show_table(widget, table)
            self._tables.append(
                Section(table.title, [widget], labels=False)  # each table folds on its own
            )
            self.tables[table.title] = widget
        self._plot_profiles(result)
        self.size_histograms.show(result)
        self.sizes.visible = not self.size_histograms.canvas.isHidden()
        self.cell_model.button.enabled = True
        self._add_mask_layers(result)
        self._set_exports_enabled(True)
        notes = [n for n in result.notes if n]
        self.controls.set_status(f"Done in {self.controls.elapsed()}. " + " ".join(notes))

    def _clear_tables(self) -> None:
        self._tables.clear()
        self.tables = {}

    def _plot_profiles(self, result: AnalysisResult) -> None:
        self._figure.clear()
        if result.config.profiles:
            axes = result.config.axes
            colors = {p.name: p.color for p in result.config.phases}
            for number, axis in enumerate(axes, start=1):
                plot = self._figure.add_subplot(1, len(axes), number)
                positions = result.positions(axis)
                for name, values in result.profile(axis).items():
                    plot.plot(positions, values, label=name, color=colors[name])
                plot.set_xlabel(f"{axis} ({result.length_unit})")
                plot.set_ylim(0, 1)
                if number == 1:
                    plot.set_ylabel("volume fraction")
                    plot.legend(fontsize="small")
        self._canvas.draw_idle()

    def _add_mask_layers(self, result: AnalysisResult) -> None:
        layer = self._labels_layer.value
        space = same_space(layer, last=3)
        scale = np.asarray(space["scale"], dtype=float)
        translate = np.asarray(layer.translate[-3:], dtype=float)
        if result.config.roi:
            translate = translate + scale * np.array([r[0] for r in result.config.roi])
        for (network, axis), mask in result.masks.items():
            name = f"{network} through-connected ({axis})"
            if name in self._viewer.layers:
                target = self._viewer.layers[name]
                target.data, target.translate = mask, translate
                for key, value in space.items():
                    setattr(target, key, value)
            else:
                self._viewer.add_labels(
                    mask,
                    name=name,
                    translate=translate,
                    opacity=0.5,
                    visible=False,
                    metadata={"battery_seg": {"role": MASK}},
                    **space,
                )

    # -- export -------------------------------------------------------------------------------
    def _set_exports_enabled(self, enabled: bool) -> None:
        for button in (self._export_csv, self._export_json, self._export_masks):
            button.enabled = enabled

    def _ask_and_export(self, kind: str) -> None:
        mode = "d" if kind == "masks" else "w"
        pattern = {"csv": "*.csv", "json": "*.json", "masks": None}[kind]
        path = show_file_dialog(mode=mode, caption=f"Export {kind}", filter=pattern)
        if not path:
            return
        try:
            getattr(self, f"export_{kind}")(path, overwrite=True)
        except BatterySegError as exc:
            from napari.utils.notifications import show_error

            show_error(str(exc))

    def _require_result(self) -> AnalysisResult:
        if self.result is None:
            raise BatterySegError("Nothing to export yet: press Analyse first.")
        return self.result

    def export_csv(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the results table (one row per phase/network and axis) as CSV."""
        self._require_result().to_csv(path, overwrite=overwrite)
        return Path(path)

    def export_json(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write every number, the convention and the units as JSON."""
        self._require_result().to_json(path, overwrite=overwrite)
        return Path(path)

    def export_masks(self, folder: str | Path, *, overwrite: bool = False) -> list[Path]:
        """Write each through-connected mask as ``NETWORK_AXIS.tif``, transport axis first."""
        from ..analysis._masks import transport_axis_first

        result = self._require_result()
        folder = Path(folder)
        if not folder.is_dir():
            raise BatterySegError(f"{folder} is not a folder; choose a folder for the masks.")
        written = []
        sizes = result.config.voxel_size
        for (network, axis), mask in result.masks.items():
            index = "zyx".index(axis)
            ordered = (sizes[index], *[s for i, s in enumerate(sizes) if i != index])
            written.append(
                save_mask(
                    folder / f"{network}_{axis}.tif",
                    transport_axis_first(mask, index),
                    ordered,
                    unit=result.length_unit,
                    overwrite=overwrite,
                )
            )
        return written
