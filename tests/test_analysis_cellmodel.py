"""Cell-model export: PyBaMM parameters and a BPX fragment from a measured electrode.

A synthetic positive electrode of packed active spheres (8 µm) with CBD at their necks is
analysed through ``battery-seg stats --pybamm``; the JSON loads into PyBaMM's Chen2020 set, and a
slow DFN discharge delivers the capacity the measured electrode holds.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from battery_seg.analysis import AnalysisConfig, analyse, cell_parameters
from battery_seg.cli import main
from battery_seg.errors import BatterySegError
from test_analysis_sizes import DIAMETER, packed_spheres

VOXEL = 0.5  # µm


@pytest.fixture(scope="module")
def electrode() -> np.ndarray:
    """pore 1, active 2, cbd 3: spheres 1 µm apart (cut by the faces), CBD bridges at necks."""
    from scipy import ndimage
    from skimage.morphology import ball

    active = packed_spheres((VOXEL,) * 3, gap=1.0)
    labels = np.where(active, 2, 1).astype(np.uint8)
    bridged = ndimage.binary_closing(active, ball(3), border_value=0)
    labels[bridged & ~active] = 3
    return labels[3:-3, 3:-3, 3:-3]  # the spheres touch the faces: paths through the box


@pytest.fixture(scope="module")
def exported(electrode, tmp_path_factory):
    from battery_seg.io import write_labels

    folder = tmp_path_factory.mktemp("cell")
    path = write_labels(
        folder / "electrode.tif", electrode, phases="pore,active,cbd", voxel_size=(VOXEL,) * 3
    )
    out, stats = folder / "params.json", folder / "stats.json"
    args = ["stats", str(path), "--pybamm", str(out), "--electrode", "positive"]
    args += ["--conductivity", "active=1,cbd=0.01", "--device", "cpu", "--json", str(stats)]
    assert main(args) == 0
    return json.loads(out.read_text(encoding="utf-8")), json.loads(stats.read_text())


def test_parameters_are_the_measured_microstructure_in_si_units(electrode, exported):
    data, stats = exported
    values = data["pybamm"]
    fractions = np.bincount(electrode.ravel(), minlength=4)[1:] / electrode.size
    assert values["Positive electrode porosity"] == pytest.approx(fractions[0])
    assert values["Positive electrode active material volume fraction"] == pytest.approx(
        fractions[1]
    )
    assert values["Positive electrode thickness [m]"] == pytest.approx(
        electrode.shape[0] * VOXEL * 1e-6
    )
    assert values["Positive particle radius [m]"] == pytest.approx(DIAMETER / 2 * 1e-6, rel=0.05)
    efficiency = stats["phases"]["pore"]["effective_diffusivity"]["z"]
    b = values["Positive electrode Bruggeman coefficient (electrolyte)"]
    assert fractions[0] ** b == pytest.approx(efficiency, rel=1e-9)
    tau = stats["phases"]["pore"]["tortuosity"]["z"]
    assert b == pytest.approx(1 - math.log(tau) / math.log(fractions[0]), rel=1e-6)
    electronic = stats["transport"]["electronic"]["z"]["effective_diffusivity"]
    b_s = values["Positive electrode Bruggeman coefficient (electrode)"]
    assert fractions[1] ** b_s == pytest.approx(electronic, rel=1e-9)
    assert data["source"]["active_phases"] == ["active"]


def test_bpx_fragment_validates_against_the_bpx_schema(exported):
    from bpx.schema import Contact, Particle

    fragment = exported[0]["bpx"]["Parameterisation"]["Positive electrode"]
    contact = Contact.model_validate(
        {k: fragment[k] for k in ("Thickness [m]", "Porosity", "Transport efficiency")}
    )
    assert contact.porosity == pytest.approx(exported[0]["pybamm"]["Positive electrode porosity"])
    aliases = {field.alias for field in Particle.model_fields.values()}
    assert {"Particle radius [m]", "Surface area per unit volume [m-1]"} <= aliases
    assert fragment["Surface area per unit volume [m-1]"] > 1e4  # m^-1: µm^-1 * 1e6


def test_pybamm_discharge_capacity_follows_the_measured_active_fraction_and_thickness(
    electrode, exported
):
    """A slow DFN discharge fills the positive electrode's free lithium sites, so its capacity is
    what the measured electrode holds: active fraction x thickness x area x c_max x F x the
    free share of sites, counted here from the voxels, not from the exported numbers."""
    pybamm = pytest.importorskip("pybamm")

    values = pybamm.ParameterValues("Chen2020")
    values.update(exported[0]["pybamm"])
    active_fraction = np.mean(electrode == 2)
    thickness = electrode.shape[0] * VOXEL * 1e-6  # m, through z
    area = values["Electrode height [m]"] * values["Electrode width [m]"]
    c_max = values["Maximum concentration in positive electrode [mol.m-3]"]
    free = 1 - values["Initial concentration in positive electrode [mol.m-3]"] / c_max
    holds = active_fraction * thickness * area * c_max * 96485.33212 * free / 3600  # A.h
    assert holds < values["Nominal cell capacity [A.h]"] / 2  # the positive limits this cell
    values["Current function [A]"] = holds / 5  # C/5 of what the electrode holds
    solution = pybamm.Simulation(pybamm.lithium_ion.DFN(), parameter_values=values).solve(
        [0, 6 * 3600]
    )
    voltage = solution["Voltage [V]"].entries
    assert voltage[0] > 3.5 and voltage[-1] == pytest.approx(values["Lower voltage cut-off [V]"])
    capacity = solution["Discharge capacity [A.h]"].entries[-1]
    assert 0.9 * holds < capacity <= holds  # a thickness or fraction off by 10 % fails


def test_export_needs_lengths_and_phases_it_can_name():
    labels = np.ones((6, 6, 6), dtype=np.uint8)
    labels[:, :, 3:] = 2
    result = analyse(labels, AnalysisConfig("pore,active", surfaces=False))
    with pytest.raises(BatterySegError, match="SI units"):
        cell_parameters(result)
    result = analyse(labels, AnalysisConfig("solid,active", voxel_size=0.5, surfaces=False))
    with pytest.raises(BatterySegError, match="pore phase"):
        cell_parameters(result)
    result = analyse(labels, AnalysisConfig("pore,active", voxel_size=0.5, surfaces=False))
    data = cell_parameters(result, "negative")
    assert "Negative electrode porosity" in data["pybamm"]
    assert any("no particle radius" in note for note in data["notes"])
