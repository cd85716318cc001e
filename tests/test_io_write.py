"""write_labels / write_image: exact round trips, metadata, atomic and refusing to overwrite."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr

from battery_seg.checks import forget_input
from battery_seg.errors import BatterySegError
from battery_seg.io import is_complete_store, open_volume, write_image, write_labels
from battery_seg.phases import PhaseSet

SHAPE = (40, 36, 30)


@pytest.fixture
def labels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 5, SHAPE, dtype=np.uint8)


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


def test_labels_to_ome_zarr(tmp_path, labels):
    out = write_labels(
        tmp_path / "seg.zarr",
        labels,
        phases="si-graphite",
        voxel_size=(1.0, 0.5, 0.5),
        chunks=(16, 32, 32),
    )
    assert out == tmp_path / "seg.zarr" and _siblings(out) == ["seg.zarr"]
    assert is_complete_store(out)
    vol = open_volume(out)
    np.testing.assert_array_equal(vol.data.compute(), labels)
    assert vol.kind == "labels" and vol.phases == PhaseSet.parse("si-graphite")
    assert vol.voxel_size == (1.0, 0.5, 0.5) and vol.unit == "µm"
    assert vol.voxel_size_source == "metadata"
    root = zarr.open_group(store=str(out), mode="r")
    assert root["0"].chunks == (16, 32, 30) and root["0"].dtype == np.uint8
    assert root.metadata.zarr_format == 2
    attrs = root.attrs.asdict()
    ms = attrs["multiscales"][0]
    assert ms["version"] == "0.4" and [a["unit"] for a in ms["axes"]] == ["micrometer"] * 3
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 0.5, 0.5]
    label = attrs["image-label"]
    assert {"label-value": 2, "name": "silicon"} in label["properties"]
    assert {"label-value": 1, "rgba": [0x56, 0xB4, 0xE9, 255]} in label["colors"]
    assert attrs["battery_seg"]["complete"] is True
    assert json.loads((out / "0" / ".zarray").read_text())["dimension_separator"] == "/"


def test_labels_to_tiff_imagej_readable(tmp_path, labels):
    out = write_labels(
        tmp_path / "seg.tif", labels, phases="pore,active,cbd,binder", voxel_size=(2.0, 0.25, 0.5)
    )
    with tifffile.TiffFile(out) as tif:
        assert tif.is_imagej and not tif.is_bigtiff
        ij = tif.imagej_metadata
        assert ij["spacing"] == 2.0 and ij["unit"] == "micron" and ij["max"] == 4
        assert tif.pages.first.resolution == pytest.approx((2.0, 4.0))
    vol = open_volume(out)
    np.testing.assert_array_equal(vol.data.compute(), labels)
    assert vol.phases.names == ("pore", "active", "cbd", "binder") and vol.kind == "labels"
    np.testing.assert_allclose(vol.voxel_size, (2.0, 0.25, 0.5))
    assert _siblings(out) == ["seg.tif"]


def test_dask_labels_written_slab_by_slab(tmp_path, labels):
    lazy = da.from_array(labels.astype(np.int64), chunks=(7, 36, 30))
    out = write_labels(tmp_path / "seg.ome.zarr", lazy, phases="si-graphite", voxel_size=0.5)
    np.testing.assert_array_equal(open_volume(out).data.compute(), labels)
    out = write_labels(tmp_path / "seg.tiff", lazy, phases="si-graphite", voxel_size=0.5)
    np.testing.assert_array_equal(open_volume(out).data.compute(), labels)


def test_2d_labels_become_one_slice(tmp_path, labels):
    out = write_labels(tmp_path / "one.zarr", labels[0], phases="si-graphite", voxel_size=1)
    assert open_volume(out).data.shape == (1, *SHAPE[1:])


def _contents(path):
    """What an output holds, read without keeping it as an input of this process (opened
    volumes are inputs, which no writer may replace)."""
    data = open_volume(path).data.compute()
    forget_input(path)
    return data


@pytest.mark.parametrize("name", ["seg.zarr", "seg.tif"])
def test_refuses_existing_output_unless_overwrite(tmp_path, labels, name):
    path = write_labels(tmp_path / name, labels, phases="si-graphite", voxel_size=1)
    with pytest.raises(BatterySegError, match=r"already exists.*overwrite=True"):
        write_labels(path, labels, phases="si-graphite", voxel_size=1)
    np.testing.assert_array_equal(_contents(path), labels)
    write_labels(path, 4 - labels, phases="si-graphite", voxel_size=1, overwrite=True)
    np.testing.assert_array_equal(_contents(path), 4 - labels)
    assert _siblings(path) == [name]
    open_volume(path)  # now an input of this process: never replaced
    with pytest.raises(BatterySegError, match="never modified"):
        write_labels(path, labels, phases="si-graphite", voxel_size=1, overwrite=True)
    forget_input(path)


@pytest.mark.parametrize("name", ["seg.zarr", "seg.tif"])
def test_values_outside_the_phase_set_leave_nothing(tmp_path, labels, name):
    bad = labels.copy()
    bad[-1, -1, -1] = 9  # in the last slab: found only after earlier slabs were written
    with pytest.raises(BatterySegError, match="value 9, but the phase set has 4 phases"):
        write_labels(tmp_path / name, bad, phases="si-graphite", voxel_size=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["seg.zarr", "seg.tif"])
def test_failed_overwrite_keeps_the_old_output(tmp_path, labels, name):
    path = write_labels(tmp_path / name, labels, phases="si-graphite", voxel_size=1)

    def explode(block):
        raise RuntimeError("disk full")

    failing = da.from_array(labels, chunks=(8, 36, 30)).map_blocks(explode, dtype=np.uint8)
    with pytest.raises(RuntimeError, match="disk full"):
        write_labels(path, failing, phases="si-graphite", voxel_size=1, overwrite=True)
    np.testing.assert_array_equal(open_volume(path).data.compute(), labels)
    assert _siblings(path) == [name]


def test_bad_arguments(tmp_path, labels):
    with pytest.raises(BatterySegError, match=r"unsupported extension. Use .zarr"):
        write_labels(tmp_path / "seg.png", labels, phases="si-graphite", voxel_size=1)
    with pytest.raises(BatterySegError, match="labels must be integers"):
        write_labels(tmp_path / "s.zarr", labels * 0.5, phases="si-graphite", voxel_size=1)
    with pytest.raises(BatterySegError, match=r"folder .* does not exist"):
        write_labels(tmp_path / "no" / "s.zarr", labels, phases="si-graphite", voxel_size=1)
    with pytest.raises(BatterySegError, match=r"shape \(2, 2, 2, 2\)"):
        write_labels(tmp_path / "s.zarr", np.zeros((2,) * 4, np.uint8), phases="nmc", voxel_size=1)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
@pytest.mark.parametrize("name", ["image.tif", "image.zarr"])
def test_write_image_round_trip(tmp_path, dtype, name):
    image = (np.random.default_rng(2).random(SHAPE) * 200).astype(dtype)
    out = write_image(tmp_path / name, image, voxel_size=(0.8, 0.4, 0.4))
    vol = open_volume(out)
    assert vol.data.dtype == image.dtype and vol.kind == "image"
    np.testing.assert_array_equal(vol.data.compute(), image)
    np.testing.assert_allclose(vol.voxel_size, (0.8, 0.4, 0.4))
    assert vol.unit == "µm" and vol.voxel_size_source == "metadata"
    if name.endswith(".tif") and dtype != "float64":
        with tifffile.TiffFile(out) as tif:
            assert tif.is_imagej and tif.imagej_metadata["spacing"] == pytest.approx(0.8)


def test_bigtiff_above_4_gib_is_chosen(tmp_path, monkeypatch):
    from battery_seg.io import _write

    monkeypatch.setattr(_write, "_BIGTIFF_BYTES", 1000)
    image = np.arange(np.prod(SHAPE), dtype=np.uint16).reshape(SHAPE)
    out = write_image(tmp_path / "big.tif", image, voxel_size=(3, 1, 1))
    with tifffile.TiffFile(out) as tif:
        assert tif.is_bigtiff and tif.is_ome
    vol = open_volume(out)
    np.testing.assert_array_equal(vol.data.compute(), image)
    np.testing.assert_allclose(vol.voxel_size, (3, 1, 1))
