"""Stroke-wise validation split and per-phase IoU."""

from __future__ import annotations

import numpy as np

from battery_seg.training._validation import confusion, iou_from_confusion, split_strokes


def _strokes():
    # phase 1: five strokes of 10 voxels; phase 2: two strokes (30 and 10 voxels)
    values = np.r_[np.full(50, 1), np.full(40, 2)]
    stroke = np.r_[np.repeat(np.arange(5), 10), np.full(30, 5), np.full(10, 6)]
    coords = np.zeros((90, 3), int)
    coords[:, 2] = np.arange(90)
    return values, stroke, coords


def test_whole_strokes_are_held_back_and_each_phase_keeps_training_strokes():
    values, stroke, coords = _strokes()
    for seed in range(10):
        held = split_strokes(values, stroke, coords, 0.2, np.random.default_rng(seed))
        for s in np.unique(stroke):
            assert len(set(held[stroke == s])) == 1  # never part of a stroke
        for v in (1, 2):
            in_phase = values == v
            assert held[in_phase].any() and not held[in_phase].all()
        assert held[values == 1].sum() == 10  # one of five 10-voxel strokes = 20 %


def test_a_single_stroke_is_cut_and_its_far_end_held_back():
    values = np.full(50, 3)
    stroke = np.zeros(50, int)
    coords = np.zeros((50, 3), int)
    coords[:, 1] = np.arange(50)
    held = split_strokes(values, stroke, coords, 0.2, np.random.default_rng(0))
    assert held.sum() == 10
    assert np.all(coords[held, 1] >= 40)


def test_no_validation_when_fraction_is_zero():
    values, stroke, coords = _strokes()
    assert not split_strokes(values, stroke, coords, 0.0, np.random.default_rng(0)).any()


def test_split_is_deterministic_by_seed():
    values, stroke, coords = _strokes()
    a = split_strokes(values, stroke, coords, 0.3, np.random.default_rng(4))
    b = split_strokes(values, stroke, coords, 0.3, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)


def test_confusion_and_iou_on_painted_voxels_only():
    truth = np.array([[0, 1, 1, 2], [2, 2, 0, 3]])
    predicted = np.array([[3, 1, 2, 2], [2, 1, 1, 3]])
    matrix = confusion(truth, predicted, 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [1, 2, 0], [0, 0, 1]])
    scores = iou_from_confusion(matrix, ("a", "b", "c"))
    assert scores == {"a": 1 / 3, "b": 2 / 4, "c": 1.0}
    assert iou_from_confusion(np.zeros((2, 2), int), ("a", "b")) == {}


def test_validation_of_densely_labelled_planes_is_capped():
    from types import SimpleNamespace

    from battery_seg.training._train import _validation_regions

    val = np.ones((100, 100), np.uint8)
    crops = [
        SimpleNamespace(image=np.full((3, 100, 100), i, np.float32), val=val) for i in range(10)
    ]
    data = SimpleNamespace(crops=crops)
    assert len(_validation_regions(data, halo=4)) == 10
    capped = _validation_regions(data, halo=4, max_pixels=35_000)
    kept = [int(image[0, 0, 0]) for image, _ in capped]
    assert len(set(kept)) == 3  # whole regions, a fixed choice
    again = _validation_regions(data, halo=4, max_pixels=35_000)
    assert kept == [int(image[0, 0, 0]) for image, _ in again]
