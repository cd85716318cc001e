"""Volume fractions and profiles: chunked through dask equals in-memory, ROI, foreign values."""

from __future__ import annotations

import tracemalloc

import dask.array as da
import numpy as np
import pytest

from battery_seg.analysis import (
    count_phases_job,
    volume_fraction_profiles,
    volume_fractions,
)
from battery_seg.errors import BatterySegError
from battery_seg.jobs import Progress, run_job
from battery_seg.phases import PhaseSet


@pytest.fixture
def labels() -> np.ndarray:
    rng = np.random.default_rng(1)
    volume = rng.integers(0, 4, size=(23, 17, 29), dtype=np.uint8)  # 0 = unlabelled, 1..3
    volume[:5] = np.where(volume[:5] == 0, 1, volume[:5])  # a pore-rich front: a real gradient
    return volume


def _reference_profiles(labels: np.ndarray, axis: int, k: int) -> np.ndarray:
    moved = np.moveaxis(labels, axis, 0).reshape(labels.shape[axis], -1)
    counts = np.stack([(moved == v).sum(axis=1) for v in range(1, k + 1)], axis=1)
    return counts / counts.sum(axis=1, keepdims=True)


def test_chunked_fractions_and_profiles_equal_in_memory_on_uneven_chunks(labels):
    reference = np.bincount(labels.ravel(), minlength=4)[1:] / np.count_nonzero(labels)
    lazy = da.from_array(labels, chunks=((7, 9, 7), (5, 12), (10, 10, 9)))
    counts = run_job(count_phases_job(lazy, "pore,active,cbd"))
    assert counts.counts.tolist() == [*np.bincount(labels.ravel(), minlength=4).tolist(), 0]
    fractions = counts.volume_fractions()
    np.testing.assert_allclose(list(fractions.values()), reference, rtol=0, atol=1e-15)
    for axis in range(3):
        profile = counts.profile(axis)
        expected = _reference_profiles(labels, axis, 3)
        np.testing.assert_allclose(np.stack(list(profile.values()), axis=1), expected, atol=1e-15)
    assert volume_fractions(labels, "pore,active,cbd") == fractions
    np.testing.assert_array_equal(
        volume_fraction_profiles(lazy, "pore,active,cbd", 2)["cbd"],
        _reference_profiles(labels, 2, 3)[:, 2],
    )


def test_job_yields_one_event_per_group_of_chunk_rows(labels, monkeypatch):
    import battery_seg.analysis._fractions as fractions_module

    monkeypatch.setattr(fractions_module, "worker_count", lambda: 1)  # 2 blocks keep 1 core busy
    lazy = da.from_array(labels, chunks=(5, 17, 29))  # 5 rows of one block each
    events = []
    run_job(count_phases_job(lazy, "pore,active,cbd"), events.append)
    assert [e.step for e in events] == [1, 2, 3]  # rows 1-2, 3-4, 5
    assert all(isinstance(e, Progress) and e.total == 3 for e in events)


def test_zarr_volume_larger_than_the_memory_limit(tmp_path):
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(0)
    data = rng.integers(1, 4, size=(128, 256, 256), dtype=np.uint8)
    store = zarr.create_array(
        tmp_path / "labels.zarr", shape=data.shape, chunks=(16, 128, 128), dtype="uint8"
    )
    store[:] = data
    store = zarr.open_array(tmp_path / "labels.zarr", mode="r")
    run_job(count_phases_job(store[:8, :8, :8], "pore,active,cbd"))  # imports happen here
    limit = data.nbytes // 4  # 2 MiB for an 8 MiB volume
    tracemalloc.start()
    try:
        counts = run_job(count_phases_job(store, "pore,active,cbd"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak {peak / 2**20:.1f} MiB above the {limit / 2**20:.0f} MiB limit"
    assert counts.counts[1:4].tolist() == np.bincount(data.ravel(), minlength=4)[1:].tolist()


def test_foreign_values_are_mapped_with_name_value_pairs():
    labels = np.array([[[0, 85, 170, 170]]], dtype=np.uint8)
    assert volume_fractions(labels, "pore=0,nmc=85,cbd=170") == {
        "pore": 0.25,
        "nmc": 0.25,
        "cbd": 0.5,
    }


def test_values_outside_the_phase_set_are_listed_with_the_fix():
    labels = np.array([[[0, 85, 170, 200]]], dtype=np.uint8)
    with pytest.raises(BatterySegError, match=r"Label values 200 are not.*--phases"):
        volume_fractions(labels, "pore=0,nmc=85,cbd=170")
    with pytest.raises(BatterySegError, match=r"Label values 85, 170 are not"):
        volume_fractions(np.array([[[1, 85, 170]]], dtype=np.uint16), "si-graphite")
    with pytest.raises(BatterySegError, match=r"Label values 70000 are not"):
        volume_fractions(np.array([[[1, 70000]]], dtype=np.int64), "pore,solid")


def test_absent_phase_and_unlabelled_voxels():
    labels = np.zeros((2, 2, 2), dtype=np.uint8)
    labels[0] = 1
    fractions = volume_fractions(labels, "pore,solid")
    assert fractions == {"pore": 1.0, "solid": 0.0}
    profile = volume_fraction_profiles(labels, "pore,solid", axis=0)
    assert profile["pore"][0] == 1.0 and np.isnan(profile["pore"][1])  # an unlabelled slice


def test_region_of_interest_box_and_mask(labels):
    box = ((2, 20), (3, 17), (0, 11))
    inside = labels[2:20, 3:17, 0:11]
    expected = np.bincount(inside.ravel(), minlength=4)[1:] / np.count_nonzero(inside)
    assert list(volume_fractions(labels, "pore,active,cbd", roi=box).values()) == pytest.approx(
        expected.tolist(), abs=1e-15
    )
    mask = np.zeros(labels.shape, dtype=bool)
    mask[2:20, 3:17, 0:11] = True
    assert volume_fractions(labels, "pore,active,cbd", roi=mask) == volume_fractions(
        labels, "pore,active,cbd", roi=box
    )
    with pytest.raises(BatterySegError, match="does not fit the volume"):
        volume_fractions(labels, "pore,active,cbd", roi=((0, 99), (0, 1), (0, 1)))
    with pytest.raises(BatterySegError, match="same shape"):
        volume_fractions(labels, "pore,active,cbd", roi=mask[:3])


def test_bad_label_arrays_raise_actionable_errors():
    with pytest.raises(BatterySegError, match="3D volume"):
        volume_fractions(np.ones((4, 4), dtype=np.uint8), "pore,solid")
    with pytest.raises(BatterySegError, match="integers"):
        volume_fractions(np.ones((2, 2, 2), dtype=np.float32), "pore,solid")


def test_phase_set_object_and_preset_are_accepted(labels):
    assert volume_fractions(labels, PhaseSet.parse("nmc")) == volume_fractions(
        labels, "pore,active,cbd"
    )
