"""Bad input files and values: one clear line within seconds, inputs byte-identical, no hang.

Tiny files that declare huge shapes, corrupt chunks, truncated slices, empty and one-slice
volumes, NaN, 4D/5D stacks (``--channel`` / ``--timepoint`` on every command), hostile phase
names in a file's metadata, absurd phase values and voxel sizes, malformed scheduler files.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import tifffile
import zarr

from bad_input_helpers import digest, image_volume, labels_volume, run_cli
from battery_seg.errors import BatterySegError
from battery_seg.io import open_volume, write_labels
from cluster_helpers import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HUGE = (10**6, 10**6, 10**6)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "model.pt", seed=2)


@pytest.fixture
def huge_files(tmp_path):
    """A ~300-byte Zarr array and a ~1 KB HDF5 file, each declaring an exabyte."""
    store = tmp_path / "huge.zarr"
    zarr.open_array(str(store), mode="w", shape=HUGE, chunks=(64, 64, 64), dtype="u1")
    h5 = tmp_path / "huge.h5"
    with h5py.File(h5, "w") as file:
        file.create_dataset("data", shape=HUGE, chunks=(1, 64, 64), dtype="u2")
    return store, h5


@pytest.mark.parametrize("command", ["info", "stats", "masks", "segment", "train"])
def test_a_tiny_file_declaring_a_huge_shape_is_refused_at_once(
    huge_files, tmp_path, capsys, model, command
):
    before = digest(*huge_files)
    for source in huge_files:
        args = {
            "info": ["info", source],
            "stats": ["stats", source],
            "masks": ["masks", source, "--phase", "pore", "-o", tmp_path / "m.tif"],
            "segment": ["segment", source, "-o", tmp_path / "s.zarr", "--model", model],
            "train": ["train", source, source, "-o", tmp_path / "m.pt"],
        }[command]
        _, err = run_cli(capsys, *args)
        assert "chunks to plan" in err and str(source.name) in err
    assert digest(*huge_files) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.h5", "huge.zarr"]


def test_a_huge_plane_is_sampled_not_loaded(tmp_path, capsys):
    store = tmp_path / "wide.zarr"
    array = zarr.open_array(
        str(store), mode="w", shape=(4, 60000, 60000), chunks=(1, 4096, 4096), dtype="u2"
    )
    array[2, 29000:31000, 29000:31000] = 7  # in the centre of a sampled slice
    out, _ = run_cli(capsys, "info", store, code=0)
    assert "value range: 0 .. 7 (sampled from 3 slices, not exact)" in out


def test_a_corrupt_chunk_is_one_line_naming_the_file(tmp_path, capsys, model):
    store = tmp_path / "labels.zarr"
    array = zarr.open_array(
        str(store), mode="w", shape=(8, 40, 36), chunks=(4, 40, 36), dtype="u1", zarr_format=2
    )
    array[:] = labels_volume((8, 40, 36), phases=3)
    (store / "1.0.0").write_bytes(b"not a compressed chunk" * 4)
    before = digest(store)
    for args in (
        ["info", store],
        ["stats", store, "--phases", "nmc"],
        ["masks", store, "--phases", "nmc", "--phase", "pore", "-o", tmp_path / "m.tif"],
        ["segment", store, "-o", tmp_path / "s.tif", "--model", model, "--tile", "32"],
    ):
        _, err = run_cli(capsys, *args)
        assert f"Cannot read {store}" in err and "damaged" in err
    assert digest(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.zarr"]


def test_a_truncated_slice_in_a_folder_is_named(tmp_path, capsys):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z, plane in enumerate(image_volume((3, 40, 36))):
        tifffile.imwrite(folder / f"s{z}.tif", plane)
    data = (folder / "s1.tif").read_bytes()
    (folder / "s1.tif").write_bytes(data[: len(data) // 2])
    _, err = run_cli(capsys, "info", folder)
    assert "s1.tif" in err and "truncated" in err


def test_one_slice_and_one_voxel_are_measured_not_crashed(tmp_path, capsys):
    path = tmp_path / "one.tif"
    write_labels(path, labels_volume((1, 24, 20)), phases="si-graphite", voxel_size=0.5)
    out, _ = run_cli(capsys, "stats", path, "--json", tmp_path / "one.json", code=0)
    assert "n/a" in out  # a single slice samples no volume: no specific surface area
    data = json.loads((tmp_path / "one.json").read_text())
    assert data["phases"]["pore"]["specific_surface_area_per_phase_volume"] is None
    three = tmp_path / "three.tif"
    write_labels(three, labels_volume((3, 24, 20)), phases="si-graphite", voxel_size=0.5)
    roi = ["--roi", "1:2,5:6,5:6", "--tortuosity", "--axis", "all"]
    run_cli(capsys, "stats", three, *roi, code=0)
    run_cli(
        capsys, "masks", path, "--phase", "pore", "--axis", "y", "-o", tmp_path / "m.tif", code=0
    )


def test_an_empty_volume_is_refused(tmp_path, capsys):
    store = tmp_path / "empty.zarr"
    zarr.open_array(str(store), mode="w", shape=(0, 32, 32), chunks=(8, 32, 32), dtype="u1")
    mask = tmp_path / "m.tif"
    for args in (
        ["info", store],
        ["stats", store],
        ["masks", store, "--phase", "pore", "-o", mask],
    ):
        _, err = run_cli(capsys, *args)
        assert "is empty: its volume has shape (0, 32, 32)" in err


def test_a_range_that_skips_nan_is_not_called_exact(tmp_path, capsys):
    image = np.random.default_rng(0).random((6, 16, 16)).astype(np.float32)
    image[0, 0, :5] = np.nan
    image[1, 1, 1] = np.inf
    tifffile.imwrite(tmp_path / "nan.tif", image)
    out, _ = run_cli(capsys, "info", tmp_path / "nan.tif", code=0)
    line = next(line for line in out.splitlines() if line.startswith("value range"))
    assert "(exact" not in line and "6 NaN or infinite voxels left out" in line


@pytest.fixture
def stacks(tmp_path):
    image = np.stack([image_volume(), image_volume(seed=1)])
    ome = tmp_path / "czyx.ome.tif"
    tifffile.imwrite(ome, image, ome=True, metadata={"axes": "CZYX"})
    labels = np.stack([labels_volume((6, 40, 36), seed=s) for s in range(3)])
    series = tmp_path / "tzyx.tif"
    tifffile.imwrite(series, labels, imagej=True, metadata={"axes": "TZYX"})
    return ome, series, image, labels


def test_every_command_that_reads_a_volume_takes_channel_and_timepoint(
    stacks, tmp_path, capsys, model
):
    ome, series, _, labels = stacks
    before = digest(ome, series)
    _, err = run_cli(capsys, "segment", ome, "-o", tmp_path / "s.tif", "--model", model)
    assert "--channel" in err
    segment = ["segment", ome, "-o", tmp_path / "s.tif", "--model", model, "--tile", "32"]
    run_cli(capsys, *segment, "--channel", "1", code=0)
    _, err = run_cli(capsys, "stats", series, "--json", tmp_path / "x.json")
    assert "--timepoint" in err
    run_cli(capsys, "stats", series, "--timepoint", "2", "--json", tmp_path / "t.json", code=0)
    fractions = json.loads((tmp_path / "t.json").read_text())["phases"]["pore"]
    assert fractions["volume_fraction"] == pytest.approx(np.mean(labels[2] == 1))
    mask = ["masks", series, "--phase", "pore", "-o", tmp_path / "m.tif", "--timepoint", "1"]
    run_cli(capsys, *mask, code=0)
    info, _ = run_cli(capsys, "info", ome, "--channel", "0", code=0)
    assert "channel:" in info
    painted = tmp_path / "painted.tif"
    write_labels(painted, labels_volume((6, 40, 36), phases=3), phases="nmc", voxel_size=1)
    train = ["train", ome, painted, "-o", tmp_path / "m.pt", "--channel", "1", "--epochs", "1"]
    run_cli(capsys, *train, "--steps", "1", "--patch", "32", "--batch", "1", code=0)
    _, err = run_cli(capsys, "stats", series, "--timepoint", "7")
    assert "timepoint 7 is out of range" in err
    assert digest(ome, series) == before


def test_phase_names_from_a_file_are_safe_on_a_terminal_and_in_a_spreadsheet(tmp_path, capsys):
    store = tmp_path / "labels.zarr"
    write_labels(store, labels_volume(phases=3), phases="pore,active,cbd", voxel_size=1)
    attrs = json.loads((store / ".zattrs").read_text())
    names = ["\x1b[2Jpore\x07", '=HYPERLINK("http://evil","x")', "@SUM(1)"]
    for entry, name in zip(attrs["battery_seg"]["phases"]["phases"], names, strict=True):
        entry["name"] = name
    (store / ".zattrs").write_text(json.dumps(attrs))
    out, _ = run_cli(capsys, "stats", store, "--csv", tmp_path / "s.csv", code=0)
    assert "\x1b" not in out and "\x07" not in out
    cells = [line.split(",")[0] for line in (tmp_path / "s.csv").read_text().splitlines()[1:]]
    assert cells[:3] == ["p2Jpore", "HYPERLINK__http___evil___x", "SUM_1"]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def test_absurd_phase_values_are_refused_before_any_allocation(tmp_path, capsys):
    path = tmp_path / "labels.tif"
    write_labels(path, labels_volume(), phases="si-graphite", voxel_size=1)
    _, err = run_cli(capsys, "stats", path, "--phases", "a=999999999999,b=1")
    assert "16,777,215" in err and "931.3 GiB" in err
    store = tmp_path / "labels.zarr"
    write_labels(store, labels_volume(phases=2), phases="a=0,b=1", voxel_size=1)
    attrs = json.loads((store / ".zattrs").read_text())
    attrs["battery_seg"]["phases"]["phases"][0]["source_value"] = 10**15
    (store / ".zattrs").write_text(json.dumps(attrs))
    assert open_volume(store).phases is None  # unreadable phases: dropped, not allocated
    run_cli(capsys, "stats", store, "--phases", "a,b", "--no-connectivity", code=0)


@pytest.mark.parametrize(
    "size", [["0", "1", "1"], ["nan", "1", "1"], ["-1", "1", "1"], ["inf", "1", "1"]]
)
def test_absurd_voxel_sizes_are_refused(tmp_path, capsys, model, size):
    path = tmp_path / "labels.tif"
    write_labels(path, labels_volume(phases=3), phases="nmc", voxel_size=1)
    for args in (
        ["info", path],
        ["stats", path],
        ["masks", path, "--phase", "pore", "-o", tmp_path / "m.tif"],
        ["segment", path, "-o", tmp_path / "s.tif", "--model", model],
    ):
        _, err = run_cli(capsys, *args, "--voxel-size", *size)
        assert "Invalid voxel size" in err
    from battery_seg.analysis import AnalysisConfig
    from battery_seg.inference import segment

    for bad in ("abc", (1, 2), (0.5, float("nan"), 1)):
        with pytest.raises(BatterySegError, match="Invalid voxel size"):
            AnalysisConfig(voxel_size=bad)
        with pytest.raises(BatterySegError, match="Invalid voxel size"):
            segment(np.zeros((1, 8, 8)), voxel_size=bad)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a dask scheduler file"),
        ('{"no": "address"}', "not a dask scheduler file"),
        ("[1, 2]", "not a dask scheduler file"),
        (None, "is a folder"),
    ],
)
def test_a_malformed_scheduler_file_is_one_line_at_once(tmp_path, capsys, content, message):
    path = tmp_path / "labels.tif"
    write_labels(path, labels_volume(), phases="si-graphite", voxel_size=1)
    scheduler = tmp_path / "scheduler.json"
    if content is None:
        scheduler.mkdir()
    else:
        scheduler.write_text(content)
    _, err = run_cli(capsys, "stats", path, "--scheduler", scheduler)
    assert message in err


def test_garbage_files_are_named(tmp_path, capsys):
    for name, content in (("a.tif", b"\x00" * 100), ("b.h5", b"HDF?" * 50), ("c.tif", b"")):
        (tmp_path / name).write_bytes(content)
        _, err = run_cli(capsys, "info", tmp_path / name)
        assert name in err


def test_an_absurd_sample_shape_is_refused_before_anything_is_made(tmp_path, capsys):
    _, err = run_cli(capsys, "sample", "-o", tmp_path / "big", "--shape", "100000", "100000", "9")
    assert "would need" in err and "of memory" in err and "smaller shape" in err
    assert list(tmp_path.iterdir()) == []
