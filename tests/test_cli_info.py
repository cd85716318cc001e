"""``battery-seg info`` on every supported format, and its errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile

from battery_seg.cli import main
from battery_seg.io import LabelStore, write_labels

SHAPE = (6, 20, 16)


@pytest.fixture
def image() -> np.ndarray:
    data = np.full(SHAPE, 1000, np.uint16)
    data[2, 3, 4], data[5, 5, 6] = 17, 4021  # slices 1, 2 and 4 are the sampled ones
    return data


def _info(capsys, *args) -> tuple[int, dict[str, str], str]:
    code = main(["info", *map(str, args)])
    out, err = capsys.readouterr()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return code, {k: v.strip() for k, v in fields.items()}, err


def test_info_tiff(tmp_path, capsys, image):
    path = tmp_path / "scan.tif"
    tifffile.imwrite(
        path,
        image,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"axes": "ZYX", "spacing": 1.5, "unit": "micron"},
    )
    code, info, _ = _info(capsys, path)
    assert code == 0
    assert info["format"] == "ImageJ TIFF" and info["kind"] == "image"
    assert info["shape"] == "6 × 20 × 16 (Z, Y, X)" and info["dtype"] == "uint16"
    assert info["chunks"] == "(6, 20, 16) × 1 (3.8 KiB each)"
    assert info["voxel size"] == "1.5 × 0.5 × 0.5 µm (Z, Y, X), from the file's metadata"
    assert info["value range"] == "17 .. 4021 (exact)"


def test_info_folder_with_voxel_size_override(tmp_path, capsys, image):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z, plane in enumerate(image):
        tifffile.imwrite(folder / f"slice_{z}.tif", plane)
    code, info, _ = _info(capsys, folder)
    assert code == 0 and info["format"] == "folder of 6 TIFF slices"
    assert info["voxel size"].startswith("1 × 1 × 1 pixel (Z, Y, X), none in the metadata")
    code, info, _ = _info(capsys, folder, "--voxel-size", "2", "0.5", "0.5")
    assert info["voxel size"] == "2 × 0.5 × 0.5 µm (Z, Y, X), given with --voxel-size"


def test_info_zarr_labels(tmp_path, capsys):
    labels = np.zeros(SHAPE, np.uint8)
    labels[1] = 3
    path = write_labels(tmp_path / "seg.zarr", labels, phases="nmc", voxel_size=(1, 2, 2))
    code, info, _ = _info(capsys, path)
    assert code == 0 and info["kind"] == "labels"
    assert info["format"] == "OME-Zarr 0.4 label image (Zarr v2, 1 level)"
    assert info["phases"] == "1=pore, 2=active, 3=cbd" and info["value range"] == "0 .. 3 (exact)"


def test_info_partial_store(tmp_path, capsys):
    store = LabelStore.create_or_resume(
        tmp_path / "seg.zarr",
        shape=SHAPE,
        chunks=SHAPE,
        phases="nmc",
        voxel_size=1,
        fingerprint="x",
    )
    code, info, _ = _info(capsys, store.partial_path)
    assert code == 0 and info["status"].startswith("partially written")


def test_info_hdf5(tmp_path, capsys, image):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("exchange/data", data=image.astype(np.float32), chunks=(1, 20, 16))
        f["exchange/data"].attrs["element_size_um"] = 0.65
        f["exchange/theta"] = np.arange(6.0)
    code, info, _ = _info(capsys, f"{path}:/exchange/data")
    assert code == 0 and info["format"] == "HDF5 dataset /exchange/data"
    assert info["dtype"] == "float32" and info["value range"] == "17 .. 4021 (exact)"
    assert info["voxel size"].startswith("0.65 × 0.65 × 0.65 µm")


def test_info_sampled_range_for_large_volumes(tmp_path, capsys, monkeypatch, image):
    from battery_seg.io import _volume

    monkeypatch.setattr(_volume, "EXACT_RANGE_BYTES", 0)
    monkeypatch.setattr(_volume.Volume.value_range, "__defaults__", (0,))
    tifffile.imwrite(tmp_path / "a.tif", image)
    code, info, _ = _info(capsys, tmp_path / "a.tif")
    assert code == 0
    assert info["value range"] == "17 .. 1000 (sampled from 3 slices, not exact)"


def test_info_errors_are_one_line(tmp_path, capsys):
    code, _, err = _info(capsys, tmp_path / "missing.tif")
    assert code == 2
    assert (
        err.strip() == f"battery-seg info: error: {tmp_path / 'missing.tif'} does not exist. "
        "Check the path (and the current folder)."
    )
    tifffile.imwrite(
        tmp_path / "hyper.tif",
        np.zeros((2, 3, 8, 8), np.uint8),
        imagej=True,
        metadata={"axes": "ZCYX"},
    )
    code, _, err = _info(capsys, tmp_path / "hyper.tif")
    assert code == 2 and "--channel" in err and "Traceback" not in err
    code, info, _ = _info(capsys, tmp_path / "hyper.tif", "--channel", "1")
    assert code == 0 and info["channel"] == "1"


def test_info_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["info", "--help"])
    out = capsys.readouterr().out
    assert "battery-seg info scan.h5:/exchange/data" in out and "--voxel-size Z Y X" in out
