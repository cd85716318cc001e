"""The analysis result as small tables readable at a glance (the dock and ``battery-seg stats``).

One table per kind of measurement (fractions and connectivity, surfaces, tortuosity), so each
fits beside the image; every column names its unit (on a second title line); one number format
per column (plain decimals, never ``7.012e-02`` beside ``0.3492``); a number with an uncertainty
range reads ``0.3492 (0.3401–0.3550)``. New measurements add a table (see
:func:`result_tables`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ResultTable", "format_column", "result_tables", "text_table"]

DIMENSIONLESS = "–"
_CONNECTIVITY = (("through", "through"), ("front", "front only"), ("isolated", "isolated"))


@dataclass
class ResultTable:
    """A titled table: row names, column titles (with units) and formatted cells."""

    title: str
    columns: list[str]
    index: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """``{"data", "index", "columns"}``, the form magicgui's ``Table`` takes."""
        return {"data": self.rows, "index": self.index, "columns": self.columns}


def _number(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _decimals(values: Sequence[float], significant: int) -> int:
    """Decimals that give the column's largest finite value ``significant`` digits."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return significant
    return max(0, significant - 1 - math.floor(math.log10(max(finite))))


def format_column(
    values: Sequence[Any],
    ranges: Sequence[tuple[Any, Any] | None] | None = None,
    *,
    digits: int = 4,
    decimals: int | None = None,
) -> list[str]:
    """Cells of one column in one format: the same ``decimals`` for every row (by default the
    largest value gets ``digits`` significant digits), ``(low–high)`` after a value with a
    range; ``-`` for missing values, ``n/a`` for NaN, ``inf`` for infinity.

    Examples
    --------
    >>> format_column([0.07012, 0.3492, 1.5])
    ['0.070', '0.349', '1.500']
    >>> format_column([0.35, None], [(0.34, 0.36), None])
    ['0.3500 (0.3400–0.3600)', '-']
    """
    numbers = [_number(v) for v in values]
    spans = list(ranges) if ranges is not None else [None] * len(values)
    every = numbers + [_number(x) for span in spans if span for x in span]
    if decimals is None:
        decimals = _decimals([v for v in every if v is not None], digits)

    def cell(value: float | None) -> str:
        if value is None:
            return "-"
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = f"{value:.{decimals}f}"
        return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no -0.00

    cells = []
    for value, span in zip(numbers, spans, strict=True):
        text = cell(value)
        if value is not None and span and _number(span[0]) is not None:
            text += f" ({cell(_number(span[0]))}–{cell(_number(span[1]))})"
        cells.append(text)
    return cells


def _table(
    title: str, rows: list[dict[str, Any]], label: Callable, columns: Sequence[tuple]
) -> ResultTable:
    """A table of ``columns`` = (key of the row dicts, title with unit[, fixed decimals])."""
    table = ResultTable(title, [c[1] for c in columns], [label(r) for r in rows])
    cells = []
    for key, _, *fixed in columns:
        ranges = [
            (row.get(f"{key}_min", ""), row.get(f"{key}_max", ""))
            if row.get(f"{key}_min", "") != ""
            else None
            for row in rows
        ]
        if key == "tortuosity_converged":
            cells.append([_yes_no(row.get(key)) for row in rows])
        else:
            values = [row.get(key) for row in rows]
            cells.append(format_column(values, ranges, decimals=fixed[0] if fixed else None))
    table.rows = [list(row) for row in zip(*cells, strict=True)] if rows else []
    return table


def _yes_no(value: Any) -> str:
    return "-" if value in ("", None) else ("yes" if value else "NO")


def result_tables(result: Any) -> list[ResultTable]:
    """The tables of an :class:`~battery_seg.analysis.AnalysisResult` that has their numbers."""
    unit, d = result.length_unit, DIMENSIONLESS
    every = result.rows()
    rows = [r for r in every if r["kind"] != "multiphase"]
    axes = list(result.config.axes)
    first_axis = [r for r in rows if r["axis"] == axes[0]]
    tables = []
    columns = [("volume_fraction", f"volume fraction\n({d})", 4)]
    for axis in axes if result.connectivity else ():
        for key, title in _CONNECTIVITY:
            columns.append((f"{key}_{axis}", f"{title} {axis}\n({d})", 4))
    merged = []
    for row in first_axis:
        merged_row = dict(row)
        for other in (r for r in rows if r["name"] == row["name"]):
            for key in ("through", "front", "isolated"):
                for suffix in ("", "_min", "_max"):
                    merged_row[f"{key}_{other['axis']}{suffix}"] = other.get(
                        f"{key}_fraction{suffix}", ""
                    )
        merged.append(merged_row)
    tables.append(
        _table(
            "Volume fractions and connectivity",
            merged,
            lambda r: r["name"],
            columns,
        )
    )
    if result.surfaces is not None:
        tables.append(_surface_table(result, first_axis, unit))
    if result.tortuosity:
        solved = [r for r in rows if r["tortuosity"] != ""]
        tables.append(
            _table(
                "Tortuosity (TauFactor)",
                solved,
                lambda r: f"{r['name']} {r['axis']}",
                [
                    ("tortuosity", f"τ\n({d})"),
                    ("effective_diffusivity", f"D_eff/D₀\n({d})"),
                    ("macmullin", f"N_M\n({d})"),
                    ("bruggeman_tortuosity", f"τ Bruggeman\n({d})"),
                    ("tortuosity_converged", "converged"),
                ],
            )
        )
    return tables + _metric_tables(result, first_axis, every, unit)


def _metric_tables(
    result: Any, phase_rows: list[dict], every: list[dict], unit: str
) -> list[ResultTable]:
    """Sizes and particles, representativity and multi-phase transport, when they ran."""
    d, tables = DIMENSIONLESS, []
    phases = [r for r in phase_rows if r["kind"] == "phase"]
    sized = [r for r in phases if r.get("size_distribution.d50_um", "") != ""]
    if sized:
        size_columns: list[tuple] = [
            (f"size_distribution.d{p}_um", f"D{p}\n({unit})") for p in (10, 50, 90)
        ]
        size_columns += [
            ("particles.count", "particles\n(count)", 0),
            ("particles.d50_um", f"particle D50\n({unit})"),
            ("particles.sphericity_mean", f"sphericity\n({d})", 3),
        ]
        title = "Size distribution (local thickness, volume-weighted) and particles"
        tables.append(_table(title, sized, lambda r: r["name"], size_columns))
    represented = [r for r in phases if r.get("volume_fraction_ci95_low", "") != ""]
    if represented:
        for row in represented:
            row["volume_fraction_ci95"] = row["volume_fraction"]
            row["volume_fraction_ci95_min"] = row["volume_fraction_ci95_low"]
            row["volume_fraction_ci95_max"] = row["volume_fraction_ci95_high"]
        columns = [
            ("volume_fraction_ci95", f"volume fraction (95 % interval)\n({d})", 4),
            ("edge_for_one_percent_um", f"edge for ±1 %\n({unit})"),
        ]
        tables.append(_table("Representativity", represented, lambda r: r["name"], columns))
    solved = [r for r in every if r["kind"] == "multiphase"]
    if solved:
        columns = [
            ("tortuosity", f"τ\n({d})"),
            ("effective_diffusivity", f"D_eff/D₀\n({d})"),
            ("macmullin", f"N_M\n({d})"),
            ("tortuosity_converged", "converged"),
        ]
        title = "Multi-phase transport (TauFactor: τ = D_mean / D_eff)"
        tables.append(_table(title, solved, lambda r: f"{r['name']} {r['axis']}", columns))
    return tables


def _surface_table(result: Any, phase_rows: list[dict], unit: str) -> ResultTable:
    """Surface area per phase and interfacial area per phase pair, absolute and specific."""
    rows = [r for r in phase_rows if r["kind"] == "phase"]
    for (a, b), area in result.surfaces.interfaces.items():
        rows.append(
            {
                "name": f"{a} | {b}",
                "surface_area": area,
                "specific_surface_area": result.surfaces.specific_interface((a, b)),
            }
        )
    return _table(
        "Surface and interfacial areas",
        rows,
        lambda r: r["name"],
        [
            ("surface_area", f"area\n({unit}²)"),
            ("specific_surface_area", f"per volume\n(1/{unit})"),
            ("specific_surface_area_per_phase_volume", f"per phase volume\n(1/{unit})"),
        ],
    )


def text_table(table: ResultTable) -> str:
    """The table as aligned text with its title (for the command line); a column title with a
    line break takes two header lines."""
    titles = [c.split("\n") for c in table.columns]
    depth = max((len(t) for t in titles), default=1)
    heads = [["", *[(t[i] if i < len(t) else "") for t in titles]] for i in range(depth)]
    body = [[name, *cells] for name, cells in zip(table.index, table.rows, strict=True)]
    lines = heads + body
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = [
        "  ".join(
            (c.ljust(w) if i == 0 else c.rjust(w))
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    ]
    return "\n".join([f"== {table.title}", *text])
