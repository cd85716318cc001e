"""Bad input: one clear BatterySegError naming the file, the problem and the fix."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile
import zarr

from battery_seg.errors import BatterySegError
from battery_seg.io import open_volume, write_labels


def _error(path, **kwargs) -> str:
    with pytest.raises(BatterySegError) as info:
        open_volume(path, **kwargs)
    return str(info.value)


def test_missing_file(tmp_path):
    message = _error(tmp_path / "nope.tif")
    assert "nope.tif does not exist" in message and "Check the path" in message


def test_unsupported_extension(tmp_path):
    (tmp_path / "scan.png").write_bytes(b"\x89PNG")
    message = _error(tmp_path / "scan.png")
    assert "scan.png" in message and "unsupported file type '.png'" in message
    assert "Convert it to" in message and "folder of 2D TIFF slices" in message


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    message = _error(tmp_path / "empty")
    assert "empty is an empty folder" in message and "folder of 2D TIFF slices" in message


def test_folder_without_tiffs(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("x")
    message = _error(tmp_path / "docs")
    assert "holds no TIFF slices (it holds readme.txt)" in message


def test_slices_of_different_sizes(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z in range(3):
        tifffile.imwrite(folder / f"s{z}.tif", np.zeros((8, 8), np.uint8))
    tifffile.imwrite(folder / "s3.tif", np.zeros((8, 9), np.uint8))
    message = _error(folder)
    assert "slices" in message and "differ in size or type" in message
    assert "3 of shape (8, 8) uint8" in message
    assert "1 of shape (8, 9) uint8 (e.g. s3.tif)" in message
    assert "move the odd ones out" in message


def test_rgb_tiff(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 1] = 7
    tifffile.imwrite(tmp_path / "photo.tif", rgb, photometric="rgb")
    message = _error(tmp_path / "photo.tif")
    assert "photo.tif is an RGB colour image" in message
    assert "convert it to greyscale" in message and "channel=" in message
    vol = open_volume(tmp_path / "photo.tif", channel=1)
    assert vol.data.shape == (1, 16, 16) and int(vol.data.max().compute()) == 7


def test_rgb_slices_in_folder(tmp_path):
    folder = tmp_path / "rgb"
    folder.mkdir()
    for z in range(2):
        tifffile.imwrite(folder / f"s{z}.tif", np.full((8, 8, 3), z, np.uint8), photometric="rgb")
    assert "RGB colour image" in _error(folder)
    assert open_volume(folder, channel=0).data[:, 0, 0].compute().tolist() == [0, 1]


def test_4d_and_5d_stacks_ask_for_channel_and_timepoint(tmp_path):
    data = np.zeros((2, 3, 4, 8, 8), np.uint8)  # T Z C Y X
    tifffile.imwrite(tmp_path / "hyper.tif", data, imagej=True, metadata={"axes": "TZCYX"})
    message = _error(tmp_path / "hyper.tif")
    assert "hyper.tif is a 5D stack with axes T (2), Z (3), C (4), Y (8), X (8)" in message
    assert "timepoint=N (0..1) and channel=N (0..3)" in message
    assert "(--timepoint and --channel on the command line)" in message
    assert "timepoint=N" in _error(tmp_path / "hyper.tif", channel=0)
    assert "channel 7 is out of range" in _error(tmp_path / "hyper.tif", channel=7, timepoint=0)
    tifffile.imwrite(tmp_path / "three.tif", data[0, :, 0], imagej=True, metadata={"axes": "ZYX"})
    assert "has no channel axis" in _error(tmp_path / "three.tif", channel=0)


def test_4d_array_without_axis_names(tmp_path):
    group = zarr.open_group(store=str(tmp_path / "x.zarr"), mode="w", zarr_format=3)
    group.create_array("v", shape=(3, 4, 5, 6), chunks=(1, 4, 5, 6), dtype="uint8")
    message = _error(tmp_path / "x.zarr")
    assert "4D stack with axes C (3), Z (4), Y (5), X (6)" in message
    assert "assumed: the file does not name its axes" in message


def test_hdf5_without_dataset_path_lists_candidates(tmp_path):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["a/raw"] = np.zeros((4, 5, 6), np.uint16)
        f["b/flat"] = np.zeros((4, 5, 6), np.float32)
    message = _error(path)
    assert "two.h5: no dataset path was given and the file holds 2 3D datasets" in message
    assert f"{path}:/a/raw (4, 5, 6) uint16" in message and f"{path}:/b/flat" in message
    assert "Address one as FILE:/path/to/dataset" in message


def test_hdf5_nonexistent_dataset(tmp_path):
    path = tmp_path / "one.h5"
    with h5py.File(path, "w") as f:
        f["exchange/data"] = np.zeros((4, 5, 6), np.uint16)
    message = _error(f"{path}:/exchange/dta")
    assert "there is no dataset '/exchange/dta'" in message
    assert f"{path}:/exchange/data (4, 5, 6) uint16" in message


def test_hdf5_with_no_images(tmp_path):
    path = tmp_path / "meta.h5"
    with h5py.File(path, "w") as f:
        f["angles"] = np.arange(5.0)
    assert "holds no image datasets" in _error(path)


def test_corrupt_hdf5(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"not an hdf5 file at all")
    message = _error(tmp_path / "bad.h5")
    assert "bad.h5 could not be read as an HDF5 file" in message and "copy or export" in message


@pytest.mark.parametrize("fraction", [0.3, 0.9])
@pytest.mark.parametrize(
    "options", [{"imagej": True, "metadata": {"axes": "ZYX"}}, {}, {"compression": "zlib"}]
)
def test_truncated_tiff(tmp_path, fraction, options):
    data = np.random.default_rng(0).integers(0, 255, (20, 64, 48), dtype=np.uint8)
    whole = tmp_path / "whole.tif"
    tifffile.imwrite(whole, data, **options)
    content = whole.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(content[: int(len(content) * fraction)])
    message = _error(cut)
    assert "cut.tif could not be read as a TIFF stack" in message
    assert "truncated or corrupt" in message and "copy or export it again" in message


def test_not_a_tiff(tmp_path):
    (tmp_path / "fake.tif").write_text("hello")
    assert "fake.tif could not be read as a TIFF stack" in _error(tmp_path / "fake.tif")


def test_zarr_group_with_several_arrays(tmp_path):
    group = zarr.open_group(store=str(tmp_path / "g.zarr"), mode="w", zarr_format=2)
    group.create_array("a", shape=(2, 3, 4), dtype="uint8")
    group.create_array("b", shape=(2, 3, 4), dtype="uint8")
    message = _error(tmp_path / "g.zarr")
    assert "Zarr group with 2 arrays and no OME-Zarr image metadata" in message
    assert f"{tmp_path / 'g.zarr'}:/a (2, 3, 4) uint8" in message
    assert "there is no array 'c'" in _error(f"{tmp_path / 'g.zarr'}:/c")


def test_empty_zarr_folder(tmp_path):
    (tmp_path / "e.zarr").mkdir()
    assert "e.zarr is not a readable Zarr store" in _error(tmp_path / "e.zarr")


def test_invalid_voxel_size(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((2, 3, 5), np.uint8))
    message = _error(tmp_path / "a.tif", voxel_size=(1, 0, 1))
    assert "Invalid voxel size" in message and "three positive numbers" in message


def test_never_writes_over_an_input(tmp_path):
    source = tmp_path / "scan.tif"
    data = np.ones((2, 3, 5), np.uint8)
    tifffile.imwrite(source, data)
    before = source.read_bytes()
    open_volume(source)
    with pytest.raises(BatterySegError, match="never modified"):
        write_labels(source, data, phases="si-graphite", voxel_size=1, overwrite=True)
    assert source.read_bytes() == before
    folder = tmp_path / "slices"
    folder.mkdir()
    tifffile.imwrite(folder / "s0.tif", data[0])
    open_volume(folder)
    with pytest.raises(BatterySegError, match="go inside the input"):
        write_labels(folder / "seg.zarr", data, phases="si-graphite", voxel_size=1)
    assert sorted(p.name for p in folder.iterdir()) == ["s0.tif"]
