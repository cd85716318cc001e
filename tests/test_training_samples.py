"""Crops around painted planes (any axis, volume edges, context) and the balanced sampler."""

from __future__ import annotations

import numpy as np
import pytest

from battery_seg.errors import BatterySegError
from battery_seg.model import IntensityRange
from battery_seg.phases import PhaseSet
from battery_seg.training._painted import read_painted
from battery_seg.training._samples import PatchSampler, build_crops, mirror_index, plane_axes

NMC = PhaseSet.parse("nmc")
UNIT = IntensityRange(0.0, 1.0)


def _image(shape=(6, 20, 24)):
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def test_mirror_index_reflects_like_numpy_pad():
    size = 5
    expected = np.pad(np.arange(size), 7, mode="reflect")
    np.testing.assert_array_equal(mirror_index(np.arange(-7, size + 7), size), expected)
    np.testing.assert_array_equal(mirror_index(np.array([-1, 0, 1]), 1), [0, 0, 0])


def test_each_stroke_gets_the_axis_it_was_painted_on():
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[2, 1:8, 3:5] = 1  # thin along z
    labels[1:9, 6, 6:8] = 2  # thin along y
    labels[1:9, 1:3, 9] = 3  # thin along x
    painted = read_painted(labels, NMC, "t")
    axes = plane_axes(painted)
    for value, axis in ((1, 0), (2, 1), (3, 2)):
        assert set(axes[painted.values == value]) == {axis}


def test_crop_holds_context_slices_and_painted_values_at_the_volume_edge():
    image = _image()
    labels = np.zeros(image.shape, np.uint8)
    labels[0, 0, 0:3] = 1  # corner stroke on the first z-slice
    labels[0, 5, 5:8] = 2
    painted = read_painted(labels, NMC, "edge")
    held = np.zeros(len(painted.values), bool)
    (crop,) = build_crops(image, painted, held, UNIT, context=5, margin=4, min_size=8)
    assert crop.axis == 0 and crop.index == 0
    top, left = crop.origin
    assert (top, left) == (-4, -4)
    # context 5 around slice 0 mirrors to slices 2, 1, 0, 1, 2; in-plane reflect padding.
    reference = np.pad(image[[2, 1, 0, 1, 2]], [(0, 0), (4, 4), (4, 4)], mode="reflect")
    reference = reference[:, : crop.image.shape[1], : crop.image.shape[2]]
    np.testing.assert_array_equal(crop.image, reference)
    assert crop.train[4, 4:7].tolist() == [1, 1, 1]
    assert int((crop.train > 0).sum()) == 6 and not crop.val.any()


def test_crops_of_y_strokes_are_in_z_x_planes():
    image = _image()
    labels = np.zeros(image.shape, np.uint8)
    labels[1:5, 7, 10] = 2
    labels[2, 7, 11:14] = 2  # joins the same stroke: extent along y stays 1
    painted = read_painted(labels, NMC, "y")
    held = np.zeros(len(painted.values), bool)
    (crop,) = build_crops(image, painted, held, UNIT, context=3, margin=2, min_size=4)
    assert crop.axis == 1 and crop.index == 7
    np.testing.assert_array_equal(
        crop.image[1],
        np.pad(image[:, 7, :], 2, mode="reflect")[
            crop.origin[0] + 2 : crop.origin[0] + 2 + crop.image.shape[1],
            crop.origin[1] + 2 : crop.origin[1] + 2 + crop.image.shape[2],
        ],
    )
    assert int((crop.train == 2).sum()) == 7


def test_held_back_voxels_go_to_the_validation_plane():
    image = _image()
    labels = np.zeros(image.shape, np.uint8)
    labels[3, 2, 2:6] = 1
    labels[3, 9, 2:6] = 3
    painted = read_painted(labels, NMC, "v")
    held = painted.values == 3
    (crop,) = build_crops(image, painted, held, UNIT, context=1, margin=2, min_size=4)
    assert set(np.unique(crop.train)) == {0, 1} and set(np.unique(crop.val)) == {0, 3}


def test_nan_near_strokes_is_an_error_naming_the_image():
    image = _image()
    image[2, 3, 3] = np.nan
    labels = np.zeros(image.shape, np.uint8)
    labels[2, 5, 5] = 1
    painted = read_painted(labels, NMC, "image 'scan'")
    with pytest.raises(BatterySegError, match=r"image 'scan'.*NaN"):
        build_crops(image, painted, np.zeros(1, bool), UNIT, context=1, margin=4, min_size=8)


def test_sampler_balances_phases_and_keeps_painted_voxels_in_patches():
    image = _image((3, 64, 64))
    labels = np.zeros(image.shape, np.uint8)
    labels[1, 2:8, 2:62] = 1  # 360 voxels of pore
    labels[1, 40, 40] = 2  # one voxel of active, more than a patch away from the others
    labels[1, 55, 10:12] = 3
    painted = read_painted(labels, NMC, "s")
    crops = build_crops(
        image, painted, np.zeros(len(painted.values), bool), UNIT, context=3, margin=16, min_size=16
    )
    sampler = PatchSampler(crops, 3, 16, np.random.default_rng(0))
    images, patch_labels = sampler.sample(300)
    assert images.shape == (300, 3, 16, 16) and patch_labels.shape == (300, 16, 16)
    has_active = np.any(patch_labels == 2, axis=(1, 2)).mean()
    assert 0.25 < has_active < 0.42  # about a third although it is 1 voxel in 363
    assert np.all(np.any(patch_labels > 0, axis=(1, 2)))
