"""'battery-seg export': bioimage.io packages that 'bioimageio test' passes and that segment,
fine-tune and ship to cluster workers exactly like the model file they came from."""

from __future__ import annotations

import argparse
import io
import zipfile

import numpy as np
import pytest
import yaml

from battery_seg.cli import main
from battery_seg.cluster import ClusterOptions
from battery_seg.errors import BatterySegError
from battery_seg.export import ExportConfig, export_job
from battery_seg.inference import SegmentConfig, segment
from battery_seg.io import write_image, write_labels
from battery_seg.jobs import run_job
from battery_seg.model import load_model
from battery_seg.phantom import make_sample
from battery_seg.training import TrainConfig, TrainingPair, simulate_strokes, train

# Small, but trained enough (60 steps) to tell phases apart, so equal labels mean something.
TINY = dict(
    init=None, base_channels=8, depth=2, patch_size=32, batch_size=4, steps_per_epoch=15, epochs=4
)
VOXEL = (0.5, 0.4, 0.4)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained from strokes on the phantom, and its package made by the CLI."""
    folder = tmp_path_factory.mktemp("export")
    sample = make_sample((12, 48, 48), seed=1)
    painted = simulate_strokes(sample.labels, slices=[3, 8], fraction=0.05, seed=0)
    model = folder / "strokes.pt"
    pair = TrainingPair(sample.image, painted, "phantom", voxel_size=VOXEL)
    train([pair], TrainConfig(phases="si-graphite", context=3, output=model, seed=0, **TINY))
    image = write_image(folder / "image.tif", sample.image, voxel_size=VOXEL)
    package = folder / "strokes.zip"
    args = ["export", str(model), "-o", str(package), "--author", "Ada Lovelace"]
    assert main([*args, "--license", "MIT", "--sample", str(image)]) == 0
    return sample, model, package


def _rdf(package) -> dict:
    with zipfile.ZipFile(package) as archive:
        return yaml.safe_load(archive.read("rdf.yaml")), archive.read("README.md").decode()


def test_bioimageio_test_passes_on_the_export(trained):
    from bioimageio.core import test_model

    summary = test_model(trained[2])
    failed = [d.name for d in summary.details if d.status == "failed"]
    assert summary.status == "passed", failed
    tested = {d.loc[1] for d in summary.details if len(d.loc) == 2 and d.loc[0] == "weights"}
    assert tested == {"pytorch_state_dict", "torchscript", "onnx"}


def test_the_package_describes_the_model(trained):
    sample, model, package = trained
    _, card = load_model(model)
    rdf, readme = _rdf(package)
    raw, probabilities = rdf["inputs"][0], rdf["outputs"][0]
    assert raw["axes"][1]["channel_names"] == ["slice-1", "slice", "slice+1"]  # context 3
    assert probabilities["axes"][1]["channel_names"] == ["pore", "silicon", "cbd", "graphite"]
    y_in, y_out = raw["axes"][2], probabilities["axes"][2]
    assert (y_in["scale"], y_in["unit"]) == (400, "nanometer")  # whole numbers: exact sizes
    assert y_in["size"] == {"min": 20, "step": 4} and y_out["halo"] == 8  # depth 2: 4-pixel grid
    scale_range = next(p for p in raw["preprocessing"] if p["id"] == "scale_range")
    assert (scale_range["kwargs"]["min_percentile"], scale_range["kwargs"]["max_percentile"]) == (
        0.5,
        99.5,
    )
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript", "onnx"}
    assert rdf["weights"]["pytorch_state_dict"]["architecture"]["callable"] == "UNetProbabilities"
    assert rdf["license"] == "MIT" and rdf["authors"] == [{"name": "Ada Lovelace"}]
    assert rdf["config"]["battery_seg"]["voxel_size"] == list(VOXEL)
    with zipfile.ZipFile(package) as archive:  # cut from --sample: the training image
        assert archive.read("test_input.npy")[:6] == b"\x93NUMPY"
        test_input = np.load(io.BytesIO(archive.read("test_input.npy")))
    np.testing.assert_array_equal(test_input[0], sample.image[5:8].astype(np.float32))
    painted = card.provenance["painted_voxels"]
    assert f"| **{painted['pore']:,}** | **{painted['silicon']:,}**" in readme
    assert "## Validation" in readme
    for phase, iou in card.provenance["best_val_iou"].items():
        assert f"{iou:.3f}" in readme, phase


def test_a_package_segments_and_fine_tunes_like_its_model_file(trained, tmp_path):
    sample, model, package = trained
    image = sample.image[:6]
    options = dict(tile=32)
    expected = segment(image, SegmentConfig(model=str(model), **options)).labels
    assert len(np.unique(expected)) >= 3
    got = segment(image, SegmentConfig(model=str(package), **options)).labels
    np.testing.assert_array_equal(got, expected)
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    got = segment(image, SegmentConfig(model=str(folder / "rdf.yaml"), **options)).labels
    np.testing.assert_array_equal(got, expected)

    painted = simulate_strokes(sample.labels, slices=[5], fraction=0.05, seed=1)
    tuned = tmp_path / "tuned.pt"
    quick = {**TINY, "init": str(package), "epochs": 1, "steps_per_epoch": 2}
    config = TrainConfig(output=tuned, seed=1, **quick)
    result = train([(sample.image, painted, "more strokes")], config)
    assert result.card.provenance["init"] == str(package)
    assert result.card.phases.names == load_model(model)[1].phases.names


def test_a_package_folder_runs_on_cluster_workers(trained, tmp_path):
    distributed = pytest.importorskip("distributed")
    from battery_seg.io import open_volume

    sample, model, package = trained
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    image = sample.image[:4]
    expected = segment(image, SegmentConfig(model=str(model), tile=32)).labels
    out = tmp_path / "seg.zarr"
    with distributed.LocalCluster(
        n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        config = SegmentConfig(
            model=str(folder),
            tile=32,
            cluster=ClusterOptions(cluster.scheduler_address),
            output=out,
        )
        segment(image, config)
        with distributed.Client(cluster) as client:
            loaded = client.run(
                lambda: __import__("battery_seg.inference._predictor", fromlist=["x"]).loaded_from
            )
    np.testing.assert_array_equal(open_volume(out).data.compute(), expected)
    (copies,) = loaded.values()  # the worker read its own copy, not the folder
    assert copies and all(folder.name not in path for path in copies), copies


def test_export_refuses_bad_settings_before_the_slow_part(trained, tmp_path):
    _, model, package = trained
    cases = [  # (ExportConfig arguments, message): refused when made or as the job starts
        ((model, tmp_path / "m.zip"), {}, "at least one author"),
        ((model, tmp_path / "m.tar"), {"authors": ["A"]}, "must be a .zip file"),
        ((model, tmp_path / "m.zip"), {"authors": ["A"], "license": "Nope"}, "SPDX"),
        ((model, tmp_path / "m.zip"), {"authors": ["A"], "name": "a/b"}, "not allowed"),
        # a package read in this process is an input: never replaced, not even with --overwrite
        ((model, package), {"authors": ["A"]}, "already exists|never modified"),
        ((package, package), {"authors": ["A"], "overwrite": True}, "onto itself|never modified"),
    ]
    for arguments, options, message in cases:
        with pytest.raises(BatterySegError, match=message):
            run_job(export_job(ExportConfig(*arguments, **options)))
    assert not list(tmp_path.iterdir())  # nothing half-written
    assert load_model(package)[1] == load_model(model)[1]  # the package is untouched


@pytest.mark.slow
def test_the_bundled_default_model_round_trips(tmp_path):
    """The bundled default model exported, 'bioimageio test'-ed and used through --model."""
    from bioimageio.core import test_model

    package = tmp_path / "default.zip"
    assert main(["export", "default", "-o", str(package)]) == 0
    summary = test_model(package)
    assert summary.status == "passed", [d.name for d in summary.details if d.status == "failed"]
    image = make_sample((8, 64, 64), seed=3).image
    expected = segment(image, SegmentConfig(model="default", tile=64)).labels
    got = segment(image, SegmentConfig(model=str(package), tile=64)).labels
    np.testing.assert_array_equal(got, expected)
    rdf, _ = _rdf(package)
    assert rdf["inputs"][0]["axes"][2]["scale"] == 500  # nm: the synthetic anodes' voxels


def test_training_from_files_records_their_voxel_size(tmp_path):
    from battery_seg.cli._train import _open_pairs

    sample = make_sample((8, 32, 32), seed=0)
    image = write_image(tmp_path / "image.tif", sample.image, voxel_size=VOXEL)
    labels = write_labels(
        tmp_path / "labels.tif", sample.labels, phases="si-graphite", voxel_size=VOXEL
    )
    (pair,), _ = _open_pairs([image, labels], argparse.Namespace(channel=None, timepoint=None))
    assert pair.voxel_size == pytest.approx(VOXEL)
