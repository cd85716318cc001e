"""``battery-seg segment`` on every input format, its summary, resume and errors."""

from __future__ import annotations

import numpy as np
import pytest

from battery_seg.cli import main
from battery_seg.cluster import ClusterOptions
from battery_seg.inference import SegmentConfig, segment, segment_job
from cluster_helpers import tiny_model

SHAPE = (8, 40, 36)
OPTIONS = ["--tile", "32", "--block", "4", "40", "20"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny U-Net taught for a few steps to threshold grey levels (so phases vary)."""
    return tiny_model(tmp_path_factory.mktemp("model") / "model.pt", seed=2)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return (rng.random(SHAPE).cumsum(1).cumsum(2) * 40).astype(np.uint16)


@pytest.fixture(scope="module")
def expected(image, model):
    return segment(image, SegmentConfig(model=model, tile=32)).labels


def _write_input(kind, folder, image):
    import tifffile

    if kind == "tiff":
        path = folder / "scan.tif"
        tifffile.imwrite(
            path,
            image,
            imagej=True,
            resolution=(2.0, 2.0),
            metadata={"axes": "ZYX", "spacing": 0.7, "unit": "um"},
        )
        return str(path)
    if kind == "folder":
        path = folder / "slices"
        path.mkdir()
        for z, plane in enumerate(image):
            tifffile.imwrite(path / f"slice_{z}.tif", plane)
        return str(path)
    if kind == "zarr":
        import zarr

        path = folder / "scan.zarr"
        zarr.create_array(str(path), shape=image.shape, chunks=(3, 20, 36), dtype=image.dtype)[
            :
        ] = image
        return str(path)
    import h5py

    path = folder / "scan.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("exchange/data", data=image, chunks=(2, 40, 36))
    return f"{path}:/exchange/data"


@pytest.mark.parametrize("kind", ["tiff", "folder", "zarr", "hdf5"])
@pytest.mark.parametrize("suffix", [".zarr", ".tif"])
def test_every_input_format_to_zarr_and_tiff(
    tmp_path, capsys, image, model, expected, kind, suffix
):
    from battery_seg.io import open_volume

    source = _write_input(kind, tmp_path, image)
    out = tmp_path / f"labels{suffix}"
    assert main(["segment", source, "-o", str(out), "--model", str(model), *OPTIONS]) == 0
    written = open_volume(out)
    np.testing.assert_array_equal(written.data.compute(), expected)
    if kind == "tiff":
        assert written.voxel_size == pytest.approx((0.7, 0.5, 0.5))
    stdout = capsys.readouterr().out
    assert f"wrote {out}" in stdout and "context 3, axis z" in stdout
    counts = np.bincount(expected.ravel(), minlength=4)
    for value, name in enumerate(("pore", "active", "cbd"), start=1):
        assert f"{value}  {name:<12} {counts[value]:>14,}" in stdout


def test_options_reach_the_job(tmp_path, capsys, image, model):
    from battery_seg.io import open_volume

    source = _write_input("tiff", tmp_path, image)
    out = tmp_path / "tri.zarr"
    args = [
        "segment",
        source,
        "-o",
        str(out),
        "--model",
        str(model),
        "--triplanar",
        "--probabilities",
        "--uncertainty",
        "entropy",
        "--voxel-size",
        "1",
        "2",
        "3",
        "--device",
        "cpu",
        "--batch",
        "2",
        *OPTIONS,
    ]
    assert main(args) == 0
    expected = segment(image, SegmentConfig(model=model, tile=32, triplanar=True)).labels
    written = open_volume(out)
    np.testing.assert_array_equal(written.data.compute(), expected)
    assert written.voxel_size == (1.0, 2.0, 3.0)
    import zarr

    root = zarr.open_group(str(out), mode="r")
    assert root["probabilities"].shape == (3, *SHAPE) and root["uncertainty"].shape == SHAPE
    assert "axis zyx" in capsys.readouterr().out


def test_rerun_resumes_an_interrupted_store(tmp_path, capsys, image, model, expected):
    from battery_seg.io import open_volume

    source = _write_input("tiff", tmp_path, image)
    out = tmp_path / "labels.zarr"
    config = SegmentConfig(
        model=model,
        tile=32,
        block_shape=(4, 40, 20),
        output=out,
        cluster=ClusterOptions(scheduler="threads", workers=1),
    )
    job = segment_job(open_volume(source), config)
    next(job), next(job)
    job.close()  # as if the run had been stopped after a block
    assert out.with_name("labels.zarr.partial").is_dir()
    assert main(["segment", source, "-o", str(out), "--model", str(model), *OPTIONS]) == 0
    assert "resumed" in capsys.readouterr().out
    np.testing.assert_array_equal(open_volume(out).data.compute(), expected)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "already exists"),
        (["--context", "5"], "context of 3 slices, not 5"),
        (["--tile", "30"], "not a multiple of 4"),
        (["--probabilities"], "OME-Zarr"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, capsys, image, model, extra, message):
    source = _write_input("tiff", tmp_path, image)
    out = tmp_path / "labels.tif"
    if not extra:  # an existing output is refused first, before the model is even loaded
        out.write_bytes(b"keep me")
    assert main(["segment", source, "-o", str(out), "--model", str(model), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    # progress lines (plain in a log) may come first; the error is one line, the last
    assert err.splitlines()[-1].startswith("battery-seg segment: error:")
    assert err.count("error:") == 1
    assert out.read_bytes() == b"keep me" if not extra else not out.exists()


def test_overwrite_and_missing_input(tmp_path, capsys, image, model, expected):
    import tifffile

    source = _write_input("tiff", tmp_path, image)
    out = tmp_path / "labels.tif"
    tifffile.imwrite(out, np.zeros((2, 3, 4), np.uint8))  # --overwrite replaces a TIFF
    assert (
        main(["segment", source, "-o", str(out), "--model", str(model), "--overwrite", *OPTIONS])
        == 0
    )
    np.testing.assert_array_equal(tifffile.imread(out), expected)
    assert main(["segment", str(tmp_path / "nope.tif"), "-o", str(tmp_path / "x.zarr")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["segment", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--model",
        "--context",
        "--axis",
        "--triplanar",
        "--probabilities",
        "--uncertainty",
        "--tile",
        "--batch",
        "--device",
        "--scheduler",
        "--voxel-size",
        "--overwrite",
        "file.h5:/dataset",
    ):
        assert option in text


def test_bundled_models_by_name(tmp_path, capsys, image):
    import tifffile

    from battery_seg.model import bundled_model_path

    source = _write_input("tiff", tmp_path, image)
    out = tmp_path / "fast.tif"
    assert (
        main(
            ["segment", source, "-o", str(out), "--model", "fast", "--context", "5", "--tile", "48"]
        )
        == 0
    )
    expected = segment(image, SegmentConfig(model=bundled_model_path("fast"), tile=48)).labels
    np.testing.assert_array_equal(tifffile.imread(out), expected)
    assert main(["segment", source, "-o", str(tmp_path / "x.tif"), "--model", "quick"]) == 2
    err = capsys.readouterr().err
    assert "Model file quick does not exist" in err
    assert "bundled model (default, fast, 2d, nmc, nmc-2d)" in err


def test_a_stack_of_unrelated_images_is_noted_for_models_that_read_neighbours(tmp_path, capsys):
    import tifffile
    from scipy import ndimage

    noise = np.random.default_rng(1).normal(size=SHAPE)
    for name, sigma in (("slices.tif", (0, 3, 3)), ("volume.tif", 3)):  # unrelated; a volume
        grey = ndimage.gaussian_filter(noise, sigma)
        grey = (grey - grey.min()) / np.ptp(grey) * 60_000
        tifffile.imwrite(tmp_path / name, grey.astype(np.uint16), photometric="minisblack")
    slices, volume, out = str(tmp_path / "slices.tif"), str(tmp_path / "volume.tif"), ["-o"]
    assert main(["segment", slices, *out, str(tmp_path / "a.tif"), "--model", "fast"]) == 0
    text = capsys.readouterr().out
    assert "note: neighbouring slices of the input look unrelated" in text
    assert "reads 5 neighbouring slices" in text and "--model 2d" in text
    assert main(["segment", slices, *out, str(tmp_path / "b.tif"), "--model", "2d"]) == 0
    assert "look unrelated" not in capsys.readouterr().out  # one slice at a time: nothing mixed
    assert main(["segment", volume, *out, str(tmp_path / "c.tif"), "--model", "fast"]) == 0
    assert "look unrelated" not in capsys.readouterr().out


def test_the_api_result_carries_the_unrelated_slices_note():
    from scipy import ndimage

    noise = np.random.default_rng(2).normal(size=SHAPE)
    separate = ndimage.gaussian_filter(noise, (0, 3, 3)).astype(np.float32)  # slice by slice
    notes = segment(separate, SegmentConfig(model="fast", tile=48)).notes
    assert len(notes) == 1 and "reads 5 neighbouring slices" in notes[0]
    assert segment(separate, SegmentConfig(model="2d", tile=48)).notes == []
    along_y = np.moveaxis(separate, 1, 0)  # the same images, now slices along y
    assert segment(along_y, SegmentConfig(model="fast", tile=48, axis="y")).notes == notes
