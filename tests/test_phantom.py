"""The synthetic Si–graphite anode and its X-ray CT imaging model."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from battery_seg.errors import BatterySegError
from battery_seg.phantom import (
    AnodeParams,
    Sample,
    XCTParams,
    make_anode,
    make_sample,
    random_xct_params,
    simulate_xct,
)

PORE, SILICON, CBD, GRAPHITE = 1, 2, 3, 4
SHAPE = (96, 96, 96)
# Imaging without noise, so that one effect can be isolated exactly.
CLEAN = XCTParams(noise_sigma=0.0, photon_noise=0.0, shading=0.0, cupping=0.0)


@pytest.fixture(scope="module")
def anode() -> np.ndarray:
    return make_anode(SHAPE, seed=0)


@pytest.fixture(scope="module")
def image(anode) -> np.ndarray:
    return simulate_xct(anode, seed=0)


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    return make_anode((32, 48, 48), seed=3)


def fractions(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels.ravel(), minlength=5)[1:] / labels.size


def distance_to_particles(labels: np.ndarray) -> np.ndarray:
    return ndimage.distance_transform_edt((labels != SILICON) & (labels != GRAPHITE))


def share_in_parts_touching(part: np.ndarray, other: np.ndarray) -> float:
    """Share of ``part`` voxels in connected pieces of ``part`` that touch ``other``."""
    pieces, _ = ndimage.label(part)
    touching = np.unique(pieces[part & ndimage.binary_dilation(other)])
    return float(np.isin(pieces, touching[touching > 0])[part].mean())


def mean_chord(mask: np.ndarray, axis: int) -> float:
    """Mean length of the runs of ``mask`` along one axis."""
    runs = np.moveaxis(mask, axis, -1).reshape(-1, mask.shape[axis]).astype(np.int8)
    starts = np.count_nonzero(np.diff(np.pad(runs, ((0, 0), (1, 0))), axis=1) == 1)
    return runs.sum() / starts


def best_threshold_accuracy(grey: np.ndarray, labels: np.ndarray) -> float:
    """Balanced accuracy of the best single grey threshold between pore and CBD."""
    pore, cbd = grey[labels == PORE], grey[labels == CBD]
    values = np.concatenate([pore, cbd])
    is_cbd = np.concatenate([np.zeros(pore.size), np.ones(cbd.size)])[np.argsort(values)]
    cbd_below = np.cumsum(is_cbd)
    pore_below = np.cumsum(1 - is_cbd)
    balanced = 0.5 * (pore_below / pore.size + (cbd.size - cbd_below) / cbd.size)
    return float(balanced.max())


# -- microstructure ---------------------------------------------------------------------------
def test_default_fractions_hit_the_targets(anode):
    # Each phase takes exactly its rounded share of voxels, far inside the +-0.02 asked for.
    assert anode.dtype == np.uint8 and anode.shape == SHAPE
    np.testing.assert_allclose(fractions(anode), [0.35, 0.07, 0.08, 0.50], atol=2 / anode.size)


def test_adjusted_fractions_are_met():
    params = AnodeParams(
        pore_fraction=0.45, silicon_fraction=0.05, cbd_fraction=0.10, graphite_fraction=0.40
    )
    labels = make_anode((32, 48, 48), seed=5, params=params)
    np.testing.assert_allclose(fractions(labels), [0.45, 0.05, 0.10, 0.40], atol=2 / labels.size)


@pytest.mark.parametrize(
    "targets",
    [(1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0), (0.5, 0.0, 0.5, 0.0), (0.6, 0.4, 0.0, 0.0)],
)
def test_extreme_fractions(targets):
    pore, silicon, cbd, graphite = targets
    params = AnodeParams(
        pore_fraction=pore, silicon_fraction=silicon, cbd_fraction=cbd, graphite_fraction=graphite
    )
    labels = make_anode((16, 24, 24), seed=1, params=params)
    np.testing.assert_allclose(fractions(labels), targets, atol=2 / labels.size)


@pytest.mark.parametrize("shape", [(8, 8, 8), (16, 32, 32), (24, 80, 48), (40, 20, 12)])
def test_small_and_anisotropic_shapes(shape):
    labels = make_anode(shape, seed=2)
    assert labels.shape == shape and labels.dtype == np.uint8
    np.testing.assert_allclose(fractions(labels), [0.35, 0.07, 0.08, 0.50], atol=2 / labels.size)
    image = simulate_xct(labels, XCTParams(rings=0.02, fringes=0.3), seed=2)
    assert image.shape == shape and image.dtype == np.uint16


def test_silicon_sits_mostly_on_graphite(anode, small):
    on_graphite = share_in_parts_touching(anode == SILICON, anode == GRAPHITE)
    assert on_graphite >= 0.8
    # Control: with all particles in the pore space, hardly any touches graphite.
    params = AnodeParams(silicon_on_graphite=0.0)
    loose = make_anode(small.shape, seed=3, params=params)
    assert share_in_parts_touching(loose == SILICON, loose == GRAPHITE) < 0.3
    assert share_in_parts_touching(small == SILICON, small == GRAPHITE) >= 0.8


def test_silicon_particles_are_small(anode):
    pieces, count = ndimage.label(anode == SILICON)
    sizes = np.bincount(pieces.ravel())[1:]
    # Radius 1.5-3 voxels: single particles hold 19-123 voxels; a few touch and merge.
    assert np.median(sizes) <= 4 / 3 * np.pi * 3.5**3
    assert count > 200


def test_graphite_platelets_are_flattened_along_z(anode):
    graphite = anode == GRAPHITE
    through_plane = mean_chord(graphite, 0)
    assert through_plane < 0.7 * mean_chord(graphite, 1)
    assert through_plane < 0.7 * mean_chord(graphite, 2)


def test_graphite_network_percolates(anode):
    pieces, _ = ndimage.label(anode == GRAPHITE)
    sizes = np.bincount(pieces.ravel())[1:]
    largest = sizes.argmax() + 1
    assert sizes.max() >= 0.95 * sizes.sum()
    for axis in range(3):
        first = np.take(pieces, 0, axis=axis)
        last = np.take(pieces, -1, axis=axis)
        assert (first == largest).any() and (last == largest).any()


def test_cbd_sits_next_to_particles(anode):
    cbd, pore = anode == CBD, anode == PORE
    particles = (anode == SILICON) | (anode == GRAPHITE)
    assert share_in_parts_touching(cbd, particles) >= 0.95
    distance = distance_to_particles(anode)
    near_cbd = np.mean(distance[cbd] <= 2)
    assert near_cbd >= 0.75
    assert near_cbd > np.mean(distance[pore] <= 2) + 0.1


def test_same_seed_same_volume_other_seed_other_volume(small):
    again = make_anode(small.shape, seed=3)
    np.testing.assert_array_equal(again, small)
    assert np.mean(make_anode(small.shape, seed=4) != small) > 0.3
    image = simulate_xct(small, XCTParams(rings=0.02, fringes=0.2), seed=9)
    np.testing.assert_array_equal(
        simulate_xct(small, XCTParams(rings=0.02, fringes=0.2), seed=9), image
    )
    assert np.mean(simulate_xct(small, XCTParams(rings=0.02, fringes=0.2), seed=10) != image) > 0.5


# -- imaging ------------------------------------------------------------------------------------
def test_image_is_uint16_with_ordered_grey_levels(anode, image):
    assert image.dtype == np.uint16 and image.shape == anode.shape
    means = [image[anode == phase].mean() for phase in (PORE, CBD, GRAPHITE, SILICON)]
    assert means == sorted(means)
    pore, cbd, graphite, _ = means
    # CBD is closer to pore than to graphite: a third of the pore -> graphite gap by its
    # grey level; partial volume with the particles it touches lifts the measured share a little.
    params = XCTParams()
    assert (params.cbd_grey - params.pore_grey) / (params.graphite_grey - params.pore_grey) == (
        pytest.approx(1 / 3)
    )
    assert 0.25 <= (cbd - pore) / (graphite - pore) <= 0.45
    assert 2000 < image.min() and image.max() < 65535


def test_cbd_and_pore_are_hard_but_learnable(anode, image):
    grey = image.astype(np.float32)
    raw = best_threshold_accuracy(grey, anode)
    # A grey threshold alone separates pore from CBD clearly imperfectly ...
    assert 0.7 < raw < 0.92
    # ... but the difference is real: averaging out noise and texture (sigma = 0.5) helps where
    # the average does not mix in particle grey (voxels 2+ away from particles).
    away = np.where(distance_to_particles(anode) >= 2, anode, 0)
    smoothed = ndimage.gaussian_filter(grey, 0.5)
    assert best_threshold_accuracy(smoothed, away) > best_threshold_accuracy(grey, away) + 0.01


def test_cbd_grey_is_a_texture_around_its_mean(small):
    textured = simulate_xct(small, replace(CLEAN, blur_sigma=0.0), seed=0)
    flat = simulate_xct(small, replace(CLEAN, blur_sigma=0.0, cbd_texture=0.0), seed=0)
    cbd = small == CBD
    assert flat[cbd].std() == 0
    assert textured[cbd].std() > 0.5 * 0.04 * 65535
    assert abs(textured[cbd].mean() - flat[cbd].mean()) < 0.005 * 65535
    np.testing.assert_array_equal(textured[~cbd], flat[~cbd])


@pytest.mark.parametrize(
    "option", [{"rings": 0.02}, {"fringes": 0.3}, {"shading": 0.1}, {"cupping": 0.1}]
)
def test_each_option_changes_the_image(small, option):
    base = XCTParams(shading=0.0, cupping=0.0)
    plain = simulate_xct(small, base, seed=1)
    changed = simulate_xct(small, replace(base, **option), seed=1)
    assert np.mean(plain != changed) > 0.1


def test_rings_are_concentric_about_the_rotation_axis(small):
    plain = simulate_xct(small, CLEAN, seed=1).astype(np.int32)
    ringed = simulate_xct(small, replace(CLEAN, rings=0.03), seed=1).astype(np.int32)
    rings = ringed - plain
    assert np.abs(rings).max() > 0.01 * 65535
    # Same radius, same ring: the pattern is symmetric about the slice centre (up to rounding
    # to integers).
    assert np.abs(rings - rings[:, ::-1, ::-1]).max() <= 2
    assert np.abs(rings - rings.transpose(0, 2, 1)).max() <= 2  # square slices: y <-> x


def test_fringes_overshoot_at_interfaces(small):
    plain = simulate_xct(small, CLEAN, seed=0).astype(float)
    fringed = simulate_xct(small, replace(CLEAN, fringes=0.4), seed=0).astype(float)
    pore, graphite = small == PORE, small == GRAPHITE
    pore_edge = pore & ndimage.binary_dilation(graphite)
    graphite_edge = graphite & ndimage.binary_dilation(pore)
    assert fringed[pore_edge].mean() < plain[pore_edge].mean() - 300  # dark fringe
    assert fringed[graphite_edge].mean() > plain[graphite_edge].mean() + 300  # bright fringe


def test_shading_is_smooth(small):
    plain = simulate_xct(small, CLEAN, seed=0).astype(float)
    shaded = simulate_xct(small, replace(CLEAN, shading=0.1, cupping=0.05), seed=0).astype(float)
    ratio = shaded / plain
    assert np.ptp(ratio) > 0.03
    for axis in range(3):  # low frequency: neighbours differ far less than the whole range
        assert np.abs(np.diff(ratio, axis=axis)).max() < 0.01


# -- parameters -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: AnodeParams(pore_fraction=0.5),
        lambda: AnodeParams(graphite_fraction=-0.1, pore_fraction=0.95),
        lambda: AnodeParams(graphite_aspect=1.5),
        lambda: AnodeParams(silicon_on_graphite=1.2),
        lambda: AnodeParams(silicon_radius=4.0),
        lambda: AnodeParams(graphite_radius=float("nan")),
        lambda: XCTParams(blur_sigma=-1.0),
        lambda: XCTParams(silicon_grey=1.5),
        lambda: XCTParams(shading=1.0),
        lambda: make_anode((4, 32, 32)),
        lambda: make_anode((32, 32)),
        lambda: make_anode((16, 16, 16), seed=-1),
        lambda: make_anode((16, 16, 16), seed=1.5),
        lambda: simulate_xct(np.zeros((8, 8, 8), np.uint8)),
        lambda: simulate_xct(np.full((8, 8, 8), 5, np.uint8)),
        lambda: simulate_xct(np.ones((8, 8), np.uint8)),
        lambda: simulate_xct(np.ones((8, 8, 8), np.float32)),
        lambda: make_sample((16, 16, 16), voxel_size=(0.5, 0.5)),
        lambda: make_sample((16, 16, 16), voxel_size=-1.0),
    ],
)
def test_invalid_input_gives_an_actionable_error(make):
    with pytest.raises(BatterySegError, match=r"\w+ .*(must|needs|outside|give)"):
        make()


def test_fraction_error_names_the_fix():
    with pytest.raises(BatterySegError, match=r"sum to 1\.1500.*pore_fraction = 1 - the others"):
        AnodeParams(pore_fraction=0.5)


def test_random_xct_params_are_wide_valid_and_seeded(small):
    draws = [random_xct_params(np.random.default_rng(seed)) for seed in range(30)]
    assert random_xct_params(np.random.default_rng(4)) == draws[4]
    for p in draws:
        assert p.pore_grey < p.cbd_grey < p.graphite_grey < p.silicon_grey <= 1
        assert 0.12 <= (p.cbd_grey - p.pore_grey) / (p.graphite_grey - p.pore_grey) <= 0.40
    assert np.ptp([p.blur_sigma for p in draws]) > 0.7
    assert np.ptp([p.pore_grey for p in draws]) > 0.15
    assert any(p.rings > 0 for p in draws) and any(p.rings == 0 for p in draws)
    assert any(p.fringes > 0 for p in draws) and any(p.fringes == 0 for p in draws)
    for p in draws[:3]:
        image = simulate_xct(small, p, seed=0)
        means = [image[small == phase].mean() for phase in (PORE, CBD, GRAPHITE)]
        assert means == sorted(means)
        # Small silicon particles lose contrast to blur; their cores stay the brightest.
        silicon, graphite = image[small == SILICON], image[small == GRAPHITE]
        assert np.percentile(silicon, 95) > np.percentile(graphite, 95)


# -- sample -----------------------------------------------------------------------------------
def test_make_sample_bundles_image_truth_and_scale(small):
    sample = make_sample((32, 48, 48), seed=3)
    assert isinstance(sample, Sample)
    np.testing.assert_array_equal(sample.labels, small)
    np.testing.assert_array_equal(sample.image, simulate_xct(small, seed=3))
    assert sample.voxel_size == (0.5, 0.5, 0.5) and sample.unit == "µm"
    assert sample.phases.names == ("pore", "silicon", "cbd", "graphite")
    assert make_sample((8, 8, 8), voxel_size=(1.0, 0.5, 0.25)).voxel_size == (1.0, 0.5, 0.25)


def test_phantom_imports_no_qt_napari_or_torch():
    code = (
        "import sys, battery_seg.phantom, battery_seg._sample_data; "
        "print(sorted(m for m in ('torch', 'napari', 'qtpy', 'PyQt5', 'magicgui') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
