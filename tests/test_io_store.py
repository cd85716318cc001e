"""LabelStore: block-wise writes, completion records, resume, refuse, finalize, abort, crashes."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from battery_seg.errors import BatterySegError
from battery_seg.io import LabelStore, is_complete_store, open_volume
from battery_seg.phases import PhaseSet

SHAPE = (64, 24, 20)
CHUNKS = (8, 24, 20)
EXPECTED = np.repeat(np.arange(8, dtype=np.uint8) % 4 + 1, 8)[:, None, None] * np.ones(
    SHAPE, np.uint8
)


def _create(path, fingerprint="input=a;model=b", **kwargs):
    options = {
        "shape": SHAPE,
        "chunks": CHUNKS,
        "phases": "si-graphite",
        "voxel_size": (0.5, 0.25, 0.25),
        "fingerprint": fingerprint,
    }
    return LabelStore.create_or_resume(path, **{**options, **kwargs})


def _write_block(store, i):
    store.array[i * 8 : (i + 1) * 8] = EXPECTED[i * 8 : (i + 1) * 8]
    store.mark_done(str(i))


def test_create_write_resume_finalize(tmp_path):
    out = tmp_path / "seg.zarr"
    extras = {"probabilities": ((4, *SHAPE), "uint8"), "uncertainty": (SHAPE, "uint8")}
    store = _create(out, extras=extras)
    assert not store.resumed and store.partial_path == tmp_path / "seg.zarr.partial"
    assert store.partial_path.is_dir() and not out.exists() and not is_complete_store(out)
    assert store.array.shape == SHAPE and store.array.chunks == CHUNKS
    assert store.extra("probabilities").shape == (4, *SHAPE)
    assert store.extra("probabilities").chunks == (4, *CHUNKS)
    for i in range(3):
        _write_block(store, i)
    store.extra("uncertainty")[0:8] = 200
    assert store.done_keys() == {"0", "1", "2"} and store.is_done("1") and not store.is_done("5")

    with pytest.raises(BatterySegError, match="same fingerprint but a different extras"):
        _create(out)
    again = _create(out, extras=extras)
    assert again.resumed and again.done_keys() == {"0", "1", "2"}
    for i in range(8):
        if not again.is_done(str(i)):
            _write_block(again, i)
    assert again.finalize() == out
    assert not again.partial_path.exists() and is_complete_store(out)
    assert not (out / ".battery_seg").exists()
    vol = open_volume(out)
    np.testing.assert_array_equal(vol.data.compute(), EXPECTED)
    assert vol.phases == PhaseSet.parse("si-graphite") and vol.voxel_size == (0.5, 0.25, 0.25)
    assert vol.metadata["extras"]["probabilities"] == {"shape": [4, *SHAPE], "dtype": "uint8"}
    uncertainty = open_volume(f"{out}:/uncertainty")
    assert int(uncertainty.data[0:8].min().compute()) == 200
    probabilities = open_volume(f"{out}:/probabilities", channel=2)  # named axes (c, z, y, x)
    assert probabilities.data.shape == SHAPE
    assert again.finalize() == out  # idempotent


def test_different_fingerprint_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "seg.zarr"
    _write_block(_create(out), 0)
    with pytest.raises(BatterySegError, match="partially written store from another run"):
        _create(out, fingerprint="input=a;model=c")
    fresh = _create(out, fingerprint="input=a;model=c", overwrite=True)
    assert not fresh.resumed and fresh.done_keys() == set()
    assert int(np.asarray(fresh.array[0:8]).max()) == 0


def test_same_fingerprint_other_layout_is_refused(tmp_path):
    _create(tmp_path / "seg.zarr")
    with pytest.raises(BatterySegError, match="same fingerprint but a different chunks"):
        _create(tmp_path / "seg.zarr", chunks=(16, 24, 20))


def test_existing_complete_store_refused_and_replaced_at_finalize(tmp_path):
    out = tmp_path / "seg.zarr"
    first = _create(out)
    for i in range(8):
        _write_block(first, i)
    first.finalize()
    with pytest.raises(BatterySegError, match="already exists"):
        _create(out, fingerprint="new")
    second = _create(out, fingerprint="new", overwrite=True)
    second.array[:] = 3
    np.testing.assert_array_equal(open_volume(out).data.compute(), EXPECTED)  # old one intact
    second.finalize()
    assert int(open_volume(out).data.min().compute()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.zarr"]


def test_abort_removes_the_partial_store(tmp_path):
    store = _create(tmp_path / "seg.zarr")
    _write_block(store, 0)
    store.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BatterySegError, match="does not exist"):
        store.finalize()


def test_partial_store_is_not_opened_unless_allowed(tmp_path):
    out = tmp_path / "seg.zarr"
    store = _create(out)
    _write_block(store, 1)
    with pytest.raises(BatterySegError, match=r"partially written.*re-run the segmentation"):
        open_volume(store.partial_path)
    with pytest.raises(BatterySegError, match="re-run the segmentation command to finish it"):
        open_volume(out)
    with pytest.raises(BatterySegError, match="partially written"):
        open_volume(store.partial_path / "0")
    live = open_volume(store.partial_path, allow_partial=True)
    np.testing.assert_array_equal(live.data[8:16].compute(), EXPECTED[8:16])
    assert int(live.data[0:8].max().compute()) == 0


def test_keys_with_odd_characters(tmp_path):
    store = _create(tmp_path / "seg.zarr")
    keys = {"z0-8/y0/x0", ".hidden", "block (1, 2, 3)", "ü"}
    for key in keys:
        store.mark_done(key)
    assert store.done_keys() == keys and all(store.is_done(k) for k in keys)


def test_bad_store_arguments(tmp_path):
    with pytest.raises(BatterySegError, match=r"ending in .zarr"):
        _create(tmp_path / "seg.tif")
    with pytest.raises(BatterySegError, match="chunks must be three positive integers"):
        _create(tmp_path / "seg.zarr", chunks=(0, 1, 1))
    with pytest.raises(BatterySegError, match="invalid extra array name"):
        _create(tmp_path / "seg.zarr", extras={"0": (SHAPE, "uint8")})


def test_pickled_store_writes_from_another_process(tmp_path):
    store = _create(tmp_path / "seg.zarr")
    store.array[0:8]  # the zarr handle is not pickled, only path and description
    payload = pickle.dumps(store)
    assert len(payload) < 4000
    code = (
        "import pickle, sys; s = pickle.load(sys.stdin.buffer); s.array[8:16] = 4; s.mark_done('1')"
    )
    subprocess.run([sys.executable, "-c", code], input=payload, check=True, timeout=120)
    assert store.done_keys() == {"1"} and int(np.asarray(store.array[8:16]).min()) == 4


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from battery_seg.io import LabelStore
    store = LabelStore.create_or_resume(
        sys.argv[1], shape={shape}, chunks={chunks}, phases="si-graphite",
        voxel_size=(0.5, 0.25, 0.25), fingerprint="input=a;model=b")
    expected = np.repeat(np.arange(8, dtype=np.uint8) % 4 + 1, 8)[:, None, None]
    for i in range(8):
        if store.is_done(str(i)):
            continue
        block = expected[i * 8:(i + 1) * 8] * np.ones((8, *{shape}[1:]), np.uint8)
        if i == 4:
            store.array[i * 8:i * 8 + 4] = block[:4]   # half of block 4 written ...
            print("writing", flush=True)
            time.sleep(120)                            # ... when the process is killed
        store.array[i * 8:(i + 1) * 8] = block
        store.mark_done(str(i))
    store.finalize()
""").format(shape=SHAPE, chunks=CHUNKS)


def test_killed_writer_leaves_a_resumable_partial_store(tmp_path):
    out = tmp_path / "seg.zarr"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert not out.exists() and not is_complete_store(out)
    assert (tmp_path / "seg.zarr.partial").is_dir()
    with pytest.raises(BatterySegError, match="re-run the segmentation command"):
        open_volume(out)
    store = _create(out)
    assert store.resumed and store.done_keys() == {"0", "1", "2", "3"}
    for i in range(8):
        if not store.is_done(str(i)):
            _write_block(store, i)
    store.finalize()
    np.testing.assert_array_equal(open_volume(out).data.compute(), EXPECTED)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg.zarr"]
