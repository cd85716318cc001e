"""A small live matplotlib plot of training loss and per-phase validation IoU for a dock."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from ..phases import PhaseSet

__all__ = ["TrainingPlot"]


class TrainingPlot:
    """Loss (top) and validation IoU per phase (bottom) against the epoch."""

    def __init__(self) -> None:
        self.figure = Figure(figsize=(3.6, 3.4), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(260)
        self.loss_axes, self.iou_axes = self.figure.subplots(2, 1, sharex=True)
        self.epochs: list[int] = []
        self.losses: list[float] = []
        self.iou: dict[str, list[float]] = {}
        self._colors: dict[str, str] = {}
        self.reset(None)

    def reset(self, phases: PhaseSet | None) -> None:
        """Clear the curves; ``phases`` gives the IoU curves' names and colours."""
        self.epochs, self.losses = [], []
        self.iou = {p.name: [] for p in phases} if phases is not None else {}
        self._colors = {p.name: p.color for p in phases} if phases is not None else {}
        self._draw()

    def add_epoch(self, data: dict) -> None:
        """Append one epoch's ``{"epoch", "loss", "val_iou"}`` and redraw."""
        self.epochs.append(int(data["epoch"]))
        self.losses.append(float(data["loss"]))
        for name in self.iou:
            self.iou[name].append(float(data["val_iou"].get(name, float("nan"))))
        self._draw()

    @property
    def n_points(self) -> int:
        """Epochs plotted so far."""
        return len(self.epochs)

    def _draw(self) -> None:
        loss_axes, iou_axes = self.loss_axes, self.iou_axes
        loss_axes.clear()
        iou_axes.clear()
        loss_axes.plot(self.epochs, self.losses, "k.-", label="training loss")
        loss_axes.set_ylabel("loss")
        for name, values in self.iou.items():
            color = self._colors.get(name)
            iou_axes.plot(self.epochs, values, ".-", color=color, label=name)
        iou_axes.set_ylim(0, 1.02)
        iou_axes.set_ylabel("validation IoU")
        iou_axes.set_xlabel("epoch")
        if self.iou:
            iou_axes.legend(fontsize="x-small", loc="lower right", ncol=2)
        for axes in (loss_axes, iou_axes):
            axes.tick_params(labelsize="x-small")
            axes.grid(alpha=0.3)
        self.canvas.draw_idle()
