"""Simulated painting: thin strokes of every phase, within a voxel budget, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from battery_seg.errors import BatterySegError
from battery_seg.training import simulate_strokes


def _truth():
    truth = np.ones((20, 48, 48), np.uint8)
    truth[:, 24:, :] = 2
    truth[:, 5:40, 30:44] = 3
    truth[:, 10:14, 10:14] = 4  # a rare phase: 16 voxels per slice
    return truth


def test_strokes_follow_the_truth_and_the_budget():
    truth = _truth()
    painted = simulate_strokes(truth, slices=3, fraction=0.02, seed=0)
    assert painted.dtype == np.uint8 and painted.shape == truth.shape
    mask = painted > 0
    np.testing.assert_array_equal(painted[mask], truth[mask])
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    assert slices.tolist() == [5, 10, 15]
    for z in slices:
        assert 0 < mask[z].sum() <= 0.02 * 48 * 48
        assert set(np.unique(painted[z])) == {0, 1, 2, 3, 4}  # the rare phase too


def test_strokes_are_deterministic_by_seed():
    truth = _truth()
    a = simulate_strokes(truth, slices=2, seed=3)
    np.testing.assert_array_equal(a, simulate_strokes(truth, slices=2, seed=3))
    assert not np.array_equal(a, simulate_strokes(truth, slices=2, seed=4))


def test_strokes_on_several_axes_stay_in_their_planes():
    truth = _truth()
    painted = simulate_strokes(truth, slices=[(1, 20), (2, 7)], fraction=0.05, seed=1)
    _, y, x = np.nonzero(painted)
    assert np.all((y == 20) | (x == 7))
    assert np.any(y == 20) and np.any(x == 7)


def test_strokes_keep_off_phase_boundaries():
    truth = _truth()
    painted = simulate_strokes(truth[:1, :, :30], slices=[0], fraction=0.05, seed=2)
    from scipy import ndimage

    boundary = ndimage.morphological_gradient(truth[0, :, :30], size=3) > 0
    large = painted[0] > 0
    assert not np.any(large & boundary & (truth[0, :, :30] != 4))


def test_2d_truth_and_bad_slices():
    truth = _truth()[0]
    painted = simulate_strokes(truth, fraction=0.03, seed=0)
    assert painted.shape == truth.shape and (painted > 0).sum() <= 0.03 * truth.size
    with pytest.raises(BatterySegError, match="outside axis 0"):
        simulate_strokes(_truth(), slices=[25])
