"""Result tables: a unit on every column, one plain-decimal format per column, ranges."""

from __future__ import annotations

import math

import numpy as np

from battery_seg.analysis import AnalysisConfig, analyse
from battery_seg.analysis._tables import format_column, text_table


def test_one_format_per_column_and_no_exponents():
    assert format_column([0.07012, 0.3492, 1.5]) == ["0.070", "0.349", "1.500"]
    assert format_column([1786.4, 892.0]) == ["1786", "892"]
    assert format_column([1e-5, 0.5], decimals=4) == ["0.0000", "0.5000"]
    assert format_column([-0.00001, -0.2], decimals=4) == ["0.0000", "-0.2000"]  # no -0.0000
    assert format_column([None, math.nan, math.inf, ""]) == ["-", "n/a", "inf", "-"]
    assert format_column([0.35], [(0.3401, 0.355)], decimals=4) == ["0.3500 (0.3401–0.3550)"]


def test_the_analysis_tables_name_their_units():
    labels = np.full((8, 10, 10), 2, np.uint8)
    labels[:, :, :4] = 1
    config = AnalysisConfig(
        "pore,solid", voxel_size=(0.5, 0.5, 0.5), voxel_size_source="user", tortuosity=True
    )
    result = analyse(labels, config)
    tables = {table.title: table for table in result.tables()}
    assert list(tables) == [
        "Volume fractions and connectivity",
        "Surface and interfacial areas",
        "Tortuosity (TauFactor)",
    ]
    for table in tables.values():
        assert all(title.endswith(")") for title in table.columns if title != "converged")
    assert tables["Surface and interfacial areas"].columns[0] == "area\n(µm²)"
    assert tables["Surface and interfacial areas"].index == ["pore", "solid", "pore | solid"]
    assert tables["Volume fractions and connectivity"].rows[0][:2] == ["0.4000", "1.0000"]
    text = result.format_table()
    assert "== Tortuosity (TauFactor)" in text and "(1/µm)" in text and "measured in" in text
    assert "e-0" not in text.split("convention")[0]
    lines = text_table(tables["Tortuosity (TauFactor)"]).splitlines()
    assert lines[1].split() == ["τ", "D_eff/D₀", "N_M", "τ", "Bruggeman", "converged"]
    assert lines[2].split() == ["(–)"] * 4  # the units, on the second header line
