"""Layout pieces shared by the docks: a scrolling body, collapsible sections, wrapped messages
and a phase legend, so that the three docks fit a 1080p screen beside the canvas."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from magicgui.widgets import Container, Label, PushButton, TextEdit, Widget
from qtpy.QtCore import QEvent, QObject, QSize, Qt
from qtpy.QtGui import QTextOption
from qtpy.QtWidgets import QFrame, QScrollArea, QSizePolicy, QStyledItemDelegate, QTextEdit

from ..phases import PhaseSet

__all__ = [
    "MessageLabel",
    "PhaseLegend",
    "ScrollingDock",
    "Section",
    "WrappedLabel",
    "add_native",
    "show_table",
]


class _DockScrollArea(QScrollArea):
    """A vertical scroll area as wide as its content needs (up to ``MAX_WIDTH``) that asks for
    a modest height, so that docks stacked in one column share the height: napari squeezes the
    upper docks to their minimum height, which still shows a dock's first fields."""

    MAX_WIDTH, MIN_HEIGHT, PREFERRED_HEIGHT = 440, 180, 320

    def _content_width(self) -> int:
        width = (
            self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
        )
        return min(width + 2 * self.frameWidth(), self.MAX_WIDTH)

    def minimumSizeHint(self) -> QSize:
        return QSize(self._content_width(), self.MIN_HEIGHT)

    def sizeHint(self) -> QSize:
        height = self.widget().sizeHint().height() + 2 * self.frameWidth()
        return QSize(self._content_width(), min(height, self.PREFERRED_HEIGHT))


class ScrollingDock(Container):
    """A dock whose body scrolls: its minimum height stays small whatever it holds.

    napari docks a magicgui widget's ``native`` widget, which would drop the scroll area of a
    ``Container(scrollable=True)``; here the scroll area sits inside the dock's own layout.
    """

    def __init__(self, widgets: Sequence[Widget]) -> None:
        super().__init__(labels=False)
        self.body = Container(widgets=widgets, labels=False)
        self.body.native.layout().addStretch(1)  # pack the sections at the top
        area = _DockScrollArea()
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        area.setWidget(self.body.native)
        self.scroll_area = area
        self.native.layout().addWidget(area)
        self.margins = (0, 0, 0, 0)

    def reset_choices(self, *_: Any) -> None:
        self.body.reset_choices()

    def sections(self) -> list[Section]:
        """Every :class:`Section` in the dock, outermost first."""
        found, todo = [], [self.body]
        while todo:
            widget = todo.pop(0)
            if isinstance(widget, Section):
                found.append(widget)
            if isinstance(widget, Container):
                todo.extend(widget)
        return found


class Section(Container):
    """A titled group of widgets that folds away with a click on its title."""

    def __init__(
        self, title: str, widgets: Sequence[Widget], *, expanded: bool = True, labels: bool = True
    ) -> None:
        self.title = title
        self.toggle = PushButton(text=title)
        self.toggle.native.setFlat(True)
        self.toggle.native.setStyleSheet("text-align: left; font-weight: bold; padding: 2px;")
        self.body = Container(widgets=widgets, labels=labels)
        self.body.margins = (8, 0, 0, 4)
        super().__init__(widgets=[self.toggle, self.body], labels=False)
        self.margins = (0, 0, 0, 0)
        self.toggle.changed.connect(lambda: self.set_expanded(not self.expanded))
        self.set_expanded(expanded)

    @property
    def expanded(self) -> bool:
        return not self.body.native.isHidden()

    def set_expanded(self, expanded: bool) -> None:
        self.body.native.setHidden(not expanded)
        self.toggle.text = f"{'▾' if expanded else '▸'} {self.title}"

    def append_native(self, widget: Any) -> None:
        """Add a plain Qt widget (a plot) to the section's body."""
        add_native(self.body, widget)


def add_native(container: Container, widget: Any) -> None:
    """Add a plain Qt widget at the end of a magicgui container's layout."""
    container.native.layout().addWidget(widget)


class MessageLabel(TextEdit):
    """A status or error message that wraps to the dock's width and never widens it.

    It grows with its text up to ``max_lines`` lines, then scrolls; long words (paths) wrap
    anywhere; the text can be selected and copied.
    """

    def __init__(self, value: str = "", max_lines: int = 5, **kwargs: Any) -> None:
        self.max_lines = max_lines
        super().__init__(value="", **kwargs)
        box = self.native
        box.setReadOnly(True)
        box.setFrameShape(QFrame.NoFrame)
        box.setLineWrapMode(QTextEdit.WidgetWidth)
        box.setWordWrapMode(QTextOption.WrapAtWordBoundaryOrAnywhere)
        box.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        box.viewport().setAutoFillBackground(False)
        box.setStyleSheet("QTextEdit { background: transparent; }")
        box.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
        box.setMinimumWidth(40)
        box.document().documentLayout().documentSizeChanged.connect(self._fit)
        self.value = value

    @property
    def value(self) -> str:  # type: ignore[override]
        return self.native.toPlainText()

    @value.setter
    def value(self, text: str) -> None:
        self.native.setPlainText(text)
        self._fit()

    def _fit(self, *_: Any) -> None:
        box = self.native
        lines = box.fontMetrics().lineSpacing()
        document = int(box.document().size().height()) + 2 * box.frameWidth()
        margin = int(box.document().documentMargin())
        height = min(document, self.max_lines * lines + 2 * margin)
        box.setFixedHeight(max(height, lines + 2 * margin) if box.toPlainText() else 0)


class WrappedLabel(Label):
    """Rich text that wraps to the dock's width instead of setting it."""

    def __init__(self, value: str = "", **kwargs: Any) -> None:
        super().__init__(value=value, **kwargs)
        self.native.setWordWrap(True)
        self.native.setTextFormat(Qt.RichText)
        self.native.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)


class PhaseLegend(WrappedLabel):
    """Coloured squares with the phases' label values and names: what to paint with what."""

    def __init__(self, phases: PhaseSet | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phases: PhaseSet | None = None
        self.show_phases(phases)

    def show_phases(self, phases: PhaseSet | None) -> None:
        self.phases = phases
        if phases is None:
            self.native.setText("")
            return
        items = [
            f'<span style="color:{p.color}; font-size:large">■</span>&nbsp;{p.value}&nbsp;'
            f"{escape(p.name)}"
            for p in phases
        ]
        self.native.setText("&nbsp;&nbsp; ".join(items))

    @property
    def text(self) -> str:
        """The legend as plain text, e.g. ``■ 1 pore   ■ 2 silicon``."""
        if self.phases is None:
            return ""
        return "   ".join(f"■ {p.value} {p.name}" for p in self.phases)


def show_table(widget: Any, table: Any) -> None:
    """Fill a magicgui ``Table`` from a :class:`~battery_seg.analysis._tables.ResultTable` and
    size it to its rows (the dock scrolls, not the table); columns fit their contents, numbers
    are right-aligned as formatted (magicgui's own number formatting is switched off) and a
    horizontal scroll bar reaches the columns beyond the dock's width."""
    widget.value = table.to_dict()
    widget.read_only = True
    native = widget.native
    native.setItemDelegate(QStyledItemDelegate(native))
    for row in range(native.rowCount()):
        for column in range(native.columnCount()):
            item = native.item(row, column)
            if item is not None:
                item.setTextAlignment(int(Qt.AlignRight | Qt.AlignVCenter))
    native.resizeColumnsToContents()
    native.resizeRowsToContents()
    native.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
    native.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    native.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Fixed)
    _fit_rows(native)
    # Headers and rows take their final heights (two-line column titles, the style's fonts)
    # only once the table is shown: fit again then, so no row hides behind the scroll bar.
    if not hasattr(native, "_row_fitter"):
        native._row_fitter = _RowFitter(native)
        native.installEventFilter(native._row_fitter)
    native.setToolTip(table.title)


def _fit_rows(native: Any) -> None:
    """A fixed height that shows the header, every row and the horizontal scroll bar."""
    native.resizeRowsToContents()
    header = max(native.horizontalHeader().height(), native.horizontalHeader().sizeHint().height())
    rows = sum(native.rowHeight(r) for r in range(native.rowCount()))
    bar = native.horizontalScrollBar().sizeHint().height()
    native.setFixedHeight(header + rows + bar + 2 * native.frameWidth() + 4)


class _RowFitter(QObject):
    """Refits a table's height when it is shown or its style or font changes."""

    _EVENTS = (QEvent.Show, QEvent.StyleChange, QEvent.FontChange, QEvent.Polish)

    def eventFilter(self, watched: Any, event: Any) -> bool:
        if event.type() in self._EVENTS:
            _fit_rows(watched)
        return False
