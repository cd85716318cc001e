"""The result of a phase analysis: numbers per phase, network and axis; JSON, CSV and a table."""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import csv_safe
from ..io._atomic import json_text
from ._config import AnalysisConfig, Network
from ._connectivity import Connectivity
from ._export import atomic_write
from ._fractions import PhaseCounts
from ._metrics import CSV_EXTRA, Metrics, csv_extra, extra_dict, phase_entry, transport_rows
from ._surface import SurfaceAreas
from ._tortuosity import TortuosityResult

__all__ = ["CSV_COLUMNS", "AnalysisResult", "convention_text"]

NO_VOXEL_SIZE = "no voxel size in the metadata: assumed isotropic 1 voxel"
CSV_COLUMNS = (
    "name",
    "kind",
    "members",
    "axis",
    "volume_fraction",
    "through_fraction",
    "front_fraction",
    "back_fraction",
    "isolated_fraction",
    "surface_area",
    "specific_surface_area",
    "specific_surface_area_per_phase_volume",
    "tortuosity",
    "effective_diffusivity",
    "macmullin",
    "bruggeman_tortuosity",
    "tortuosity_converged",
    "tortuosity_note",
    "volume_fraction_min",
    "volume_fraction_max",
    "through_fraction_min",
    "through_fraction_max",
    "specific_surface_area_min",
    "specific_surface_area_max",
    "tortuosity_min",
    "tortuosity_max",
    "convention",
    "length_unit",
    *CSV_EXTRA,
)


def convention_text(convention: str) -> str:
    """Plain statement of the tortuosity convention written into every output."""
    eps = (
        "eps = volume fraction of all voxels of the phase (TauFactor)"
        if convention == "taufactor"
        else "eps = through-connected (percolating) volume fraction (PoreSpy)"
    )
    return (
        f"{convention}: tau = eps / (D_eff / D_0), {eps}; TauFactor solver with fixed "
        "concentrations on the two faces of the transport axis, no flux through the side "
        "faces, face (6-neighbour) connectivity. MacMullin number N_M = D_0 / D_eff = "
        "tau / eps. Bruggeman estimate tau_B = eps ** -0.5."
    )


@dataclass
class AnalysisResult:
    """Everything :func:`~battery_seg.analysis.analyse` measured.

    ``connectivity[name][axis]`` and ``tortuosity[name][axis]`` are keyed by phase or network
    name and axis name (``"z"``, ``"y"``, ``"x"``); ``masks[(network, axis)]`` holds the
    through-connected masks (Z, Y, X orientation) when the config asked to keep them.
    """

    config: AnalysisConfig
    shape: tuple[int, int, int]
    counts: PhaseCounts
    connectivity: dict[str, dict[str, Connectivity]] = field(default_factory=dict)
    surfaces: SurfaceAreas | None = None
    tortuosity: dict[str, dict[str, TortuosityResult]] = field(default_factory=dict)
    uncertainty: dict[str, Any] | None = None
    masks: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    metrics: Metrics | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    # -- numbers ------------------------------------------------------------------------------
    @property
    def volume_fractions(self) -> dict[str, float]:
        return self.counts.volume_fractions()

    @property
    def length_unit(self) -> str:
        return "voxel" if self.config.isotropic_default else self.config.unit

    @property
    def networks(self) -> tuple[Network, ...]:
        """Networks of more than one phase (single-phase networks report under the phase)."""
        return tuple(n for n in self.config.transport_networks if n.phases != (n.name,))

    def network_fraction(self, network: Network) -> float:
        fractions = self.volume_fractions
        return float(sum(fractions[name] for name in network.phases))

    def profile(self, axis: str) -> dict[str, np.ndarray]:
        """Per-slice volume fractions along ``axis`` ('z', 'y' or 'x')."""
        return self.counts.profile("zyx".index(axis))

    def positions(self, axis: str) -> np.ndarray:
        """Slice centre positions along ``axis`` in ``length_unit`` (ROI offset included)."""
        index = "zyx".index(axis)
        start = self.config.roi[index][0] if self.config.roi else 0
        size = self.config.voxel_size[index]
        return (np.arange(self.shape[index]) + start + 0.5) * size

    def _entry(self, name: str, fraction: float, phase_names: tuple[str, ...]) -> dict[str, Any]:
        entry: dict[str, Any] = {"volume_fraction": fraction}
        if name in self.connectivity:
            by_axis = self.connectivity[name]
            for key in ("through", "front", "back", "isolated"):
                entry[f"{key}_fraction"] = {a: getattr(c, key) for a, c in by_axis.items()}
        if self.surfaces is not None and len(phase_names) == 1:
            area = self.surfaces.areas[name]
            entry["surface_area"] = area
            entry["specific_surface_area"] = self.surfaces.specific(name)
            entry["specific_surface_area_per_phase_volume"] = (
                area / (fraction * self.surfaces.volume)
                if fraction > 0 and self.surfaces.volume > 0  # a single slice samples no volume
                else math.nan
            )
        if name in self.tortuosity:
            results = self.tortuosity[name]
            for key in ("tortuosity", "effective_diffusivity", "macmullin"):
                entry[key] = {a: getattr(r, key) for a, r in results.items()}
            entry["bruggeman_tortuosity"] = next(iter(results.values())).bruggeman_tortuosity
            entry["tortuosity_volume_fraction"] = {a: r.volume_fraction for a, r in results.items()}
            entry["tortuosity_converged"] = {a: r.converged for a, r in results.items()}
            entry["tortuosity_note"] = {a: r.note for a, r in results.items()}
        if len(phase_names) == 1:
            entry.update(phase_entry(self.metrics, name))
        return entry

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of all numbers (floats may be ``inf``/``nan``; :meth:`to_json` encodes)."""
        fractions = self.volume_fractions
        phases = {n: self._entry(n, fractions[n], (n,)) for n in self.config.phases.names}
        networks = {}
        for network in self.networks:
            entry = self._entry(network.name, self.network_fraction(network), network.phases)
            networks[network.name] = {"phases": list(network.phases), **entry}
        interfaces = {}
        if self.surfaces is not None:
            for (a, b), area in self.surfaces.interfaces.items():
                interfaces[f"{a}|{b}"] = {
                    "area": area,
                    "specific_area": self.surfaces.specific_interface((a, b)),
                }
        profiles = {}
        if self.config.profiles:
            for axis in self.config.axes:
                values = {n: v.tolist() for n, v in self.profile(axis).items()}
                profiles[axis] = {"position": self.positions(axis).tolist(), **values}
        unit = self.length_unit
        return {
            "phases": phases,
            "networks": networks,
            "interfaces": interfaces,
            "profiles": profiles,
            **extra_dict(self.metrics, self.surfaces, self.config.phases),
            "convention": convention_text(self.config.convention),
            "units": {
                "length": unit,
                "surface_area": f"{unit}^2",
                "specific_surface_area": f"1/{unit}",
                "volume_fraction": "1",
                "tortuosity": "1",
                "effective_diffusivity": "D_eff/D_0",
                "profile_position": unit,
            },
            "voxel_size": list(self.config.voxel_size),
            "voxel_size_source": self.config.voxel_size_source,
            "voxel_size_note": NO_VOXEL_SIZE if self.config.isotropic_default else "",
            "shape": list(self.shape),
            "labelled_voxels": self.counts.labelled,
            "unlabelled_voxels": int(self.counts.counts[0]),
            "uncertainty": self.uncertainty,
            "notes": list(self.notes),
            "config": self.config.to_dict(),
            "seconds": self.seconds,
        }

    # -- rows, table, files -------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One row per phase (or network) and axis, with the :data:`CSV_COLUMNS`."""
        data = self.to_dict()
        rows = []
        items = [(n, "phase", [n], e) for n, e in data["phases"].items()]
        items += [(n, "network", e["phases"], e) for n, e in data["networks"].items()]
        coverage = data.get("surface_coverage", {})
        columns = self.csv_columns()
        for name, kind, members, entry in items:
            for axis in self.config.axes:
                row = dict.fromkeys(columns, "")
                row.update(
                    name=name,
                    kind=kind,
                    members="+".join(members),
                    axis=axis,
                    convention=self.config.convention,
                    length_unit=self.length_unit,
                )
                for key, value in entry.items():
                    if key in row and key not in ("phases",):
                        row[key] = value.get(axis, "") if isinstance(value, dict) else value
                row.update(self._uncertainty_columns(kind, name, axis))
                row.update(csv_extra(entry, coverage.get(name) if kind == "phase" else None))
                rows.append(row)
        for name, axis, cells in transport_rows(self.metrics):
            row = dict.fromkeys(columns, "")
            row.update(cells, name=name, kind="multiphase", axis=axis)
            row.update(convention="taufactor-multiphase", length_unit=self.length_unit)
            rows.append(row)
        return rows

    def csv_columns(self) -> tuple[str, ...]:
        """:data:`CSV_COLUMNS`, then ``surface_coverage.OTHER`` per phase when surfaces ran."""
        if self.surfaces is None:
            return CSV_COLUMNS
        return CSV_COLUMNS + tuple(f"surface_coverage.{n}" for n in self.config.phases.names)

    def _uncertainty_columns(self, kind: str, name: str, axis: str) -> dict[str, Any]:
        if not self.uncertainty:
            return {}
        entry = self.uncertainty.get("phases" if kind == "phase" else "networks", {}).get(name)
        if not entry:
            return {}
        columns = {}
        for key, value in entry.items():
            spread = value.get(axis) if key in ("through_fraction", "tortuosity") else value
            if spread:
                columns[f"{key}_min"], columns[f"{key}_max"] = spread["range"]
        return columns

    def to_json(self, path: str | os.PathLike | None = None, *, overwrite: bool = False) -> str:
        """JSON text (``inf`` as the string ``"inf"``, NaN as ``null``); written atomically."""
        text = json_text(self.to_dict())
        if path is not None:
            atomic_write(
                path, lambda p: Path(p).write_text(text, encoding="utf-8"), overwrite=overwrite
            )
        return text

    def to_csv(self, path: str | os.PathLike | None = None, *, overwrite: bool = False) -> str:
        """CSV text, one row per phase/network and axis; written atomically when ``path``."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.csv_columns(), lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
        text = buffer.getvalue()
        if path is not None:
            atomic_write(
                path, lambda p: Path(p).write_text(text, encoding="utf-8"), overwrite=overwrite
            )
        return text

    def tables(self) -> list:
        """The numbers as :class:`~battery_seg.analysis._tables.ResultTable` s: one per kind of
        measurement, units on every column, one number format per column."""
        from ._tables import result_tables

        return result_tables(self)

    def format_table(self) -> str:
        """Readable text tables of the main numbers, with convention, units and timing."""
        from ._tables import text_table

        unit = self.length_unit
        text = "\n\n".join(text_table(table) for table in self.tables())
        footer = [f"voxel size {self.config.voxel_size} {unit} ({self.config.voxel_size_source})"]
        if self.config.isotropic_default:
            footer.append(NO_VOXEL_SIZE)
        if self.tortuosity:
            footer.append("convention " + convention_text(self.config.convention))
        footer += [n for n in self.notes if n not in footer]
        if self.seconds:
            footer.append(f"measured in {self.seconds:.1f} s")
        return text + "\n" + "\n".join(footer)


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return csv_safe(value)  # a name from a file never becomes a spreadsheet formula
