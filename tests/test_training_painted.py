"""Reading painted voxels: values, phase sets with file values, strokes, bad labels."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from battery_seg.errors import BatterySegError
from battery_seg.phases import PhaseSet
from battery_seg.training._painted import one_slice_note, read_painted, stroke_ids

NMC = PhaseSet.parse("nmc")


def _labels():
    labels = np.zeros((4, 10, 12), np.uint8)
    labels[1, 2, 2:6] = 1
    labels[1, 7, 3:9] = 2
    labels[3, 0:4, 11] = 3  # at the volume edge
    return labels


def test_painted_voxels_are_coordinates_and_values():
    labels = _labels()
    painted = read_painted(labels, NMC, "test")
    assert painted.shape == (4, 10, 12)
    dense = np.zeros_like(labels)
    dense[tuple(painted.coords.T)] = painted.values
    np.testing.assert_array_equal(dense, labels)
    np.testing.assert_array_equal(painted.counts(3), [4, 6, 4])
    assert len(np.unique(painted.stroke)) == 3


def test_read_only_numpy_and_dask_labels_give_the_same_voxels():
    labels = _labels()
    labels.flags.writeable = False
    before = labels.copy()
    from_numpy = read_painted(labels, NMC, "ro")
    from_dask = read_painted(da.from_array(labels, chunks=(1, 5, 5)), NMC, "dask")
    np.testing.assert_array_equal(labels, before)
    np.testing.assert_array_equal(from_numpy.coords, from_dask.coords)
    np.testing.assert_array_equal(from_numpy.values, from_dask.values)


def test_2d_labels_are_one_slice():
    painted = read_painted(_labels()[1], NMC, "slice")
    assert painted.shape == (1, 10, 12)
    assert set(painted.coords[:, 0]) == {0}


def test_values_outside_the_phase_set_are_named():
    labels = _labels()
    labels[0, 0, 0] = 7
    with pytest.raises(BatterySegError, match=r"layer 'x'.*values \[7\].*0=unpainted, 1=pore"):
        read_painted(labels, NMC, "layer 'x'")


def test_nothing_painted_is_an_error_naming_the_labels():
    with pytest.raises(BatterySegError, match=r"strokes\.tif: nothing is painted"):
        read_painted(np.zeros((2, 4, 4), np.uint8), NMC, "strokes.tif")


def test_float_labels_are_refused():
    with pytest.raises(BatterySegError, match="must be integers"):
        read_painted(np.zeros((2, 4, 4), np.float32), NMC, "f")


def test_file_values_map_to_phases_and_zero_stays_unpainted():
    phases = PhaseSet.parse("pore=10,nmc=20,cbd=30")
    labels = np.zeros((1, 3, 3), np.uint16)
    labels[0, 0] = [10, 20, 30]
    painted = read_painted(labels, phases, "foreign")
    np.testing.assert_array_equal(painted.values, [1, 2, 3])
    labels[0, 1, 1] = 40
    with pytest.raises(BatterySegError, match=r"\[40\].*0=unpainted, 10=pore"):
        read_painted(labels, phases, "foreign")


def test_file_value_zero_naming_a_phase_means_fully_labelled():
    phases = PhaseSet.parse("active=0,cbd=1,pore=2")
    labels = np.array([[[0, 1], [2, 0]]], np.uint8)
    painted = read_painted(labels, phases, "dense")
    assert len(painted.values) == 4  # every voxel is painted
    np.testing.assert_array_equal(np.sort(painted.values), [1, 1, 2, 3])
    labels[0, 0, 0] = 3  # no value is left for 'unpainted'
    with pytest.raises(BatterySegError, match=r"\[3\]"):
        read_painted(labels, phases, "dense")


def test_stroke_ids_follow_26_connectivity_and_phase():
    coords = np.array([[0, 0, 0], [1, 1, 1], [0, 0, 3], [3, 3, 3], [3, 3, 4]])
    values = np.array([1, 1, 1, 2, 1])
    ids = stroke_ids(coords, values, (4, 5, 5))
    assert ids[0] == ids[1]  # diagonal neighbours
    assert ids[2] != ids[0]  # two voxels away from both
    assert len({ids[2], ids[3], ids[4]}) == 3  # touching voxels of different phases split
    assert ids.tolist() == [0, 0, 1, 2, 3]


def test_strokes_on_one_slice_of_a_volume_are_noted_with_slices_to_paint():
    labels = np.zeros((40, 16, 16), np.uint8)
    labels[20, 2, 2:8], labels[20, 9, 3:9] = 1, 2
    note = one_slice_note(read_painted(labels, NMC, "strokes"))
    assert note.startswith("strokes: every stroke is on slice z=20 of 40")
    assert "z=10, z=30" in note  # slices away from the painted one
    labels[31, 4, 4:9] = 3  # a second painted slice: nothing to say
    assert one_slice_note(read_painted(labels, NMC, "strokes")) == ""
    assert one_slice_note(read_painted(labels[20], NMC, "slice")) == ""  # a 2D image
    assert one_slice_note(read_painted(labels[18:23], NMC, "thin")) == ""  # 5 slices
