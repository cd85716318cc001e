"""The Analyse dock's cell-model metrics: options, size histograms and the PyBaMM export.

:class:`MetricOptions` gathers the :class:`~battery_seg.analysis.AnalysisConfig` fields of the
size distributions, representativity and multi-phase transport; :class:`SizeHistograms` draws
each phase's continuous size distribution and its particle diameters; :class:`CellModelExport`
writes :func:`~battery_seg.analysis.write_cell_parameters`. The Analyse dock only places them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, LineEdit, PushButton, show_file_dialog
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from ..analysis import AnalysisResult, write_cell_parameters
from ..errors import BatterySegError

__all__ = ["CellModelExport", "MetricOptions", "SizeHistograms"]


class MetricOptions(Container):
    """Checkboxes and fields for sizes, representativity, porous CBD and electronic paths."""

    def __init__(self) -> None:
        self.size_distribution = CheckBox(text="size distributions", value=False)
        self.representativity = CheckBox(text="representativity (95 % CI)", value=False)
        self.cbd_diffusivity = LineEdit(
            label="CBD diffusivity",
            value="",
            tooltip="relative electrolyte diffusivity in the CBD (e.g. 0.1) for a porous-CBD "
            "tortuosity; empty = off",
        )
        self.conductivity = LineEdit(
            label="conductivity",
            value="",
            tooltip="relative conductivities for the electronic tortuosity, e.g. "
            "active=1,cbd=0.01; empty = off",
        )
        checks = Container(
            widgets=[self.size_distribution, self.representativity],
            layout="horizontal",
            labels=False,
        )
        super().__init__(widgets=[checks, self.cbd_diffusivity, self.conductivity])
        self.margins = (0, 0, 0, 0)

    def config_fields(self) -> dict[str, Any]:
        """The AnalysisConfig fields of these settings (raises on a malformed number)."""
        text = self.cbd_diffusivity.value.strip()
        try:
            diffusivity = float(text) if text else None
        except ValueError:
            raise BatterySegError(
                f"CBD diffusivity {text!r} is not a number; give e.g. 0.1, or leave it empty."
            ) from None
        return {
            "size_distribution": self.size_distribution.value,
            "representativity": self.representativity.value,
            "cbd_diffusivity": diffusivity,
            "conductivity": self.conductivity.value.strip() or None,
        }


class SizeHistograms:
    """Volume-weighted size distributions (lines) and particle diameters (bars) per phase."""

    def __init__(self) -> None:
        self.figure = Figure(figsize=(4, 2.4), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(180)
        self.canvas.setVisible(False)

    def show(self, result: AnalysisResult) -> None:
        """Draw the histograms of ``result`` (hidden when it has no size distributions)."""
        self.figure.clear()
        metrics = result.metrics
        if metrics is None or not metrics.sizes:
            self.canvas.setVisible(False)
            return
        colors = {p.name: p.color for p in result.config.phases}
        unit = result.length_unit
        continuous, discrete = self.figure.subplots(1, 2)
        for name, sizes in metrics.sizes.items():
            continuous.plot(sizes.diameters, sizes.volume_fraction, "o-", ms=2, color=colors[name])
            continuous.plot([], [], color=colors[name], label=f"{name} D50 {sizes.d50:.3g}")
        for name, found in metrics.particles.items():
            if found.diameters.size:
                bins = np.histogram_bin_edges(found.diameters, bins="auto")
                discrete.hist(found.diameters, bins=bins, color=colors[name], alpha=0.6)
        continuous.set_xlabel(f"local thickness ({unit})")
        continuous.set_ylabel("volume fraction")
        continuous.legend(fontsize="x-small")
        discrete.set_xlabel(f"particle diameter ({unit})")
        discrete.set_ylabel("particles")
        self.canvas.setVisible(True)
        self.canvas.draw_idle()


class CellModelExport(Container):
    """Electrode choice and an "Export PyBaMM…" button for the last result."""

    def __init__(self, result_of) -> None:
        self._result_of = result_of
        self.electrode = ComboBox(label="electrode", choices=["negative", "positive"])
        self.button = PushButton(text="Export PyBaMM…")
        self.button.enabled = False
        super().__init__(widgets=[self.electrode, self.button], layout="horizontal")
        self.margins = (0, 0, 0, 0)
        self.button.changed.connect(self._ask_and_export)

    def _ask_and_export(self) -> None:
        path = show_file_dialog(mode="w", caption="Export PyBaMM parameters", filter="*.json")
        if not path:
            return
        try:
            self.export(path, overwrite=True)
        except BatterySegError as exc:
            from napari.utils.notifications import show_error

            show_error(str(exc))

    def export(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the PyBaMM parameters and BPX fragment of the last result as JSON."""
        result = self._result_of()
        if result is None:
            raise BatterySegError("Nothing to export yet: press Analyse first.")
        return write_cell_parameters(result, path, self.electrode.value, overwrite=overwrite)
