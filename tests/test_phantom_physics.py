"""The generated cathodes and the physics-based CT and FIB-SEM imaging models."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from battery_seg.errors import BatterySegError
from battery_seg.phantom import (
    CathodeParams,
    CTParams,
    FIBSEMParams,
    make_cathode,
    phase_materials,
    random_cathode_params,
    random_ct_params,
    simulate_ct,
    simulate_fibsem,
)
from battery_seg.phantom._materials import linear_attenuation

PORE, ACTIVE, CBD = 1, 2, 3
MATERIALS = {PORE: "pore", ACTIVE: "active", CBD: "cbd"}
# Absorption only, no artefacts and a high dose: grey levels follow attenuation closely.
CLEAN = CTParams(photons=1e6, read_noise=0, gain_error=0, drift=0, detector_blur=0.3)


@pytest.fixture(scope="module")
def cathode() -> np.ndarray:
    return make_cathode((12, 96, 96), seed=0)


def interior(labels: np.ndarray, value: int) -> np.ndarray:
    """Voxels of a phase at least two voxels from any other phase (no partial volume)."""
    return ndimage.binary_erosion(labels == value, iterations=2)


def test_cathode_has_its_fractions_cracks_and_cbd_between_particles(cathode):
    params = CathodeParams()
    fractions = np.bincount(cathode.ravel(), minlength=4)[1:] / cathode.size
    # cracks take active voxels after placement: active a little below its target
    assert params.active_fraction - 0.06 < fractions[ACTIVE - 1] <= params.active_fraction
    assert fractions[CBD - 1] == pytest.approx(params.cbd_fraction, abs=0.005)
    uncracked = make_cathode((12, 96, 96), seed=0, params=replace(params, crack_share=0))
    cracks = (uncracked == ACTIVE) & (cathode == PORE)
    assert cracks.sum() > 100 and not ((uncracked == ACTIVE) & (cathode == CBD)).any()
    # CBD clings to particles: far more of it than of the pore lies next to active material
    near = ndimage.binary_dilation(cathode == ACTIVE, iterations=2)
    assert near[cathode == CBD].mean() > near[cathode == PORE].mean() + 0.15
    assert np.array_equal(cathode, make_cathode((12, 96, 96), seed=0))


def test_lfp_particles_are_small_and_nmc_large():
    rng = np.random.default_rng(3)
    sizes = {}
    for kind in ("nmc", "lfp"):
        labels = make_cathode((24, 96, 96), seed=3, params=random_cathode_params(rng, kind))
        components, _count = ndimage.label(ndimage.binary_erosion(labels == ACTIVE))
        sizes[kind] = np.mean(np.bincount(components.ravel())[1:])
    assert sizes["lfp"] * 5 < sizes["nmc"]


def test_attenuation_follows_composition_energy_and_k_edges():
    assert linear_attenuation("nmc622", 20) > 5 * linear_attenuation("graphite", 20)
    assert linear_attenuation("silicon", 20) > linear_attenuation("graphite", 20)
    assert linear_attenuation("air", 20) < 0.01 * linear_attenuation("epoxy", 20)
    # nickel absorbs far less just below its K edge (8.33 keV) than just above it
    assert linear_attenuation("nmc811", 8.0) < 0.5 * linear_attenuation("nmc811", 8.6)
    assert linear_attenuation("graphite", 10) > linear_attenuation("graphite", 40)


def test_ct_grey_levels_follow_the_materials(cathode):
    image = simulate_ct(cathode, MATERIALS, CLEAN, seed=0).astype(float)
    pore, active, cbd = (image[interior(cathode, v)].mean() for v in (PORE, ACTIVE, CBD))
    assert pore < cbd < active
    # CBD is close to pore next to NMC: within a fifth of the pore -> active gap
    assert (cbd - pore) < 0.2 * (active - pore)
    epoxy = simulate_ct(cathode, MATERIALS, replace(CLEAN, pore_fill="epoxy"), seed=0)
    e_pore, e_active, e_cbd = (
        epoxy.astype(float)[interior(cathode, v)].mean() for v in (PORE, ACTIVE, CBD)
    )
    assert (e_cbd - e_pore) / (e_active - e_pore) < (cbd - pore) / (active - pore)


def test_ct_noise_falls_with_dose_and_shape_and_type_are_kept(cathode):
    def noise(photons):
        image = simulate_ct(cathode, MATERIALS, replace(CLEAN, photons=photons), seed=1)
        assert image.shape == cathode.shape and image.dtype == np.uint16
        active = image.astype(float)[interior(cathode, ACTIVE)]
        return active.std() / (active.mean() - image[interior(cathode, PORE)].mean())

    assert noise(300) > 2 * noise(1e6)
    eight = simulate_ct(cathode, MATERIALS, replace(CLEAN, bits=8), seed=1)
    assert eight.dtype == np.uint8
    same = simulate_ct(cathode, MATERIALS, CLEAN, seed=5)
    assert np.array_equal(same, simulate_ct(cathode, MATERIALS, CLEAN, seed=5))


def test_ring_artefacts_come_from_pixel_gains():
    flat = np.full((4, 64, 64), PORE, np.uint8)
    flat[:, 16:48, 16:48] = CBD  # a uniform block: any structure is an artefact

    def ring_power(gain_error):
        params = replace(CLEAN, gain_error=gain_error, photons=1e7)
        image = simulate_ct(flat, MATERIALS, params, seed=0).astype(float)[:, 20:44, 20:44]
        radius = np.hypot(*np.mgrid[-12:12, -12:12]).astype(int)
        profile = [ndimage.mean(s, radius, np.arange(12)) for s in image]
        return np.mean([np.std(np.diff(p)) for p in profile]) / image.std()

    assert ring_power(0.03) > 1.5 * ring_power(0.0)


def test_rotation_about_y_and_random_scans_are_valid(cathode):
    rng = np.random.default_rng(0)
    for _ in range(3):
        params = random_ct_params(rng)
        assert 5 <= params.energy_kev <= 80 and 0 < params.transmission < 1
    tilted = simulate_ct(cathode, MATERIALS, replace(CLEAN, rotation_axis=1), seed=0)
    assert tilted.shape == cathode.shape


def test_bad_parameters_and_phases_are_refused():
    with pytest.raises(BatterySegError, match="energy_kev"):
        CTParams(energy_kev=500)
    with pytest.raises(BatterySegError, match="pore_fill"):
        CTParams(pore_fill="water")
    with pytest.raises(BatterySegError, match="active_fraction"):
        CathodeParams(active_fraction=0.9, cbd_fraction=0.2)
    with pytest.raises(BatterySegError, match="no material"):
        phase_materials(("pore", "separator"))
    assert phase_materials(("pore", "silicon", "cbd", "graphite"))[4] == "graphite"


def test_fibsem_shows_material_behind_open_pores(cathode):
    filled = simulate_fibsem(cathode, MATERIALS, FIBSEMParams(infiltrated=True), seed=0)
    open_ = simulate_fibsem(cathode, MATERIALS, FIBSEMParams(infiltrated=False), seed=0)
    pore = interior(cathode, PORE)
    assert filled.dtype == np.uint8 and filled.shape == cathode.shape
    assert open_[pore].mean() > filled[pore].mean() + 5
    active = interior(cathode, ACTIVE)
    assert filled[active].mean() > filled[interior(cathode, CBD)].mean() > filled[pore].mean()
