"""Bad input to ``battery-seg compare`` and ``battery-seg export`` (round 2): an empty or
non-overlapping reference is refused, fractions share one stated base, every refusal names its
file; text written into a package is sanitised, too small samples and odd names are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from bad_input_helpers import digest, image_volume, labels_volume, run_cli
from battery_seg.errors import BatterySegError
from battery_seg.io import write_labels
from cluster_helpers import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def pair(tmp_path):
    """A segmentation (every voxel labelled) and references: empty, partial, disjoint, float."""
    labels = labels_volume((6, 24, 20), phases=4)
    made = {"seg": labels, "empty": np.zeros_like(labels)}
    partial = labels.copy()
    partial[partial > 2] = 0  # the reference labels pore and silicon only
    made["partial"] = partial
    hole = labels.copy()
    hole[:, :, :10] = 0
    made["holey"] = hole
    disjoint = np.zeros_like(labels)
    disjoint[:, :, :10] = labels[:, :, :10]
    made["disjoint"] = disjoint
    for name, volume in made.items():
        write_labels(tmp_path / f"{name}.tif", volume, phases="si-graphite", voxel_size=0.5)
    tifffile.imwrite(tmp_path / "float.tif", labels.astype(np.float32))
    return tmp_path


def test_an_empty_reference_is_refused_naming_it(pair, capsys):
    before = digest(pair)
    _, err = run_cli(capsys, "compare", pair / "seg.tif", pair / "empty.tif")
    assert "reference" in err and "empty.tif" in err and "labels no voxel" in err
    assert digest(pair) == before


def test_a_reference_that_does_not_overlap_the_segmentation_is_refused(pair, capsys):
    _, err = run_cli(capsys, "compare", pair / "holey.tif", pair / "disjoint.tif")
    assert "holey.tif" in err and "disjoint.tif" in err and "do not overlap" in err


@pytest.mark.parametrize("which", ["segmentation", "reference"])
def test_a_float_volume_is_named_as_the_one_at_fault(pair, capsys, which):
    files = [pair / "seg.tif", pair / "float.tif"]
    if which == "segmentation":
        files.reverse()
    _, err = run_cli(capsys, "compare", *files)
    assert f"{which} {pair / 'float.tif'}" in err and "integer" in err


def test_fractions_of_both_volumes_are_on_the_reference_labelled_voxels(pair, capsys):
    out = pair / "scores.json"
    printed, _ = run_cli(
        capsys, "compare", pair / "seg.tif", pair / "partial.tif", "--json", out, code=0
    )
    seg = tifffile.imread(pair / "seg.tif")
    partial = tifffile.imread(pair / "partial.tif")
    scored = partial > 0
    data = json.loads(out.read_text())
    segmented = data["volume_fractions"]["segmentation"]
    reference = data["volume_fractions"]["reference"]
    assert data["scored_voxels"] == scored.sum()
    assert segmented["pore"] == pytest.approx(((seg == 1) & scored).sum() / scored.sum())
    assert reference["pore"] == pytest.approx(((partial == 1) & scored).sum() / scored.sum())
    assert segmented["pore"] == pytest.approx(reference["pore"])  # identical where scored
    pore = next(line for line in printed.splitlines() if line.startswith("pore"))
    assert pore.split()[-1] == "0.0000"  # no difference where both are labelled
    assert f"fractions of the {scored.sum():,} voxels the reference labels" in printed


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "model.pt", seed=2)


def test_export_author_and_description_lose_control_characters():
    from battery_seg.export import ExportConfig

    config = ExportConfig(
        "default",
        "x.zip",
        authors=["Eve\x1b[31mRED\x07", " \x1b ", "Zoë\u202eevil  Smith"],
        description="Segments\x00 anodes.\r\nTwo lines.",
    )
    assert config.authors == ["Eve[31mRED", "Zoëevil Smith"]
    assert config.description == "Segments anodes. Two lines."
    for text in [*config.authors, config.description]:
        assert all(c.isprintable() for c in text)


def test_export_voxel_size_is_checked_not_an_import_error(model, tmp_path, capsys):
    out = tmp_path / "x.zip"
    _, err = run_cli(
        capsys, "export", model, "-o", out, "--author", "A", "--voxel-size", "0", "0.3", "0.3"
    )
    assert "Invalid voxel size" in err
    from battery_seg.export import ExportConfig

    config = ExportConfig(model, out, authors=["A"], voxel_size=(0.3, 0.3, 0.3))
    assert config.voxel_size == (0.3, 0.3, 0.3)
    assert not out.exists()


def test_a_long_name_keeps_the_reason_visible(model, tmp_path, capsys):
    _, err = run_cli(capsys, "export", model, "-o", tmp_path / "x.zip", "--name", "é" * 5000)
    assert "is not allowed on bioimage.io" in err and "5 to 128 letters" in err
    assert len(err) < 600


def test_a_sample_smaller_than_a_tile_is_refused(model, tmp_path, capsys):
    sample = tmp_path / "small.tif"
    tifffile.imwrite(sample, image_volume((4, 5, 5)), imagej=True, metadata={"axes": "ZYX"})
    out = tmp_path / "x.zip"
    _, err = run_cli(capsys, "export", model, "-o", out, "--author", "A", "--sample", sample)
    assert "5 x 5 pixels" in err and "smallest" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.tif"]


def test_an_old_bioimageio_spec_is_named_not_blamed_on_the_licence(monkeypatch):
    from battery_seg.export import ExportConfig, _describe, export_job
    from battery_seg.jobs import run_job

    def too_old():
        raise BatterySegError("Exporting for bioimage.io needs bioimageio.spec >= 0.5.14")

    monkeypatch.setattr(_describe, "import_spec", too_old)
    with pytest.raises(BatterySegError, match=r"needs bioimageio\.spec") as caught:
        run_job(export_job(ExportConfig("default", "x.zip")))  # checked before the model loads
    assert "licence" not in str(caught.value).lower()
