"""Bad models and absurd settings: damaged checkpoints, tiles below the field of view, block /
batch / patch sizes that cannot fit, devices that are not there, and training runs that would
silently save nonsense."""

from __future__ import annotations

import pytest
import tifffile
import torch

from bad_input_helpers import digest, image_volume, run_cli
from battery_seg.errors import BatterySegError
from battery_seg.io import open_volume, write_labels
from battery_seg.model import load_model
from cluster_helpers import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TRAIN = ["--epochs", "1", "--steps", "2", "--patch", "32", "--batch", "1"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "model.pt", seed=2)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An image and fully painted labels (nmc, values 1..3)."""
    folder = tmp_path_factory.mktemp("files")
    image = image_volume((6, 40, 36))
    tifffile.imwrite(folder / "image.tif", image, imagej=True, metadata={"axes": "ZYX"})
    labels = 1 + (image > 8000).astype("uint8") + (image > 20000)
    write_labels(folder / "labels.tif", labels, phases="nmc", voxel_size=1)
    return folder


def _damaged(model, tmp_path, change):
    payload = torch.load(model, weights_only=True)
    change(payload)
    path = tmp_path / "damaged.pt"
    torch.save(payload, path)
    return path


def _nan_weights(payload):
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][name][0] = float("nan")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("context"), "damaged or incomplete (KeyError"),
        (lambda p: p.update(context="three"), "damaged or incomplete (ValueError"),
        (lambda p: p.update(phases={"phases": 5}), "damaged or incomplete"),
        (lambda p: p["architecture"].update(base_channels=10**7), "base_channels = 10000000"),
        (lambda p: p["architecture"].update(depth="4"), "architecture depth = '4'"),
        (lambda p: p["state_dict"].popitem(), "do not fit its architecture"),
        (lambda p: p.update(state_dict=[1, 2]), "has no weights"),
        (_nan_weights, "NaN or infinite weights"),
    ],
)
def test_a_damaged_checkpoint_is_one_line(files, model, tmp_path, capsys, change, message):
    damaged = _damaged(model, tmp_path, change)
    before = digest(damaged, files)
    out = tmp_path / "labels.tif"
    _, err = run_cli(capsys, "segment", files / "image.tif", "-o", out, "--model", damaged)
    assert message in err and str(damaged) in err
    args = ["train", files / "image.tif", files / "labels.tif", "-o", tmp_path / "m.pt"]
    _, err = run_cli(capsys, *args, "--init", damaged, *TRAIN)
    assert message in err
    assert digest(damaged, files) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.pt"]


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip", b"just some text"])
def test_a_file_that_is_no_checkpoint_is_one_line(files, tmp_path, capsys, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    _, err = run_cli(
        capsys, "segment", files / "image.tif", "-o", tmp_path / "s.tif", "--model", bad
    )
    assert str(bad) in err
    if content.startswith(b"PK"):  # the start of a zip whose end is missing
        assert "truncated" in err
    else:
        assert "corrupt" in err or "not a battery-seg model" in err


def test_tiles_below_the_field_of_view_are_refused(tmp_path, capsys):
    image = tmp_path / "wide.tif"
    tifffile.imwrite(image, image_volume((5, 96, 96)), imagej=True, metadata={"axes": "ZYX"})
    out = tmp_path / "s.tif"
    _, err = run_cli(capsys, "segment", image, "-o", out, "--model", "fast", "--tile", "16")
    assert "too small" in err and "at least 64 px" in err
    _, err = run_cli(capsys, "segment", image, "-o", out, "--model", "fast", "--tile", "48")
    assert "at least 64 px" in err and not out.exists()


def test_oversized_tiles_and_blocks_are_clipped_to_the_volume(files, model, tmp_path, capsys):
    out = tmp_path / "s.zarr"
    big = ["--tile", "4096", "--block", "100000", "100000", "100000"]
    run_cli(capsys, "segment", files / "image.tif", "-o", out, "--model", model, *big, code=0)
    assert open_volume(out).data.chunksize == (6, 40, 36)


def test_too_many_blocks_are_refused(model, tmp_path, capsys):
    image = tmp_path / "long.tif"
    tifffile.imwrite(image, image_volume((80, 40, 40)), imagej=True, metadata={"axes": "ZYX"})
    args = ["segment", image, "-o", tmp_path / "l.zarr", "--model", model, "--tile", "32"]
    _, err = run_cli(capsys, *args, "--block", "1", "1", "1")
    assert "128,000 blocks; at most 100,000 are supported" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.tif"]


def test_a_batch_that_cannot_fit_in_memory_is_refused_with_the_figure(
    files, model, tmp_path, capsys
):
    args = ["segment", files / "image.tif", "-o", tmp_path / "s.tif", "--model", model]
    _, err = run_cli(capsys, *args, "--tile", "32", "--batch", str(10**9))
    assert "would need" in err and "TiB of memory" in err and "--batch" in err
    train = ["train", files / "image.tif", files / "labels.tif", "-o", tmp_path / "m.pt"]
    _, err = run_cli(capsys, *train, "--patch", "100000", "--epochs", "1")
    assert "would need" in err and "--patch" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_gpu_that_is_not_there_is_refused_by_every_job(files, model, tmp_path, capsys):
    labels = files / "labels.tif"
    for args in (
        ["segment", files / "image.tif", "-o", tmp_path / "s.tif", "--model", model],
        ["train", files / "image.tif", labels, "-o", tmp_path / "m.pt", *TRAIN],
        ["stats", labels, "--tortuosity"],
    ):
        _, err = run_cli(capsys, *args, "--device", "cuda")
        assert "sees no CUDA GPU" in err
    from battery_seg.cli import main

    with pytest.raises(SystemExit) as exit_info:  # argparse: the usage and the choices
        main(["stats", str(labels), "--device", "tpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'tpu' (choose from auto, cpu, cuda or cuda:N)" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_tiny_time_budget_still_trains_and_validates_one_epoch(files, tmp_path, capsys):
    out = tmp_path / "m.pt"
    args = ["train", files / "image.tif", files / "labels.tif", "-o", out, "--minutes", "0.0001"]
    _, err = run_cli(capsys, *args, "--steps", "2", "--patch", "32", "--batch", "1", code=0)
    assert "shorter than the first epoch, which was finished anyway" in err
    _, card = load_model(out)
    assert card.provenance["epochs"] == 1


def test_a_diverging_training_saves_nothing(files, tmp_path, capsys):
    out = tmp_path / "m.pt"
    args = ["train", files / "image.tif", files / "labels.tif", "-o", out, "--lr", "1e30"]
    _, err = run_cli(capsys, *args, "--epochs", "2", "--steps", "3", "--patch", "32")
    assert "Training diverged" in err and "--lr" in err
    assert list(tmp_path.iterdir()) == []


def test_absurd_training_numbers_are_refused(files, tmp_path, capsys):
    train = ["train", files / "image.tif", files / "labels.tif", "-o", tmp_path / "m.pt"]
    for extra, message in (
        (["--threads", "0"], "--threads must be at least 1"),
        (["--patch", "30"], "multiple of 16"),
        (["--epochs", "0"], "epochs must be at least 1"),
        (["--minutes", "-1"], "minutes must be positive"),
        (["--phases", "a=999999999999,b=1,c=2"], "16,777,215"),
        (["--validation", "1.5"], "validation_fraction"),
    ):
        _, err = run_cli(capsys, *train, *extra)
        assert message in err
    with pytest.raises(BatterySegError, match="Unknown device"):
        from battery_seg.training import TrainConfig

        TrainConfig(device="gpu0")
