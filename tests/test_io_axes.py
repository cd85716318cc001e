"""``axes=`` / ``--axes``: a file's axes read as the user says (an ImageJ stack saved as
channels, a 3-slice stack taken for RGB), and the refusals when they do not fit the file."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from battery_seg.cli import main
from battery_seg.errors import BatterySegError
from battery_seg.inference import SegmentConfig, segment
from battery_seg.io import open_volume
from cluster_helpers import tiny_model

SHAPE = (8, 40, 36)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(3)
    return (rng.random(SHAPE).cumsum(1).cumsum(2) * 40).astype(np.uint16)


@pytest.fixture
def imagej_stack(tmp_path, volume):
    """A 3D stack saved the usual Python way for Fiji: ImageJ reads its 8 planes as channels."""
    path = tmp_path / "scan.tif"
    tifffile.imwrite(
        path, volume, imagej=True, resolution=(4.0, 4.0), metadata={"spacing": 0.5, "unit": "um"}
    )
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "CYX"  # what makes it a trap
    return path


def test_an_imagej_channels_stack_is_refused_with_the_axes_that_read_it(imagej_stack):
    with pytest.raises(BatterySegError) as refused:
        open_volume(imagej_stack)
    message = str(refused.value)
    assert "C (8), Y (40), X (36)" in message and "--axes ZYX" in message


def test_axes_read_the_channels_as_slices_with_their_spacing(imagej_stack, volume):
    opened = open_volume(imagej_stack, axes="zyx")
    np.testing.assert_array_equal(opened.data.compute(), volume)
    assert opened.voxel_size == pytest.approx((0.5, 0.25, 0.25))
    assert opened.metadata["file_axes"] == "CYX"


def test_a_three_slice_stack_is_not_taken_for_rgb(tmp_path, volume):
    path = tmp_path / "three.tif"
    tifffile.imwrite(path, volume[:3], photometric="rgb", planarconfig="separate")
    with pytest.raises(BatterySegError, match="RGB colour image") as refused:
        open_volume(path)
    assert "--axes ZYX" in str(refused.value)
    np.testing.assert_array_equal(open_volume(path, axes="ZYX").data.compute(), volume[:3])


def test_axes_in_another_order_move_the_data(tmp_path, volume):
    path = tmp_path / "last.tif"
    tifffile.imwrite(path, np.moveaxis(volume, 0, -1))  # (Y, X, Z) read by tifffile as Q Y X
    opened = open_volume(path, axes="YXZ")
    np.testing.assert_array_equal(opened.data.compute(), volume)


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ("ZYXC", "has 3 axes (C (8), Y (40), X (36)) but axes='ZYXC' names 4"),
        ("ZQX", "axes='ZQX' is not a list of axis letters"),
        ("ZZX", "names Z more than once"),
        ("CZY", "names no Y and X image plane"),
    ],
)
def test_axes_that_do_not_fit_the_file_are_one_line(imagej_stack, tmp_path, capsys, axes, message):
    out = tmp_path / "phases.tif"
    assert main(["segment", str(imagej_stack), "-o", str(out), "--axes", axes]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.splitlines()[-1].startswith("battery-seg segment: error:")
    assert err.count("error:") == 1 and not out.exists()


def test_segment_an_imagej_stack_with_axes_zyx(imagej_stack, volume, tmp_path, capsys):
    model = tiny_model(tmp_path / "model.pt", seed=2)
    out = tmp_path / "phases.tif"
    args = ["segment", str(imagej_stack), "-o", str(out), "--model", str(model), "--tile", "32"]
    assert main(args) == 2
    assert "--axes ZYX" in capsys.readouterr().err
    assert main([*args, "--axes", "ZYX"]) == 0
    expected = segment(volume, SegmentConfig(model=model, tile=32)).labels
    np.testing.assert_array_equal(tifffile.imread(out), expected)
    assert open_volume(out).voxel_size == pytest.approx((0.5, 0.25, 0.25))


def test_info_and_stats_take_axes(imagej_stack, capsys):
    assert main(["info", str(imagej_stack), "--axes", "ZYX"]) == 0
    out = capsys.readouterr().out
    assert "8 × 40 × 36 (Z, Y, X)" in out and "file axes:" in out and "CYX" in out
    assert "--axes" in _help("stats") and "--axes" in _help("train")


def _help(command: str) -> str:
    import contextlib
    import io

    text = io.StringIO()
    with contextlib.redirect_stdout(text), pytest.raises(SystemExit):
        main([command, "--help"])
    return text.getvalue()


def test_napari_reader_opens_an_imagej_channels_stack_as_one_volume(imagej_stack, volume):
    from battery_seg._reader import read_volume

    [(data, attributes, kind)] = read_volume(str(imagej_stack))
    assert kind == "image"
    np.testing.assert_array_equal(np.asarray(data), volume)
    assert tuple(attributes["scale"]) == pytest.approx((0.5, 0.25, 0.25))


def test_train_reads_labels_saved_the_same_way_with_the_same_axes(tmp_path, volume):
    import argparse

    from battery_seg.cli._train import _open_labels

    labels = (volume % 3 + 1).astype(np.uint8)
    path = tmp_path / "strokes.tif"
    tifffile.imwrite(path, labels, imagej=True)  # CYX, as the image
    args = argparse.Namespace(axes="ZYX", channel=None, timepoint=None)
    np.testing.assert_array_equal(_open_labels(path, args).data.compute(), labels)
    with pytest.raises(BatterySegError, match="--axes ZYX"):
        _open_labels(path, argparse.Namespace(axes=None, channel=None, timepoint=None))
