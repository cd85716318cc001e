"""Porous-CBD and electronic tortuosity through TauFactor's multiphase solver."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from battery_seg.analysis import AnalysisConfig, analyse, multiphase_tortuosity
from battery_seg.errors import BatterySegError


@pytest.fixture(scope="module")
def three_phases():
    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.random((24, 24, 24)), 1.5)
    return (np.digitize(field, np.quantile(field, [0.45, 0.75])) + 1).astype(np.uint8)


def test_same_tau_as_taufactor_multiphase_solver_called_directly(three_phases):
    import taufactor

    image = np.zeros_like(three_phases)
    image[three_phases == 1] = 1  # pore
    image[three_phases == 3] = 2  # porous cbd
    direct = taufactor.MultiPhaseSolver(image, cond={1: 1.0, 2: 0.1}, device="cpu")
    direct.solve(verbose=False, conv_crit=1e-2)
    ours = multiphase_tortuosity(three_phases, {1: 1.0, 3: 0.1}, "z", device="cpu")
    assert ours.converged
    assert ours.tortuosity == pytest.approx(float(direct.tau[0]), rel=0.005)
    assert ours.effective_diffusivity == pytest.approx(float(direct.D_eff[0]), rel=0.005)


@pytest.mark.parametrize("voxel_size", [(1.0, 1.0, 1.0), (0.5, 1.0, 1.0)])
def test_layers_in_series_and_in_parallel(voxel_size):
    series = np.ones((12, 6, 6), dtype=np.uint8)
    series[6:] = 2  # two layers across the transport axis: harmonic mean
    found = multiphase_tortuosity(series, {1: 1.0, 2: 0.1}, "z", voxel_size, conv_crit=1e-3)
    assert found.effective_diffusivity == pytest.approx(1 / (0.5 / 1.0 + 0.5 / 0.1), rel=0.01)
    parallel = np.ones((12, 6, 6), dtype=np.uint8)
    parallel[:, :, 3:] = 2  # two slabs along it: arithmetic mean, tau = 1
    found = multiphase_tortuosity(parallel, {1: 1.0, 2: 0.1}, "z", voxel_size, conv_crit=1e-3)
    assert found.effective_diffusivity == pytest.approx(0.55, rel=0.01)
    assert found.tortuosity == pytest.approx(1.0, rel=0.01)


def test_anisotropic_voxels_agree_with_the_single_phase_solver(three_phases):
    from battery_seg.analysis import tortuosity

    sizes = (1.0, 0.5, 0.5)
    single = tortuosity(three_phases == 1, "z", sizes, device="cpu", conv_crit=1e-3)
    multi = multiphase_tortuosity(three_phases, {1: 1.0}, "z", sizes, conv_crit=1e-3)
    assert multi.effective_diffusivity == pytest.approx(single.effective_diffusivity, rel=0.02)


def test_analyse_solves_porous_cbd_and_electronic_paths(three_phases):
    config = AnalysisConfig(
        "pore,active,cbd",
        voxel_size=(0.5, 0.5, 0.5),
        tortuosity=True,
        networks=("pore",),
        cbd_diffusivity=0.1,
        conductivity="active=1,cbd=0.01",
        device="cpu",
        surfaces=False,
    )
    result = analyse(three_phases, config)
    transport = result.to_dict()["transport"]
    porous = transport["electrolyte_porous_cbd"]["z"]
    blocking = result.tortuosity["pore"]["z"]
    assert porous["conductivities"] == {"pore": 1.0, "cbd": 0.1}
    assert porous["effective_diffusivity"] > blocking.effective_diffusivity  # CBD conducts
    electronic = transport["electronic"]["z"]
    assert electronic["conductivities"] == {"active": 1.0, "cbd": 0.01}
    assert 0 < electronic["effective_diffusivity"] < 1
    rows = [r for r in result.rows() if r["kind"] == "multiphase"]
    assert [r["name"] for r in rows] == ["electrolyte_porous_cbd", "electronic"]
    assert rows[0]["tortuosity"] == pytest.approx(porous["tortuosity"])


def test_bad_transport_settings_are_clear():
    with pytest.raises(BatterySegError, match="needs a pore and a CBD phase"):
        AnalysisConfig("pore,solid", cbd_diffusivity=0.1)
    for outside in (-1.0, 0.0, 1.5):
        with pytest.raises(BatterySegError, match=r"lies in \(0, 1\]"):
            AnalysisConfig("nmc", cbd_diffusivity=outside)
    with pytest.raises(BatterySegError, match="NAME=VALUE"):
        AnalysisConfig("nmc", conductivity="active:1")
    with pytest.raises(BatterySegError, match="No phase 'copper'"):
        AnalysisConfig("nmc", conductivity="copper=1")
    config = AnalysisConfig("si-graphite", conductivity={"active": 1, "CBD": 0.01})
    assert dict(config.conductivity) == {"silicon": 1.0, "cbd": 0.01, "graphite": 1.0}
