"""Representativity (ImageRep's two-point-correlation method) on media with known statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from battery_seg.analysis import AnalysisConfig, analyse, representativity
from battery_seg.analysis._representativity import _end_distance, integral_range


@pytest.fixture(scope="module")
def medium():
    """A random two-phase medium (thresholded smoothed noise, features ~6 voxels), 144^3."""
    rng = np.random.default_rng(1)
    field = ndimage.gaussian_filter(rng.standard_normal((144, 144, 144)).astype(np.float32), 3)
    return field > np.quantile(field, 0.65)


def test_crops_95_percent_interval_holds_the_fraction_of_the_larger_volume(medium):
    truth = medium.mean()
    rng = np.random.default_rng(7)
    widths = []
    for _ in range(5):
        z, y, x = rng.integers(0, 144 - 56, 3)
        crop = medium[z : z + 56, y : y + 56, x : x + 56]
        found = representativity(crop, (0.5, 0.5, 0.5))
        low, high = found.ci95
        assert low < truth < high
        assert low < crop.mean() < high
        assert 4 < found.integral_range < 14  # voxels: the features' size
        assert found.integral_range_length == pytest.approx(0.5 * found.integral_range)
        widths.append(high - low)
    larger = representativity(medium)
    assert larger.ci95[1] - larger.ci95[0] < min(widths) / 2  # a larger volume: a tighter interval
    assert larger.edge_for_one_percent_voxels > 144  # +-1 % needs more than this volume


def test_white_noise_has_an_integral_range_of_one_voxel():
    mask = np.random.default_rng(0).random((48, 48, 48)) < 0.3
    length, levelled = integral_range(mask)
    assert length == pytest.approx(1.0, abs=0.1) and levelled
    found = representativity(mask, (2.0, 1.0, 0.5))  # anisotropic voxels: lengths in µm
    assert found.edge_for_one_percent == pytest.approx(found.edge_for_one_percent_voxels)


def test_analyse_reports_the_interval_of_every_phase_and_the_edge_needed():
    labels = np.random.default_rng(2).integers(1, 4, (40, 40, 40)).astype(np.uint8)
    config = AnalysisConfig(
        "pore,active,cbd", voxel_size=(0.5, 0.5, 0.5), representativity=True, surfaces=False
    )
    result = analyse(labels, config)
    data = result.to_dict()["phases"]
    for name in ("pore", "active", "cbd"):
        low, high = data[name]["volume_fraction_ci95"]
        assert low < data[name]["volume_fraction"] < high
        assert data[name]["representativity"]["edge_for_one_percent_um"] > 0
    row = result.rows()[0]
    assert row["volume_fraction_ci95_low"] == data["pore"]["volume_fraction_ci95"][0]


def test_a_volume_no_larger_than_its_features_is_not_representative():
    layered = np.ones((40, 40, 40), dtype=np.uint8)
    layered[:, :, 10:30] = 2  # one slab as wide as half the volume
    config = AnalysisConfig("pore,solid", representativity=True, surfaces=False)
    data = analyse(layered, config).to_dict()["phases"]["solid"]
    low, high = data["volume_fraction_ci95"]
    assert low < 0.2 and high > 0.8  # the volume says next to nothing about the fraction
    assert data["representativity"]["edge_for_one_percent_voxels"] > 1000


def test_a_correlation_that_never_levels_off_integrates_the_whole_window():
    tpc = np.full((21, 21, 21), 0.5)  # perfectly correlated: phi = 0.5, never reaches phi**2
    offsets = np.abs(np.arange(21) - 10)
    distance = np.sqrt(offsets[:, None, None] ** 2 + offsets[None, :, None] ** 2 + offsets**2)
    assert _end_distance(0.5, tpc, distance) == np.inf
