"""open_volume: every format round-trips exactly, lazily, with its voxel size."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import tifffile
import zarr

from battery_seg.io import open_volume
from battery_seg.io._common import MAX_SLAB_SLICES, TARGET_CHUNK_BYTES, slab_chunks

SHAPE = (12, 24, 20)


@pytest.fixture
def volume() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 60000, SHAPE, dtype=np.uint16)


def _check(vol, expected, voxel_size, unit="µm", source="metadata"):
    assert vol.data.shape == expected.shape
    assert vol.data.dtype == expected.dtype
    np.testing.assert_array_equal(vol.data.compute(), expected)
    np.testing.assert_allclose(vol.voxel_size, voxel_size, rtol=1e-6)
    assert vol.unit == unit
    assert vol.voxel_size_source == source
    assert vol.levels[0] is vol.data


# -- TIFF ---------------------------------------------------------------------------------------
def test_imagej_tiff(tmp_path, volume):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(
        path,
        volume,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.5),
        metadata={"axes": "ZYX", "spacing": 2.0, "unit": "micron"},
    )
    vol = open_volume(path)
    _check(vol, volume, (2.0, 0.5, 0.25))
    assert vol.metadata["format"] == "ImageJ TIFF" and vol.name == "stack" and vol.kind == "image"


def test_imagej_unit_nm_is_converted(tmp_path, volume):
    path = tmp_path / "nm.tif"
    tifffile.imwrite(
        path,
        volume,
        imagej=True,
        resolution=(1 / 20, 1 / 20),
        metadata={"axes": "ZYX", "spacing": 40.0, "unit": "nm"},
    )
    _check(open_volume(path), volume, (0.04, 0.02, 0.02))


def test_ome_tiff(tmp_path, volume):
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(
        path,
        volume,
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 300.0,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeY": 0.3,
            "PhysicalSizeZ": 0.7,
        },
    )
    vol = open_volume(path)
    _check(vol, volume, (0.7, 0.3, 0.3))
    assert vol.name == "stack" and vol.metadata["format"] == "OME-TIFF"


def test_plain_tiff_resolution_tags(tmp_path, volume):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, volume, resolution=(10000, 5000), resolutionunit="CENTIMETER")
    vol = open_volume(path)
    _check(vol, volume, (1.0, 2.0, 1.0))
    assert "no z spacing" in vol.metadata["voxel_size_note"]


def test_tiff_without_size_is_default_and_override(tmp_path, volume):
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, volume, compression="zlib", tile=(16, 16), metadata=None)
    _check(open_volume(path), volume, (1, 1, 1), unit="pixel", source="default")
    _check(open_volume(path, voxel_size=(0.5, 0.2, 0.2)), volume, (0.5, 0.2, 0.2), source="user")
    _check(open_volume(path, voxel_size=0.3), volume, (0.3, 0.3, 0.3), source="user")


def test_bigtiff_float(tmp_path):
    data = np.random.default_rng(1).random(SHAPE, dtype=np.float32)
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, data, bigtiff=True)
    vol = open_volume(path)
    _check(vol, data, (1, 1, 1), unit="pixel", source="default")
    assert "BigTIFF" in vol.metadata["format"]


def test_imagej_hyperstack_channel_and_timepoint(tmp_path):
    data = np.arange(2 * 5 * 3 * 8 * 9, dtype=np.uint8).reshape(2, 5, 3, 8, 9)  # T Z C Y X
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZCYX", "spacing": 3.0})
    vol = open_volume(path, channel=2, timepoint=1)
    np.testing.assert_array_equal(vol.data.compute(), data[1, :, 2])
    assert vol.metadata["axes"] == "TZCYX" and vol.name == "hyper [channel 2] [timepoint 1]"


def test_tiff_pyramid_levels(tmp_path, volume):
    path = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(volume, subifds=1, metadata={"axes": "ZYX"}, tile=(16, 16))
        tif.write(volume[:, ::2, ::2], subfiletype=1, tile=(16, 16))
    vol = open_volume(path)
    assert [lvl.shape for lvl in vol.levels] == [SHAPE, (12, 12, 10)]
    np.testing.assert_array_equal(vol.levels[1].compute(), volume[:, ::2, ::2])


def test_tiff_slice_reads_only_its_page(tmp_path, volume, monkeypatch):
    from battery_seg.io import _tiff

    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, volume, imagej=True, metadata={"axes": "ZYX"})
    reads = []
    original = _tiff.TiffArray.__getitem__
    monkeypatch.setattr(
        _tiff.TiffArray, "__getitem__", lambda self, key: reads.append(key) or original(self, key)
    )
    vol = open_volume(path)
    assert reads == []
    np.testing.assert_array_equal(np.asarray(vol.data[7]), volume[7])
    assert len(reads) == 1 and reads[0][0] == 7


# -- folder of slices ---------------------------------------------------------------------------
def test_folder_natural_order(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z in (1, 2, 10, 3):
        tifffile.imwrite(
            folder / f"slice_{z}.tif",
            np.full((6, 7), z, np.uint16),
            imagej=True,
            resolution=(2.0, 2.0),
            metadata={"unit": "micron", "spacing": 0.8},
        )
    (folder / "notes.txt").write_text("ignored")
    vol = open_volume(folder)
    assert vol.data.shape == (4, 6, 7)
    assert vol.data[:, 0, 0].compute().tolist() == [1, 2, 3, 10]
    np.testing.assert_allclose(vol.voxel_size, (0.8, 0.5, 0.5))
    assert vol.voxel_size_source == "metadata" and vol.name == "slices"
    assert vol.data[::2, 1:3].compute()[:, 0, 0].tolist() == [1, 3]


def test_folder_chunks_span_few_slices(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for z in range(40):
        tifffile.imwrite(folder / f"s{z:03d}.tif", np.full((4, 5), z, np.uint8))
    vol = open_volume(folder)
    assert vol.data.chunks[0][0] == MAX_SLAB_SLICES
    assert vol.data[:, 0, 0].compute().tolist() == list(range(40))


# -- Zarr / OME-Zarr ----------------------------------------------------------------------------
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_plain_zarr_array_and_group(tmp_path, volume, zarr_format):
    path = tmp_path / "plain.zarr"
    group = zarr.open_group(store=str(path), mode="w", zarr_format=zarr_format)
    array = group.create_array("data", shape=volume.shape, chunks=(4, 12, 20), dtype=volume.dtype)
    array[:] = volume
    for target in (path, tmp_path / "plain.zarr" / "data", f"{path}:/data"):
        vol = open_volume(target)
        _check(vol, volume, (1, 1, 1), unit="pixel", source="default")
        assert f"Zarr v{zarr_format}" in vol.metadata["format"]
    assert open_volume(f"{path}:/data").data.chunks[0][0] % 4 == 0


def _write_ome(
    path, volume, zarr_format, version, scale=(2.0, 0.5, 0.5), unit="micrometer", label=None
):
    group = zarr.open_group(store=str(path), mode="w", zarr_format=zarr_format)
    datasets = []
    for level in range(2):
        data = volume[:, :: 2**level, :: 2**level]
        kwargs = {"dimension_names": ("z", "y", "x")} if zarr_format == 3 else {}
        group.create_array(
            str(level), shape=data.shape, chunks=(4, 8, 8), dtype=data.dtype, **kwargs
        )[:] = data
        level_scale = [scale[0], scale[1] * 2**level, scale[2] * 2**level]
        datasets.append(
            {
                "path": str(level),
                "coordinateTransformations": [{"type": "scale", "scale": level_scale}],
            }
        )
    ms = {
        "version": version,
        "name": "img",
        "datasets": datasets,
        "axes": [{"name": a, "type": "space", "unit": unit} for a in "zyx"],
    }
    attrs = {"multiscales": [ms], **({"image-label": label} if label else {})}
    group.attrs.update(attrs if version == "0.4" else {"ome": {"version": version, **attrs}})
    return group


@pytest.mark.parametrize(("zarr_format", "version"), [(2, "0.4"), (3, "0.5")])
def test_ome_zarr_pyramid(tmp_path, volume, zarr_format, version):
    path = tmp_path / "image.ome.zarr"
    _write_ome(path, volume, zarr_format, version)
    vol = open_volume(path)
    _check(vol, volume, (2.0, 0.5, 0.5))
    assert len(vol.levels) == 2 and vol.levels[1].shape == (12, 12, 10)
    np.testing.assert_array_equal(vol.levels[1].compute(), volume[:, ::2, ::2])
    assert f"OME-Zarr {version} image" in vol.metadata["format"] and vol.name == "image"
    level1 = open_volume(path / "1")  # a level addressed directly keeps its own scale
    np.testing.assert_allclose(level1.voxel_size, (2.0, 1.0, 1.0))


def test_ome_zarr_label_image_under_labels(tmp_path, volume):
    path = tmp_path / "image.zarr"
    image = _write_ome(path, volume, 2, "0.4")
    labels = (volume % 3).astype(np.uint8)
    image.create_group("labels").attrs["labels"] = ["phases"]
    label_attrs = {
        "version": "0.4",
        "properties": [{"label-value": 1, "name": "pore"}, {"label-value": 2, "name": "nmc"}],
    }
    _write_ome(path / "labels" / "phases", labels, 2, "0.4", label=label_attrs)
    for target in (path / "labels" / "phases", path / "labels"):
        vol = open_volume(target)
        _check(vol, labels, (2.0, 0.5, 0.5))
        assert vol.kind == "labels" and vol.phases.names == ("pore", "nmc")


def test_ome_zarr_nanometre_and_channel_axis(tmp_path):
    data = np.arange(2 * 4 * 5 * 6, dtype=np.uint16).reshape(2, 4, 5, 6)
    group = zarr.open_group(store=str(tmp_path / "c.zarr"), mode="w", zarr_format=2)
    group.create_array("0", shape=data.shape, chunks=(1, 4, 5, 6), dtype=data.dtype)[:] = data
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [1, 50, 20, 20]}],
                }
            ],
            "axes": [
                {"name": "c", "type": "channel"},
                *({"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"),
            ],
        }
    ]
    vol = open_volume(tmp_path / "c.zarr", channel=1)
    _check(vol, data[1], (0.05, 0.02, 0.02))


def test_large_virtual_zarr_opens_without_reading_chunks(tmp_path, monkeypatch):
    """A 16 GiB store with no chunk written: opening reads metadata only, a slice its chunks."""
    import time

    from zarr.storage import LocalStore

    path = tmp_path / "huge.zarr"
    group = zarr.open_group(store=str(path), mode="w", zarr_format=2)
    group.create_array("0", shape=(2048, 2048, 2048), chunks=(64, 256, 256), dtype="uint16")
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}
            ],
            "axes": [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"],
        }
    ]
    keys: list[str] = []
    original = LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        keys.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "get", counting_get)
    start = time.perf_counter()
    vol = open_volume(path)
    elapsed = time.perf_counter() - start
    metadata = {".zgroup", ".zattrs", ".zarray", ".zmetadata", "zarr.json"}
    assert keys and all(k.rsplit("/", 1)[-1] in metadata for k in keys), keys
    assert vol.data.shape == (2048,) * 3 and vol.data.nbytes == 16 * 2**30
    assert elapsed < 5.0
    chunk = [c[0] for c in vol.data.chunks]
    assert chunk[0] == 64 and np.prod(chunk) * 2 <= TARGET_CHUNK_BYTES
    keys.clear()
    assert int(vol.data[100].max().compute()) == 0  # unwritten chunks read as the fill value
    chunk_keys = [k for k in keys if k.rsplit("/", 1)[-1] not in metadata]
    assert chunk_keys and all(k.split("/")[1].split(".")[0] == "1" for k in chunk_keys)  # z 1
    assert len(chunk_keys) == 64  # the 8 x 8 chunks of that slab, nothing else


# -- HDF5 ---------------------------------------------------------------------------------------
def test_hdf5_dataset_address_and_element_size(tmp_path, volume):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("exchange/data", data=volume, chunks=(2, 24, 20))
        ds.attrs["element_size_um"] = [1.5, 0.75, 0.75]
        f.create_dataset("exchange/theta", data=np.arange(10.0))
    for target in (f"{path}:/exchange/data", f"{path}::/exchange/data", path):
        vol = open_volume(target)
        _check(vol, volume, (1.5, 0.75, 0.75))
    assert vol.metadata["dataset"] == "/exchange/data"
    assert open_volume(f"{path}:/exchange").data.shape == SHAPE  # a group with one 3D dataset


def test_hdf5_voxel_size_with_unit_and_dimension_labels(tmp_path):
    data = np.arange(3 * 4 * 5 * 6, dtype=np.float32).reshape(3, 4, 5, 6)
    path = tmp_path / "multi.hdf5"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("volume", data=data)
        for dim, label in zip(ds.dims, "CZYX", strict=True):
            dim.label = label
        ds.attrs["voxel_size"] = [100.0, 50.0, 50.0]
        ds.attrs["unit"] = "nm"
    _check(open_volume(f"{path}:/volume", channel=2), data[2], (0.1, 0.05, 0.05))


def test_nexus_default_signal(tmp_path, volume):
    path = tmp_path / "scan.nxs"
    with h5py.File(path, "w") as f:
        f.attrs["default"] = "entry"
        entry = f.create_group("entry")
        entry.attrs["default"] = "data"
        data = entry.create_group("data")
        data.attrs["signal"] = "reconstruction"
        data.create_dataset("reconstruction", data=volume)
        data.create_dataset("dark", data=volume[:2])
        f.create_dataset("entry/instrument/flat", data=volume[:3])
    vol = open_volume(path)
    np.testing.assert_array_equal(vol.data.compute(), volume)
    assert vol.metadata["format"].startswith("NeXus")


# -- chunks, pickling, read-only ----------------------------------------------------------------
def test_slab_chunks_rules():
    assert slab_chunks((100, 512, 512), 2) == (MAX_SLAB_SLICES, 512, 512)
    # a native chunk (a TIFF page) is never split, even above the budget
    assert slab_chunks((4000, 8192, 8192), 2, (1, 8192, 8192)) == (1, 8192, 8192)
    assert slab_chunks((4000, 8192, 8192), 2, (1, 256, 256)) == (1, 4096, 8192)
    assert slab_chunks((500, 2048, 2048), 1, (64, 64, 64)) == (64, 1024, 1024)
    assert slab_chunks((3, 10, 10), 4, (8, 8, 8)) == (3, 10, 10)


def test_volume_pickles_and_reopens(tmp_path, volume):
    tif = tmp_path / "stack.tif"
    tifffile.imwrite(tif, volume)
    h5 = tmp_path / "v.h5"
    with h5py.File(h5, "w") as f:
        f["v"] = volume
    folder = tmp_path / "slices"
    folder.mkdir()
    for z, plane in enumerate(volume):
        tifffile.imwrite(folder / f"{z}.tif", plane)
    ome = tmp_path / "o.zarr"
    _write_ome(ome, volume, 2, "0.4")
    for path in (tif, h5, folder, ome):
        data = open_volume(path).data
        data[0].compute()  # opens the file handle in this process
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(data)).compute(), volume)


def test_opening_and_reading_write_nothing(tmp_path, volume):
    tifffile.imwrite(tmp_path / "a.tif", volume)
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["v"] = volume
    _write_ome(tmp_path / "c.zarr", volume, 2, "0.4")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    for name in ("a.tif", "b.h5", "c.zarr"):
        vol = open_volume(tmp_path / name)
        vol.data.compute()
        vol.value_range(exact_below=0)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_value_range_sampled_and_exact(tmp_path, volume):
    tifffile.imwrite(tmp_path / "a.tif", volume)
    vol = open_volume(tmp_path / "a.tif")
    exact = vol.value_range()
    assert (exact.low, exact.high, exact.sampled_slices) == (volume.min(), volume.max(), None)
    sampled = vol.value_range(exact_below=0)
    picks = volume[[3, 6, 8]]
    assert (sampled.low, sampled.high) == (picks.min(), picks.max())
    assert sampled.sampled_slices == 3
