"""The Train dock's image / labels pairs: which painted layer goes with which image.

Labels layers are offered painted strokes first (see
:func:`~battery_seg._widgets._strokes.rank_labels_layers`), so a new pair picks the strokes, not
the ground truth or a segmentation; a strokes layer added later is selected in the pairs that had
none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import ComboBox, Container, PushButton

from ..errors import BatterySegError
from ..phases import PhaseSet
from ..training import TrainingPair
from ._space import displayed_volume, voxel_size_um
from ._strokes import STROKES, layer_phases, layer_role, rank_labels_layers

__all__ = ["PairList", "PairRow"]


class PairRow(Container):
    """One image layer and the labels layer painted on it, with a remove button."""

    def __init__(self, owner: PairList) -> None:
        self.image_box = ComboBox(label="image", choices=owner.layers_of("Image"))
        self.labels_box = ComboBox(label="labels", choices=owner.layers_of("Labels"))
        self.remove_button = PushButton(text="−", tooltip="remove this pair")
        self.remove_button.max_width = 30
        super().__init__(
            widgets=[self.image_box, self.labels_box, self.remove_button],
            layout="horizontal",
            labels=False,
        )
        self.margins = (0, 0, 0, 0)
        self.remove_button.changed.connect(lambda: owner.remove(self))
        self.labels_box.changed.connect(owner.labels_changed)


class PairList(Container):
    """The pairs; ``on_labels`` is called with a labels layer's phase set when one is chosen."""

    def __init__(self, viewer: Any, on_labels: Callable[[PhaseSet], None]) -> None:
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self._viewer = viewer
        self._on_labels = on_labels
        viewer.layers.events.inserted.connect(self.layers_changed)
        viewer.layers.events.removed.connect(self.layers_changed)

    @property
    def rows(self) -> list[PairRow]:
        return list(self)

    def layers_of(self, kind: str) -> Callable[..., list]:
        """Choices callback: the viewer's layers of type ``kind``, newest first; Labels layers
        with painted strokes before ground truth and segmentations."""

        def choices(_widget: Any = None) -> list:
            layers = [layer for layer in self._viewer.layers if type(layer).__name__ == kind]
            return rank_labels_layers(layers) if kind == "Labels" else list(reversed(layers))

        return choices

    def add(self) -> PairRow:
        row = PairRow(self)
        self.append(row)
        self.labels_changed()
        return row

    def remove(self, row: PairRow) -> None:
        if len(self) > 1:
            super().remove(row)

    def layers_changed(self, event: Any = None) -> None:
        new = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" else None
        for row in self.rows:
            row.image_box.reset_choices()
            row.labels_box.reset_choices()
            if new is not None and layer_role(new) == STROKES:
                if layer_role(row.labels_box.value) != STROKES:  # a new strokes layer wins
                    row.labels_box.value = new

    def labels_changed(self, _value: Any = None) -> None:
        """Report the phase set the first labels layer that names one has."""
        for row in self.rows:
            phases = layer_phases(row.labels_box.value)
            if phases is not None:
                self._on_labels(phases)
                return

    def pairs(self, phases: PhaseSet | None = None) -> list[TrainingPair]:
        """The selected image / labels layers as training pairs (labels are never modified)."""
        pairs = []
        for row in self.rows:
            image, labels = row.image_box.value, row.labels_box.value
            if image is None or labels is None:
                raise BatterySegError(
                    "Select an image layer and the labels layer painted on it (press 'New "
                    "strokes layer', then paint strokes of every phase)."
                )
            own = layer_phases(labels)
            if phases is not None and own is not None and own.names != phases.names:
                raise BatterySegError(
                    f"Labels layer {labels.name!r} names its phases {own.describe()}, not "
                    f"{phases.describe()}; set 'phases' to {own.spec()}."
                )
            data = displayed_volume(image, self._viewer)  # the time point / channel shown
            name = f"labels layer {labels.name!r} (image {image.name!r})"
            strokes = displayed_volume(labels, self._viewer)
            pairs.append(TrainingPair(data, strokes, name, voxel_size_um(image)))
        return pairs
