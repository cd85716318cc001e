"""Cell-model parameters from a measured microstructure: PyBaMM names and a BPX fragment.

From an :class:`~battery_seg.analysis.AnalysisResult` (SI units, lengths in metres):

* porosity = volume fraction of the pore phase(s); active material volume fraction = the active
  phases (neither pore nor CBD) together;
* particle radius = half the volume-weighted D50 of the active phases' separated particles (all
  active phases pooled), or of their continuous size distribution when particles are missing;
* Bruggeman coefficients ``b`` such that ``eps ** b`` is the measured transport efficiency
  ``D_eff / D_0`` through the thickness (z): electrolyte from the porous-CBD solve when there is
  one, else from the pore tortuosity (``b = 1 - ln(tau) / ln(eps)`` in TauFactor's convention);
  electrode from the electronic solve (relative to the active material's conductivity) with the
  active material volume fraction;
* electrode thickness = the analysed box along z.

The BPX fragment (``Parameterisation.<Electrode>``) carries ``Thickness [m]``, ``Porosity``,
``Transport efficiency``, ``Particle radius [m]`` and ``Surface area per unit volume [m-1]`` (the
measured active–pore area density).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BatterySegError
from ._coverage import active_area_density
from ._particles import MIN_VOXELS
from ._roles import active_phases, pore_phases
from ._sizes import percentile_sizes

__all__ = [
    "ELECTRODES",
    "cell_parameters",
    "check_cell_fractions",
    "check_cell_request",
    "write_cell_parameters",
]

ELECTRODES = ("negative", "positive")
_METRES = {"µm": 1e-6, "um": 1e-6, "micron": 1e-6, "nm": 1e-9, "mm": 1e-3, "m": 1.0}


# Active materials of one electrode only: a phase named so cannot be the other electrode's.
_MATERIALS = {
    "negative": ("graphite", "silicon", "si", "lithium", "li", "lto", "hard-carbon"),
    "positive": ("nmc", "nca", "lfp", "lco", "lmo", "lnmo", "nmc811", "nmc622", "nmc111"),
}
#: Fewest voxels through the thickness (z) that give a transport solve and a thickness.
MIN_THICKNESS_VOXELS = 2


def _metres(unit: str, isotropic_default: bool) -> float:
    if isotropic_default or unit not in _METRES:
        shown = "voxel" if isotropic_default else unit
        raise BatterySegError(
            f"Cell-model parameters need lengths in SI units, but the lengths are in {shown!r}; "
            "give the voxel size in µm (--voxel-size Z Y X, or the dock's voxel size)."
        )
    return _METRES[unit]


def _metres_per_unit(result) -> float:
    return _metres(result.config.unit, result.config.isotropic_default)


def _electrode_of(phases) -> str | None:
    """The electrode the phases' active materials belong to, when their names say so."""
    if phases.preset == "nmc":
        return "positive"
    names = {n.lower() for n in active_phases(phases)}
    for electrode, materials in _MATERIALS.items():
        if names and names <= set(materials):
            return electrode
    return None


def check_cell_request(config, shape, electrode: str) -> None:
    """What cell-model parameters need, checked before any work: ``electrode`` known and
    matching the active materials, lengths in SI units, a pore and an active phase, the
    through-thickness axis z among ``config.axes`` and at least
    :data:`MIN_THICKNESS_VOXELS` voxels along it in the analysed box ``shape``."""
    if electrode not in ELECTRODES:
        raise BatterySegError(f"Electrode must be negative or positive, got {electrode!r}.")
    phases = config.phases
    if not pore_phases(phases) or not active_phases(phases):
        raise BatterySegError(
            f"Cell-model parameters need a pore phase and an active phase; the phases are "
            f"{', '.join(phases.names)} (name the electrolyte phase pore)."
        )
    found = _electrode_of(phases)
    if found is not None and found != electrode:
        raise BatterySegError(
            f"The active phases {', '.join(active_phases(phases))} are {found}-electrode "
            f"materials, but the parameters were asked for the {electrode} electrode; use "
            f"--electrode {found} (or the dock's electrode)."
        )
    _metres(config.unit, config.isotropic_default)
    if "z" not in config.axes:
        raise BatterySegError(
            "Cell-model parameters need the through-thickness axis z for the Bruggeman "
            "coefficients; use --axis z or --axis all."
        )
    if shape[0] < MIN_THICKNESS_VOXELS:
        raise BatterySegError(
            f"The analysed box is only {shape[0]} voxel thick along z; an electrode's thickness, "
            f"transport and particle sizes need at least {MIN_THICKNESS_VOXELS} slices (better "
            "several particle diameters). Analyse the whole thickness."
        )


def _particle_radius(result, active: tuple[str, ...], notes: list[str]) -> float | None:
    metrics = result.metrics
    if metrics is None or (not metrics.sizes and not metrics.unmeasured):
        notes.append("no particle radius: run the analysis with size distributions")
        return None
    measured = [n for n in active if n in metrics.particles]
    diameters = np.concatenate([metrics.particles[n].diameters for n in measured] or [[]])
    if diameters.size:
        return percentile_sizes(diameters, diameters**3, (50,))[0] / 2
    measured = [n for n in active if n in metrics.sizes]
    if measured:
        fractions = result.volume_fractions
        diameters = np.concatenate([metrics.sizes[n].diameters for n in measured])
        weights = np.concatenate(
            [metrics.sizes[n].volume_fraction * fractions[n] for n in measured]
        )
        notes.append(
            "particle radius from the continuous size distribution (no particle of "
            f"{MIN_VOXELS} voxels or more was separated)"
        )
        return percentile_sizes(diameters, weights, (50,))[0] / 2
    reasons = "; ".join(f"{n}: {metrics.unmeasured[n]}" for n in active if n in metrics.unmeasured)
    notes.append(f"no particle radius: the active phases have no sizes ({reasons})")
    return None


def _bruggeman(efficiency: float | None, fraction: float) -> float | None:
    if efficiency is None or not 0 < efficiency < 1 or not 0 < fraction < 1:
        return None
    return math.log(efficiency) / math.log(fraction)


def _efficiencies(result, pores: tuple[str, ...], notes: list[str]):
    """Through-thickness (z) transport efficiencies: electrolyte, electrode (or None)."""
    transport = result.metrics.transport if result.metrics is not None else {}
    electrolyte = transport.get("electrolyte_porous_cbd", {}).get("z")
    if electrolyte is not None:
        ionic = electrolyte.effective_diffusivity
        notes.append("electrolyte transport with the porous CBD solve (z)")
    elif len(pores) == 1 and "z" in result.tortuosity.get(pores[0], {}):
        ionic = result.tortuosity[pores[0]]["z"].effective_diffusivity
    else:
        ionic = None
        notes.append("no electrolyte Bruggeman coefficient: solve the pore tortuosity along z")
    electronic = transport.get("electronic", {}).get("z")
    if electronic is None:
        notes.append("no electrode Bruggeman coefficient: give --conductivity for a z solve")
    return ionic, None if electronic is None else electronic.effective_diffusivity


def _absent(porosity: float, active_fraction: float) -> list[str]:
    problems = []
    if porosity <= 0:
        problems.append("no pore voxels (porosity 0: no electrolyte)")
    if active_fraction <= 0:
        problems.append("no active-material voxels (active material volume fraction 0)")
    return problems


def _refuse(problems: list[str]) -> None:
    if problems:
        raise BatterySegError(
            f"No cell-model parameters: {'; '.join(problems)}. A cell model cannot run with "
            "this microstructure; check the labels and the phase set."
        )


def check_cell_fractions(phases, fractions: dict[str, float]) -> None:
    """Refuse volume fractions without pore or without active material (before the solves)."""
    porosity = sum(fractions[n] for n in pore_phases(phases))
    _refuse(_absent(porosity, sum(fractions[n] for n in active_phases(phases))))


def _usable(porosity, active_fraction, thickness, radius, ionic) -> list[str]:
    """Why a cell model could not run with these numbers (empty when it can)."""
    problems = _absent(porosity, active_fraction)
    if ionic is not None and ionic <= 0:
        problems.append("the pore phase does not percolate through the thickness (z)")
    if radius is not None and radius >= thickness:
        problems.append(
            f"the particle radius ({radius:.3g}) exceeds the box's thickness ({thickness:.3g}): "
            "it is not an electrode's thickness"
        )
    return problems


def cell_parameters(result, electrode: str = "negative") -> dict[str, Any]:
    """PyBaMM parameters, a BPX fragment and notes for ``electrode`` (``negative``/``positive``).

    ``pybamm`` holds only the values measured here: update a full parameter set with them
    (``pybamm.ParameterValues("Chen2020").update(data["pybamm"])``). A quantity that does not
    exist (no particles, no electronic solve) is left out, with a note; a microstructure a cell
    model cannot run with (no pore, no active material, no ionic path, thinner than its
    particles) is refused.
    """
    check_cell_request(result.config, result.shape, electrode)
    metres = _metres_per_unit(result)
    phases, fractions, notes = result.config.phases, result.volume_fractions, []
    pores, active = pore_phases(phases), active_phases(phases)
    porosity = float(sum(fractions[n] for n in pores))
    active_fraction = float(sum(fractions[n] for n in active))
    thickness = result.shape[0] * result.config.voxel_size[0]
    radius = _particle_radius(result, active, notes)
    ionic, electronic = _efficiencies(result, pores, notes)
    _refuse(_usable(porosity, active_fraction, thickness, radius, ionic))
    if radius is not None and 2 * radius >= thickness:
        notes.append(
            f"the box ({thickness:.3g} thick) holds less than one layer of particles (D50 "
            f"{2 * radius:.3g}): thickness and transport describe a slice, not a whole electrode"
        )
    thickness *= metres
    side, domain = electrode.capitalize(), f"{electrode.capitalize()} electrode"
    pybamm = {
        f"{domain} porosity": porosity,
        f"{domain} active material volume fraction": active_fraction,
        f"{domain} thickness [m]": thickness,
    }
    if radius is not None:
        pybamm[f"{side} particle radius [m]"] = radius * metres
    b_electrolyte = _bruggeman(ionic, porosity)
    if b_electrolyte is not None:
        pybamm[f"{domain} Bruggeman coefficient (electrolyte)"] = b_electrolyte
    b_electrode = _bruggeman(electronic, active_fraction)
    if b_electrode is not None:
        pybamm[f"{domain} Bruggeman coefficient (electrode)"] = b_electrode
    bpx: dict[str, Any] = {"Thickness [m]": thickness, "Porosity": porosity}
    if ionic is not None:
        bpx["Transport efficiency"] = ionic
    if radius is not None:
        bpx["Particle radius [m]"] = radius * metres
    density = active_area_density(result.surfaces, phases) if result.surfaces else math.nan
    if math.isfinite(density) and density > 0:
        bpx["Surface area per unit volume [m-1]"] = density / metres
    else:
        notes.append("no surface area per unit volume: no active-pore interface was measured")
    return {
        "electrode": electrode,
        "pybamm": pybamm,
        "bpx": {"Parameterisation": {domain: bpx}},
        "source": {
            "shape": list(result.shape),
            "voxel_size": list(result.config.voxel_size),
            "unit": result.length_unit,
            "phases": phases.spec(),
            "active_phases": list(active),
            "through_thickness_axis": "z",
        },
        "notes": notes,
    }


def write_cell_parameters(
    result, path: str | os.PathLike, electrode: str = "negative", *, overwrite: bool = False
) -> Path:
    """Write :func:`cell_parameters` as JSON, atomically (refuses an existing file)."""
    from ..io._atomic import check_output, write_json_atomic

    path = Path(path)
    check_output(path, overwrite)
    write_json_atomic(path, cell_parameters(result, electrode))
    return path
