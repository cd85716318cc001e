"""Bad input files (round 2): damaged packages and checkpoints, files that are not regular files,
datasets that are not 2D-5D arrays of numbers, and a volume thinner than a bundled model's
context. Each is one line naming the file, within seconds, with the inputs untouched."""

from __future__ import annotations

import os
import zipfile

import h5py
import numpy as np
import pytest
import tifffile
import torch
import yaml

from bad_input_helpers import digest, image_volume, run_cli
from battery_seg.model import ModelCard, UNetConfig
from battery_seg.model.checkpoint import card_payload
from battery_seg.phases import PhaseSet
from cluster_helpers import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "model.pt", seed=2)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, image_volume((6, 40, 36)), imagej=True, metadata={"axes": "ZYX"})
    return path


def _package(path):
    """A stored (uncompressed) package zip: rdf.yaml with battery-seg's card and weights.pt."""
    card = ModelCard(
        PhaseSet.parse("nmc"),
        context=3,
        architecture=UNetConfig(in_channels=3, n_phases=3, base_channels=4, depth=2),
    )
    rdf = {
        "type": "model",
        "format_version": "0.5.14",
        "name": "tiny test model",
        "weights": {"pytorch_state_dict": {"source": "weights.pt"}},
        "config": {"battery_seg": card_payload(card)},
    }
    weights = path.with_suffix(".weights")
    torch.save(card.build().state_dict(), weights)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("rdf.yaml", yaml.safe_dump(rdf))
        archive.write(weights, "weights.pt")
    data = weights.read_bytes()
    weights.unlink()
    return path, data


def _segment(capsys, image, tmp_path, model):
    out = tmp_path / "seg.tif"
    _, err = run_cli(capsys, "segment", image, "-o", out, "--model", model)
    assert not out.exists()
    return err


def test_flipped_bytes_in_a_package_are_one_line_naming_it(image, tmp_path, capsys):
    package, weights = _package(tmp_path / "pkg.zip")
    raw = bytearray(package.read_bytes())
    start = bytes(raw).index(weights) + len(weights) // 2
    raw[start : start + 4] = bytes(b ^ 0xFF for b in raw[start : start + 4])
    package.write_bytes(bytes(raw))
    before = digest(package, image)
    err = _segment(capsys, image, tmp_path, package)
    assert str(package) in err and "damaged" in err and "weights.pt" in err
    assert digest(package, image) == before


def test_a_truncated_package_says_it_is_truncated(image, tmp_path, capsys):
    package, _ = _package(tmp_path / "pkg.zip")
    package.write_bytes(package.read_bytes()[: package.stat().st_size // 2])
    err = _segment(capsys, image, tmp_path, package)
    assert str(package) in err and "truncated" in err
    assert "without an rdf.yaml" not in err


@pytest.mark.parametrize("low", [float("nan"), float("inf"), -5.0, 99.9])
def test_stored_normalisation_percentiles_out_of_range_are_refused(
    model, image, tmp_path, capsys, low
):
    payload = torch.load(model, weights_only=True)
    payload["normalization"]["low_percentile"] = low
    damaged = tmp_path / "damaged.pt"
    torch.save(payload, damaged)
    err = _segment(capsys, image, tmp_path, damaged)
    assert str(damaged) in err and "percentiles" in err and "0 <= low < high <= 100" in err


@pytest.mark.parametrize("command", ["info", "stats", "segment", "model"])
def test_a_named_pipe_or_device_is_refused_without_blocking(
    model, image, tmp_path, capsys, command
):
    pipe = tmp_path / "pipe.tif"
    os.mkfifo(pipe)
    args = {
        "info": ["info", pipe],
        "stats": ["stats", "/dev/zero"],
        "segment": ["segment", pipe, "-o", tmp_path / "s.tif", "--model", model],
        "model": ["segment", image, "-o", tmp_path / "s.tif", "--model", pipe],
    }[command]
    _, err = run_cli(capsys, *args)
    assert "not a regular file" in err
    assert "named pipe" in err or "character device" in err


@pytest.mark.parametrize(
    ("dataset", "words"),
    [
        ("scalar", "0D dataset"),
        ("line", "1D dataset"),
        ("six", "6D dataset"),
        ("text", "holds text"),
        ("complex", "complex numbers"),
        ("records", "records"),
    ],
)
def test_a_dataset_that_is_not_a_2d_to_5d_numeric_array_is_one_line(
    tmp_path, capsys, dataset, words
):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file["scalar"] = 5
        file["line"] = np.arange(10)
        file["six"] = np.zeros((2,) * 6, np.uint8)
        file["text"] = np.array([b"ab"] * 8).reshape(2, 2, 2)
        file["complex"] = np.zeros((3, 4, 5), np.complex64)
        file["records"] = np.zeros((3, 4, 5), dtype=[("a", "u1"), ("b", "f4")])
    _, err = run_cli(capsys, "info", f"{path}:/{dataset}")
    assert words in err and f"/{dataset}" in err


def test_a_thin_stack_for_a_bundled_model_suggests_the_2d_model(tmp_path, capsys):
    stack = tmp_path / "stack2.tif"
    tifffile.imwrite(stack, image_volume((2, 64, 64)), imagej=True, metadata={"axes": "ZYX"})
    err = _segment(capsys, stack, tmp_path, "default")
    assert "--model 2d" in err and "'default' (bundled)" in err
    assert "default.pt" not in err and os.sep + "models" + os.sep not in err


@pytest.mark.parametrize("option", ["--json", "--csv", "--pybamm"])
def test_a_folder_where_a_file_is_wanted_is_refused_before_the_work(tmp_path, capsys, option):
    from battery_seg.io import write_labels

    labels = write_labels(
        tmp_path / "lab.tif", np.ones((4, 8, 8), np.uint8), phases="nmc", voxel_size=0.5
    )
    folder = tmp_path / "out"
    folder.mkdir()  # empty: replacing it would lose nothing, but a file is not a folder
    _, err = run_cli(capsys, "stats", labels, option, folder, "--overwrite")
    assert "it is a folder" in err and "opening" not in err  # refused before reading anything
    assert folder.is_dir() and not any(folder.iterdir())


@pytest.mark.parametrize(
    ("resolution", "words"), [(1e-9, "outside 0.0001..10000 µm"), (1e9, "outside")]
)
def test_an_absurd_voxel_size_in_the_metadata_is_ignored_with_a_note(
    tmp_path, capsys, resolution, words
):
    path = tmp_path / "odd.tif"
    tifffile.imwrite(
        path,
        np.ones((4, 8, 8), np.uint8),
        imagej=True,
        metadata={"axes": "ZYX", "unit": "um"},
        resolution=(resolution, resolution),
    )
    printed, _ = run_cli(capsys, "info", path, code=0)
    assert words in printed and "ignored" in printed
    assert "assumed isotropic" in printed
