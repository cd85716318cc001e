"""The Analyse dock's "Compare with reference" section: the analysed labels against a reference
Labels layer (ground truth, a manual segmentation, another model's), as
``battery-seg compare`` does: per-phase IoU and Dice, fractions, connectivity, confusion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Table

from ..analysis import Comparison, compare_job
from ..errors import BatterySegError
from ._jobs import JobControls
from ._layout import MessageLabel, Section, show_table
from ._strokes import layer_phases

__all__ = ["CompareSection"]


class CompareSection(Section):
    """Pick a reference layer, press Compare, read the scores.

    ``source()`` returns what the dock analyses: ``(labels layer, phase set, axes)``.
    """

    def __init__(self, viewer: Any, source: Callable[[], tuple[Any, Any, tuple[str, ...]]]):
        self._viewer = viewer
        self._source = source
        self._reference = ComboBox(
            label="reference",
            choices=self._references,
            tooltip="the Labels layer to score against (its 0s are not scored)",
        )
        self._connectivity = CheckBox(
            text="compare through-connected fractions (in memory)", value=True
        )
        self.controls = JobControls("Compare", "Compare with reference")
        self.table = Table(value=[])
        self.confusion = Table(value=[])
        self.summary = MessageLabel(max_lines=6)
        for table in (self.table, self.confusion):
            table.visible = False
        self.result: Comparison | None = None
        super().__init__(
            "Compare with reference",
            [
                self._reference,
                self._connectivity,
                self.controls,
                self.table,
                self.confusion,
                self.summary,
            ],
            expanded=False,
        )
        self.controls.run_button.changed.connect(self.run)

    def _references(self, _widget: Any = None) -> list:
        analysed = self._source()[0] if self._viewer.layers else None
        layers = [layer for layer in self._viewer.layers if type(layer).__name__ == "Labels"]
        return [layer for layer in reversed(layers) if layer is not analysed]

    def run(self) -> None:
        """Compare in a worker thread; errors become the status line and a notification."""
        from napari.utils.notifications import show_error

        try:
            layer, phases, axes = self._source()
            reference = self._reference.value
            if layer is None or reference is None:
                raise BatterySegError(
                    "Choose the labels to analyse and a different Labels layer as reference."
                )
        except BatterySegError as exc:
            self.controls.set_status(f"Error: {exc}")
            show_error(str(exc))
            return
        seg = layer.data[0] if layer.multiscale else layer.data
        ref = reference.data[0] if reference.multiscale else reference.data
        theirs = layer_phases(reference)
        axes = axes if self._connectivity.value else ()

        def job():
            return (yield from compare_job(seg, ref, phases, reference_phases=theirs, axes=axes))

        self.result = None
        self.controls.start(job, on_returned=self.show_result)

    def show_result(self, result: Comparison) -> None:
        self.result = result
        show_table(self.table, result.table())
        show_table(self.confusion, result.confusion_table())
        for table in (self.table, self.confusion):
            table.visible = True
        remarks = " ".join(result.remarks())
        self.controls.set_status(
            f"Done in {self.controls.elapsed()}: mean IoU {result.mean_iou:.4f}. {remarks}"
        )
