"""Phase sets: the named phases of an electrode and their label values.

A :class:`PhaseSet` is used everywhere a label value meets a name: napari Labels layers, label
files, model checkpoints, statistics and the CLI. Phases always carry the label values 1..K in
their order; 0 means *unlabelled* / *unpainted* (napari's convention). Label files written by other
tools may use other values (``pore=0,nmc=85,cbd=170``); those are kept as ``source_value`` and
:meth:`PhaseSet.encode` maps them to 1..K.

Examples
--------
>>> phases = PhaseSet.parse("si-graphite")
>>> phases.names
('pore', 'silicon', 'cbd', 'graphite')
>>> phases.value_of("cbd")
3
>>> foreign = PhaseSet.parse("pore=0,nmc=85,cbd=170")
>>> foreign.encode(np.array([0, 85, 170], dtype=np.uint8)).tolist()
[1, 2, 3]
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import BatterySegError

__all__ = ["PRESETS", "Phase", "PhaseSet"]

# Colours chosen to stay distinguishable for common colour-vision deficiencies (Okabe-Ito).
_PALETTE = ("#56b4e9", "#e69f00", "#009e73", "#7f7f7f", "#cc79a7", "#f0e442", "#0072b2", "#d55e00")
_PRESET_COLOURS = {
    "pore": "#56b4e9",
    "silicon": "#e69f00",
    "cbd": "#009e73",
    "graphite": "#5a5a5a",
    "active": "#d55e00",
    "nmc": "#d55e00",
}
PRESETS: dict[str, tuple[str, ...]] = {
    "si-graphite": ("pore", "silicon", "cbd", "graphite"),
    "nmc": ("pore", "active", "cbd"),
}
DEFAULT_PRESET = "si-graphite"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
#: Largest file value a phase may have: label tables cover 0..value (16 MiB at this limit).
MAX_LABEL_VALUE = 2**24 - 1


@dataclass(frozen=True)
class Phase:
    """One phase: its name, label value (1..K), display colour and value in a foreign file."""

    name: str
    value: int
    color: str
    source_value: int | None = None


@dataclass(frozen=True)
class PhaseSet:
    """An ordered set of phases with label values 1..K.

    Build one with :meth:`parse` (a preset name, a comma list of names, or ``NAME=VALUE`` pairs)
    or :meth:`from_names`.
    """

    phases: tuple[Phase, ...]
    preset: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.phases:
            raise BatterySegError("A phase set needs at least one phase, e.g. 'pore,active,cbd'.")
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise BatterySegError(f"Phase names must be unique, got {', '.join(names)}.")
        if [p.value for p in self.phases] != list(range(1, len(self.phases) + 1)):
            raise BatterySegError("Phase label values must be 1..K in order (0 means unlabelled).")
        sources = [p.source_value for p in self.phases if p.source_value is not None]
        if len(set(sources)) != len(sources):
            raise BatterySegError(f"Two phases share one file value in {sources}.")
        for p in self.phases:
            if p.source_value is not None and not 0 <= p.source_value <= MAX_LABEL_VALUE:
                raise BatterySegError(
                    f"Phase {p.name!r} has the file value {p.source_value}; label values go from "
                    f"0 to {MAX_LABEL_VALUE:,} (a table up to {p.source_value:,} would need "
                    f"{_size(p.source_value + 1)} of memory). Check the NAME=VALUE pairs."
                )

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_names(
        cls, names: Sequence[str], source_values: Sequence[int] | None = None
    ) -> PhaseSet:
        """Phase set with values 1..K in the order of ``names``."""
        phases = []
        for i, name in enumerate(names):
            name = name.strip()
            if not _NAME.match(name):
                raise BatterySegError(
                    f"Invalid phase name {name!r}: use letters, digits, '-' or '_' and start "
                    "with a letter, e.g. 'pore,active,cbd'."
                )
            color = _PRESET_COLOURS.get(name.lower(), _PALETTE[i % len(_PALETTE)])
            source = None if source_values is None else int(source_values[i])
            phases.append(Phase(name, i + 1, color, source))
        return cls(tuple(phases))

    @classmethod
    def parse(cls, spec: str | PhaseSet | None) -> PhaseSet:
        """Phase set from a preset name, ``a,b,c`` or ``a=0,b=85,c=170``.

        ``None`` or an empty string gives the default preset (``si-graphite``).
        """
        if isinstance(spec, PhaseSet):
            return spec
        spec = (spec or DEFAULT_PRESET).strip()
        if spec.lower() in PRESETS:
            names = PRESETS[spec.lower()]
            phases = cls.from_names(names).phases
            return cls(phases, preset=spec.lower())
        items = [s.strip() for s in spec.split(",")]
        if not any(items):
            raise BatterySegError(f"Empty phase list {spec!r}; {_SPEC_HELP}")
        if not all(items):
            number = items.index("") + 1
            raise BatterySegError(
                f"Phase list {spec!r} has an empty entry (number {number}, between two commas "
                f"or at an end); remove it or name the phase; {_SPEC_HELP}"
            )
        with_values = ["=" in s for s in items]
        if any(with_values) and not all(with_values):
            raise BatterySegError(
                f"Mixed plain names and NAME=VALUE pairs in {spec!r}; {_SPEC_HELP}"
            )
        if not any(with_values):
            if len(items) == 1:
                raise BatterySegError(
                    f"Unknown phase preset {spec!r}; presets are {', '.join(PRESETS)}. "
                    f"For a custom set give at least two names. {_SPEC_HELP}"
                )
            return cls.from_names(items)
        names, values = [], []
        for item in items:
            name, _, value = item.partition("=")
            try:
                values.append(int(value))
            except ValueError:
                raise BatterySegError(
                    f"Phase value {value!r} for {name!r} is not an integer; {_SPEC_HELP}"
                ) from None
            names.append(name)
        return cls.from_names(names, values)

    # -- views --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.phases)

    def __iter__(self) -> Iterator[Phase]:
        return iter(self.phases)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.phases)

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(p.value for p in self.phases)

    @property
    def has_source_values(self) -> bool:
        return any(p.source_value is not None for p in self.phases)

    def value_of(self, name: str) -> int:
        """Label value (1..K) of the phase called ``name`` (case-insensitive)."""
        for p in self.phases:
            if p.name.lower() == name.lower():
                return p.value
        raise BatterySegError(f"No phase {name!r} in this phase set; phases are {self._listing()}.")

    def __getitem__(self, name: str) -> Phase:
        return self.phases[self.value_of(name) - 1]

    def _listing(self) -> str:
        return ", ".join(self.names)

    def describe(self) -> str:
        """One line such as ``1=pore, 2=silicon, 3=cbd, 4=graphite``."""
        return ", ".join(f"{p.value}={p.name}" for p in self.phases)

    def spec(self) -> str:
        """The string that :meth:`parse` turns back into this phase set."""
        if self.preset:
            return self.preset
        if self.has_source_values:
            return ",".join(f"{p.name}={p.source_value}" for p in self.phases)
        return ",".join(self.names)

    def colormap(self) -> dict[int | None, str]:
        """``{label value: colour}`` for a napari Labels layer's ``DirectLabelColormap``."""
        colors: dict[int | None, str] = {0: "transparent", None: "#ff00ff"}
        colors.update({p.value: p.color for p in self.phases})
        return colors

    def to_dict(self) -> dict:
        """JSON-able description (stored in checkpoints and OME-Zarr metadata)."""
        return {
            "preset": self.preset,
            "phases": [
                {"name": p.name, "value": p.value, "color": p.color, "source_value": p.source_value}
                for p in self.phases
            ],
        }

    @classmethod
    def from_dict(cls, d: dict) -> PhaseSet:
        """The phase set :meth:`to_dict` describes, read from a file's metadata or a checkpoint.

        Names are made safe (letters, digits, ``-``, ``_``; any other character, such as a
        terminal escape or a spreadsheet formula's ``=``, becomes ``_``) and colours that are
        not ``#rrggbb`` get the palette's; a description that cannot be read raises.
        """
        try:
            items = list(d["phases"])
            phases = []
            for i, p in enumerate(items):
                color = str(p.get("color", ""))
                source = p.get("source_value")
                phases.append(
                    Phase(
                        _safe_name(p["name"], i, [q.name for q in phases]),
                        int(p["value"]),
                        color if _COLOUR.match(color) else _PALETTE[i % len(_PALETTE)],
                        None if source is None else int(source),
                    )
                )
            preset = d.get("preset")
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise BatterySegError(
                f"The phase description is damaged ({type(exc).__name__}: {exc}); give the "
                "phases explicitly (--phases)."
            ) from None
        return cls(tuple(phases), preset=preset if preset in PRESETS else None)

    # -- label arrays -------------------------------------------------------------------------
    def encode(self, labels: np.ndarray, *, strict: bool = True) -> np.ndarray:
        """Map a label array of this set's file values to 1..K (uint8).

        Without file values (``NAME=VALUE``) the labels already use 1..K and 0 = unlabelled; they
        are checked and returned as uint8. Values outside the set raise a
        :class:`BatterySegError` when ``strict`` and become 0 otherwise. Works block-wise on dask
        arrays through ``map_blocks``.
        """
        if labels.dtype.kind not in "ui" or (labels.size and int(labels.min()) < 0):
            raise BatterySegError(f"Labels must hold non-negative integers, got {labels.dtype}.")
        if strict and labels.size:
            unknown = self.unknown_values(labels)
            if unknown:
                raise BatterySegError(
                    f"Label values {unknown} are not in the phase set ({self._value_listing()}). "
                    "Pass the phase set that matches the file, e.g. --phases pore=0,nmc=85,cbd=170."
                )
        lut = self.lookup_table(int(labels.max()) if labels.size else 0)
        top = len(lut) - 1
        return np.where(labels <= top, lut[np.minimum(labels, top)], np.uint8(0))

    def unknown_values(self, labels: np.ndarray) -> list[int]:
        """Distinct values in ``labels`` that name no phase (0 is allowed without file values)."""
        present = np.unique(np.asarray(labels))
        allowed = set(self._source_or_value())
        if not self.has_source_values:
            allowed.add(0)
        return [int(v) for v in present if int(v) not in allowed]

    def lookup_table(self, max_value: int) -> np.ndarray:
        """uint8 table mapping file values ``0..max_value`` to 1..K (0 elsewhere); values above
        the phases' largest file value map to 0 too, so the table stops there."""
        top = max(min(max_value, max(self._source_or_value())), *self._source_or_value())
        lut = np.zeros(top + 1, dtype=np.uint8)
        for p, source in zip(self.phases, self._source_or_value(), strict=True):
            lut[source] = p.value
        return lut

    def _source_or_value(self) -> list[int]:
        return [p.value if p.source_value is None else p.source_value for p in self.phases]

    def _value_listing(self) -> str:
        return ", ".join(
            f"{v}={n}" for v, n in zip(self._source_or_value(), self.names, strict=True)
        )


def _safe_name(name: object, index: int, taken: list[str]) -> str:
    """A phase name from a file, reduced to letters, digits, ``-`` and ``_``."""
    text = re.sub(r"[^A-Za-z0-9_\-]", "_", str(name))[:40].strip("_-")
    if not text or not text[0].isalpha():
        text = f"phase{index + 1}" if not text else f"p{text}"
    return text if text not in taken else f"{text}_{index + 1}"


def _size(nbytes: int) -> str:
    from .checks import format_bytes

    return format_bytes(nbytes)


_SPEC_HELP = (
    "give a preset (si-graphite, nmc), a comma list of names (pore,active,cbd) "
    "or NAME=VALUE pairs for label files from other tools (pore=0,nmc=85,cbd=170)."
)
