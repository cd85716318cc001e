"""``battery-seg train`` from image / painted-labels files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from battery_seg.cli import main
from battery_seg.model import load_model
from battery_seg.phantom import make_sample
from battery_seg.training import simulate_strokes

FAST = ["--patch", "32", "--batch", "2", "--epochs", "2", "--steps", "3"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_train")
    sample = make_sample((10, 48, 48), seed=2)
    painted = simulate_strokes(sample.labels, slices=[2, 7], fraction=0.05, seed=1)
    tifffile.imwrite(folder / "image.tif", sample.image)
    tifffile.imwrite(folder / "strokes.tif", painted)
    shifted = np.where(painted > 0, painted + 9, 0).astype(np.uint8)  # values 10..13
    tifffile.imwrite(folder / "foreign.tif", shifted)
    return folder


def test_train_writes_a_model_and_prints_each_epoch(files, tmp_path, capsys):
    output = tmp_path / "model.pt"
    code = main(
        [
            "train",
            str(files / "image.tif"),
            str(files / "strokes.tif"),
            "-o",
            str(output),
            "--phases",
            "si-graphite",
            "--context",
            "3",
            *FAST,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert out.count("epoch ") >= 2 and "val IoU" in out and f"saved {output}" in out
    _, card = load_model(output)
    assert card.context == 3 and card.phases.names == ("pore", "silicon", "cbd", "graphite")
    assert "strokes.tif" in card.provenance["data"][0]["name"]
    # the start model knows the phantom: the fractions are matched to its own (moved by less
    # than a point here, so without a note; test_training_fractions has one that moves)
    matched = card.provenance["fractions"]
    assert matched["target"] == pytest.approx(matched["after"], abs=0.02)
    assert ("Phase fractions matched" in err) == (
        max(abs(a - b) for a, b in zip(matched["before"], matched["after"], strict=True)) >= 0.01
    )


def test_no_match_fractions_keeps_the_strokes_fractions(files, tmp_path, capsys):
    output = tmp_path / "model.pt"
    args = ["train", str(files / "image.tif"), str(files / "strokes.tif"), "-o", str(output)]
    assert main([*args, "--no-match-fractions", *FAST]) == 0
    assert "Phase fractions" not in capsys.readouterr().err
    _, card = load_model(output)
    assert "fractions" not in card.provenance
    assert card.provenance["config"]["match_fractions"] is False


def test_no_grey_levels_keeps_the_network_alone(files, tmp_path, capsys):
    args = ["train", str(files / "image.tif"), str(files / "strokes.tif"), "--init", "scratch"]
    assert main([*args, "-o", str(tmp_path / "blended.pt"), *FAST]) == 0
    assert "blends in a classifier of the grey levels" in capsys.readouterr().err
    assert load_model(tmp_path / "blended.pt")[1].architecture.grey_hidden > 0
    assert main([*args, "-o", str(tmp_path / "alone.pt"), "--no-grey-levels", *FAST]) == 0
    assert "grey levels" not in capsys.readouterr().err
    _, card = load_model(tmp_path / "alone.pt")
    assert card.architecture.grey_hidden == 0 and card.provenance["config"]["grey_weight"] == 0


def test_strokes_on_one_slice_are_noted_and_training_goes_on(files, tmp_path, capsys):
    sample = make_sample((10, 48, 48), seed=2)  # the image of ``files``
    painted = simulate_strokes(sample.labels, slices=[4], fraction=0.05, seed=1)
    tifffile.imwrite(tmp_path / "one.tif", painted)
    before = (tmp_path / "one.tif").read_bytes()
    output = tmp_path / "model.pt"
    args = ["train", str(files / "image.tif"), str(tmp_path / "one.tif"), "-o", str(output)]
    code = main([*args, "--context", "1", *FAST])
    err = capsys.readouterr().err
    assert code == 0 and output.exists()
    assert "note: " in err and "every stroke is on slice z=4 of 10" in err
    assert (tmp_path / "one.tif").read_bytes() == before


def test_a_stack_of_unrelated_slices_trains_the_2d_model_and_says_so(tmp_path, capsys):
    sample = make_sample((64, 48, 48), seed=4)  # every 20th slice: unrelated images
    image, labels = sample.image[::20], sample.labels[::20]
    tifffile.imwrite(tmp_path / "slices.tif", image, photometric="minisblack")
    strokes = simulate_strokes(labels, slices=[1], seed=0)
    tifffile.imwrite(tmp_path / "strokes.tif", strokes, photometric="minisblack")
    output = tmp_path / "model.pt"
    args = ["train", str(tmp_path / "slices.tif"), str(tmp_path / "strokes.tif")]
    assert main([*args, "-o", str(output), *FAST]) == 0
    err = capsys.readouterr().err
    assert "note: Neighbouring slices look unrelated in labels '" in err
    assert "slices.tif' (" in err
    assert "--init default" in err
    _, card = load_model(output)
    assert card.context == 1 and card.provenance["init"] == "2d"


def test_two_pairs_name_value_phases_and_fine_tuning(files, tmp_path, capsys):
    first = tmp_path / "first.pt"
    image, foreign = str(files / "image.tif"), str(files / "foreign.tif")
    phases = "pore=10,silicon=11,cbd=12,graphite=13"
    assert (
        main(
            [
                "train",
                image,
                foreign,
                image,
                foreign,
                "-o",
                str(first),
                "--phases",
                phases,
                "--context",
                "1",
                *FAST,
            ]
        )
        == 0
    )
    _, card = load_model(first)
    assert len(card.provenance["data"]) == 2 and card.phases.names[2] == "cbd"
    second = tmp_path / "second.pt"
    assert (
        main(
            [
                "train",
                image,
                foreign,
                "-o",
                str(second),
                "--phases",
                phases,
                "--init",
                str(first),
                "--minutes",
                "0.02",
                "--patch",
                "32",
                "--batch",
                "2",
                "--steps",
                "3",
            ]
        )
        == 0
    )
    _, tuned = load_model(second)
    assert tuned.provenance["init"] == str(first) and tuned.context == 1
    assert tuned.provenance["stopped_by"] == "time"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["ONLY_IMAGE"], "in pairs"),
        (["--phases", "nmc"], r"values \[4\] outside the phase set"),
        (["EXISTING"], "already exists"),
    ],
)
def test_errors_are_one_line_without_traceback(files, tmp_path, capsys, extra, message):
    output = tmp_path / "model.pt"
    args = ["train", str(files / "image.tif"), str(files / "strokes.tif")]
    if extra == ["ONLY_IMAGE"]:
        args.append(str(files / "image.tif"))
        extra = []
    if extra == ["EXISTING"]:
        output.write_bytes(b"old")
        extra = []
    code = main([*args, "-o", str(output), *FAST, *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[-1].startswith("battery-seg train: error:") and "Traceback" not in err
    assert message.replace("\\", "") in err or __import__("re").search(message, err)
    if output.exists():
        assert output.read_bytes() == b"old"
