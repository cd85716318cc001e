"""segment / segment_job with saved U-Net checkpoints: outputs, resume, cancel and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from battery_seg import BatterySegError
from battery_seg.cluster import ClusterOptions
from battery_seg.inference import (
    InMemoryModel,
    SegmentConfig,
    _choices,
    _predictor,
    segment,
    segment_job,
)
from battery_seg.jobs import run_job
from battery_seg.model import ModelCard, UNetConfig, save_model
from battery_seg.phases import PhaseSet

SHAPE = (12, 40, 36)
VOXEL = (0.7, 0.5, 0.5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def save_unet(path, context=3, phases="si-graphite", seed=0, steps=40):
    """A tiny U-Net taught for a few steps to threshold grey levels (so phases vary)."""
    phase_set = PhaseSet.parse(phases)
    torch.manual_seed(seed)
    config = UNetConfig(in_channels=context, n_phases=len(phase_set), base_channels=4, depth=2)
    card = ModelCard(phase_set, context=context, architecture=config)
    network = card.build()
    optimizer = torch.optim.Adam(network.parameters(), lr=0.02)
    for _ in range(steps):
        x = torch.rand(8, context, 1, 1) * torch.rand(8, context, 32, 32)
        target = x[:, context // 2] * len(phase_set) / x.amax((1, 2, 3))[:, None, None]
        target = target.long().clamp(max=len(phase_set) - 1)
        loss = torch.nn.functional.cross_entropy(network(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return save_model(path, network.eval(), card)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return save_unet(tmp_path_factory.mktemp("model") / "unet.pt")


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    smooth = rng.random(SHAPE).cumsum(1).cumsum(2)
    return (smooth / smooth.max() * 50000 + rng.integers(0, 8000, SHAPE)).astype(np.uint16)


def config(model_path, **options):
    options = {"tile": 32, "block_shape": (5, 24, 20), **options}
    return SegmentConfig(model=model_path, **options)


@pytest.fixture(scope="module")
def reference(image, model_path):
    """Uninterrupted in-memory run with probabilities and uncertainty."""
    return segment(
        image, config(model_path, probabilities=True, uncertainty="margin"), voxel_size=VOXEL
    )


def test_in_memory_result(reference, image):
    assert reference.labels.shape == SHAPE and reference.labels.dtype == np.uint8
    assert set(np.unique(reference.labels)) <= {1, 2, 3, 4}
    assert len(np.unique(reference.labels)) >= 2
    assert reference.phases.names == ("pore", "silicon", "cbd", "graphite")
    assert reference.voxel_size == VOXEL and reference.context == 3
    assert reference.probabilities.shape == (4, *SHAPE)
    assert reference.probabilities.dtype == np.uint8
    total = reference.probabilities.astype(int).sum(0)
    assert total.min() >= 255 - 3 and total.max() <= 255 + 3  # rounded p*255 sum to ~255
    top = reference.probabilities.max(0).astype(int)
    np.testing.assert_array_equal(  # labels are the most probable phase
        np.take_along_axis(reference.probabilities, reference.labels[None] - 1, 0)[0], top
    )
    assert np.abs(reference.uncertainty.astype(int) - (255 - top)).max() <= 1  # margin
    assert reference.timing["blocks"] == 3 * 2 * 2
    assert reference.precision == "float32"  # no native bfloat16 on the test machines' CPUs
    assert reference.timing["voxels_per_second"] > 0


def test_progress_one_event_per_block_with_its_labels(image, model_path, reference):
    events = []
    result = segment(image, config(model_path), voxel_size=VOXEL, on_progress=events.append)
    assert events[0].step == 0 and events[0].total == 12 and "region" not in events[0].data
    blocks = events[1:]
    assert [e.step for e in blocks] == list(range(1, 13))
    covered = np.zeros(SHAPE, int)
    for event in blocks:
        region = event.data["region"]
        np.testing.assert_array_equal(event.data["labels"], reference.labels[region])
        covered[region] += 1
    assert (covered == 1).all()
    np.testing.assert_array_equal(result.labels, reference.labels)


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_schedulers_and_block_shapes_agree(image, model_path, reference, scheduler):
    got = segment(
        image,
        config(
            model_path,
            cluster=ClusterOptions(scheduler, workers=2),
            block_shape=(3, 40, 13),
            batch_size=3,
        ),
    )
    np.testing.assert_array_equal(got.labels, reference.labels)


def test_zarr_output_is_finalized_and_matches(tmp_path, image, model_path, reference):
    from battery_seg.io import is_complete_store, open_volume

    out = tmp_path / "seg.ome.zarr"
    result = segment(
        image,
        config(model_path, output=out, probabilities=True, uncertainty="margin"),
        voxel_size=VOXEL,
    )
    assert result.labels == out and is_complete_store(out)
    assert not out.with_name(out.name + ".partial").exists()
    volume = open_volume(out)
    np.testing.assert_array_equal(volume.data.compute(), reference.labels)
    assert volume.voxel_size == pytest.approx(VOXEL)
    assert PhaseSet.from_dict(volume.metadata["phases"]).names == reference.phases.names
    np.testing.assert_array_equal(result.probabilities.compute(), reference.probabilities)
    np.testing.assert_array_equal(result.uncertainty.compute(), reference.uncertainty)


def _cancel_after(job, n_blocks):
    events = [next(job) for _ in range(n_blocks + 1)]
    job.close()  # what the widget's Cancel does
    return events


def test_cancelled_store_stays_partial_and_resumes_to_the_same_result(
    tmp_path, image, model_path, reference
):
    out = tmp_path / "seg.zarr"
    options = {
        "output": out,
        "probabilities": True,
        "uncertainty": "margin",
        "cluster": ClusterOptions("threads", workers=1),
    }
    _cancel_after(segment_job(image, config(model_path, **options), voxel_size=VOXEL), 3)
    partial = out.with_name("seg.zarr.partial")
    assert partial.is_dir() and not out.exists()
    with pytest.raises(BatterySegError, match="partially written"):
        open_volume_strict(out)
    events = []
    result = segment(
        image, config(model_path, **options), voxel_size=VOXEL, on_progress=events.append
    )
    assert 3 <= events[0].step < 12 and "already done" in events[0].message
    assert result.timing["blocks_resumed"] == events[0].step
    assert len(events) == 1 + 12 - events[0].step
    np.testing.assert_array_equal(open_volume_strict(out).data.compute(), reference.labels)
    np.testing.assert_array_equal(result.probabilities.compute(), reference.probabilities)


def open_volume_strict(path):
    from battery_seg.io import open_volume

    return open_volume(path)


def test_existing_outputs_are_refused_unless_overwrite(tmp_path, image, model_path):
    out = tmp_path / "seg.zarr"
    segment(image, config(model_path, output=out))
    with pytest.raises(BatterySegError, match="already exists"):
        segment(image, config(model_path, output=out))
    segment(image, config(model_path, output=out, axis="y", overwrite=True))
    other = tmp_path / "other.zarr"
    threads = {"cluster": ClusterOptions("threads", workers=1)}
    _cancel_after(segment_job(image, config(model_path, output=other, **threads)), 1)
    with pytest.raises(BatterySegError, match="another run"):  # a foreign partial store
        segment(image, config(model_path, output=other, axis="x"))


def test_tiff_output(tmp_path, image, model_path, reference):
    import tifffile

    out = tmp_path / "seg.tif"
    result = segment(image, config(model_path, output=out), voxel_size=VOXEL)
    assert result.labels == out
    np.testing.assert_array_equal(tifffile.imread(out), reference.labels)
    with pytest.raises(BatterySegError, match="already exists"):
        segment(image, config(model_path, output=out))
    with pytest.raises(BatterySegError, match="OME-Zarr"):
        SegmentConfig(output=out, probabilities=True)


def test_cancel_in_memory_stops_the_remaining_blocks(image, model_path):
    job = segment_job(
        image,
        config(model_path, block_shape=(1, 40, 36), cluster=ClusterOptions("threads", workers=1)),
    )
    events = _cancel_after(job, 1)
    assert events[1].data["labels"].shape == (1, 40, 36)
    with pytest.raises(StopIteration):
        next(job)


def test_volume_object_keeps_its_voxel_size(tmp_path, image, model_path, reference):
    import tifffile

    from battery_seg.io import open_volume

    path = tmp_path / "input.tif"
    tifffile.imwrite(
        path,
        image,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"axes": "ZYX", "spacing": 0.7, "unit": "um"},
    )
    result = segment(open_volume(path), config(model_path))
    assert result.voxel_size == pytest.approx(VOXEL) and result.unit == "µm"
    np.testing.assert_array_equal(result.labels, reference.labels)


def test_batchnorm_folding_and_channels_last_keep_the_outputs(model_path):
    from battery_seg.model import load_model

    network, _ = load_model(model_path)
    tiles = np.random.default_rng(0).random((3, 3, 32, 48), dtype=np.float32)
    with torch.inference_mode():
        expected = torch.softmax(network(torch.from_numpy(tiles)), 1).numpy()
    predictor = _predictor.Predictor(network, "cpu", "float32")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in predictor.network.modules())
    np.testing.assert_allclose(predictor(tiles), expected, atol=2e-5)


def _offset_model(s: float, d: float) -> InMemoryModel:
    """Logits (s + d/2, s + d * x) by a 1x1 convolution (autocast runs it in bfloat16, which
    cannot resolve d next to a large s)."""
    conv = torch.nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([0.0, d]).reshape(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor([s + d / 2, s]))
    card = ModelCard(PhaseSet.parse("a,b"), architecture=UNetConfig(n_phases=2, depth=1))
    return InMemoryModel(conv, card)


@pytest.mark.parametrize(("s", "expected"), [(0.0, "bfloat16"), (4096.0, "float32")])
def test_auto_precision_uses_bfloat16_only_where_labels_stay(monkeypatch, s, expected):
    monkeypatch.setattr(_choices, "cpu_has_native_bfloat16", lambda: True)
    model = _offset_model(s, 8.0)
    rng = np.random.default_rng(0)
    tiles = rng.choice([0.2, 0.8], (4, 1, 16, 16)) + rng.random((4, 1, 16, 16)) * 0.1
    tiles = tiles.astype(np.float32)
    assert _choices.choose_precision("auto", "cpu", model, lambda: tiles) == expected
    monkeypatch.setattr(_choices, "cpu_has_native_bfloat16", lambda: False)
    assert _choices.choose_precision("auto", "cpu", model, lambda: tiles) == "float32"


# -- bad input: a clear BatterySegError, nothing written --------------------------------------


def test_context_mismatch(image, model_path):
    with pytest.raises(BatterySegError, match="context of 3 slices, not 5"):
        segment(image, config(model_path, context=5))


def test_volume_thinner_than_the_context(tmp_path, image):
    path = save_unet(tmp_path / "c5.pt", context=5)
    with pytest.raises(BatterySegError, match=r"thinner than the model's context.*only 3 slices"):
        segment(image[:3], config(path))
    with pytest.raises(BatterySegError, match="single 2D image"):
        segment(image[0], config(path))


def test_phases_mismatch(image, model_path):
    with pytest.raises(BatterySegError, match=r"predicts the phases 1=pore.*not 1=pore, 2=active"):
        segment(image, config(model_path, phases="nmc"))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_voxels(image, model_path, bad):
    data = image.astype(np.float32)
    data[4, 10, 10] = bad
    with pytest.raises(BatterySegError, match="NaN or infinite"):
        segment(data, config(model_path))


def test_nan_in_a_block_the_sample_missed(monkeypatch, image, model_path):
    from battery_seg import model as model_module
    from battery_seg.model import IntensityRange

    monkeypatch.setattr(
        model_module,
        "estimate_intensity_range",
        lambda volume, normalization=None: IntensityRange(0.0, 50000.0),
    )
    data = image.astype(np.float32)
    data[11, 39, 35] = np.nan
    with pytest.raises(BatterySegError, match=r"NaN or infinite voxels near block \[10:12"):
        segment(data, config(model_path))


def test_constant_image(model_path):
    with pytest.raises(BatterySegError, match="constant"):
        segment(np.full(SHAPE, 7, np.uint16), config(model_path))


def test_corrupt_and_missing_model_files(tmp_path, image):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(BatterySegError, match="corrupt"):
        segment(image, config(corrupt))
    with pytest.raises(BatterySegError, match="does not exist"):
        segment(image, config(tmp_path / "missing.pt"))


@pytest.mark.parametrize("name", [None, "default", "fast"])
def test_bundled_model_when_it_is_not_installed(monkeypatch, tmp_path, image, name):
    from battery_seg.model import checkpoint

    monkeypatch.setattr(checkpoint, "bundled_model_path", lambda name: tmp_path / f"{name}.pt")
    with pytest.raises(BatterySegError, match=f"bundled model '{name or 'default'}' is not inst"):
        segment(image, SegmentConfig(model=name))


def test_bundled_model_names():
    from battery_seg.model import BUNDLED_MODELS, bundled_model_path, load_card

    cards = {name: load_card(name) for name in BUNDLED_MODELS}
    assert cards["fast"].architecture.base_channels < cards["default"].architecture.base_channels
    anode, cathode = ("pore", "silicon", "cbd", "graphite"), ("pore", "active", "cbd")
    assert {n: c.phases.names for n, c in cards.items()} == {
        "default": anode,
        "fast": anode,
        "2d": anode,
        "nmc": cathode,
        "nmc-2d": cathode,
    }
    with pytest.raises(BatterySegError, match=r"no bundled model 'quick'.*default, fast"):
        bundled_model_path("quick")


@pytest.mark.parametrize(
    ("data", "message"),
    [(np.zeros((2, 3, 8, 8)), "4 dimensions"), (np.zeros((2, 8, 8), complex), "grey-level")],
)
def test_wrong_image(model_path, data, message):
    with pytest.raises(BatterySegError, match=message):
        segment(data, config(model_path))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tile": 30}, "not a multiple of 4.*use 28 or 32"),
        ({"axis": "w"}, "z, y, x"),
        ({"overlap": 1.0}, "fraction"),
        ({"output": "x.png"}, "Unsupported output"),
        ({"uncertainty": "variance"}, "none, entropy, margin"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_options(image, model_path, options, message):
    with pytest.raises(BatterySegError, match=message):
        segment(image, config(model_path, **options))


def test_a_job_is_checked_before_the_first_event(tmp_path, model_path):
    job = segment_job(np.zeros(SHAPE, np.uint8), config(model_path, output=tmp_path / "o.zarr"))
    with pytest.raises(BatterySegError, match="constant"):
        run_job(job)
    assert not list(tmp_path.iterdir())


def test_importing_the_api_pulls_in_neither_torch_nor_qt():
    import subprocess
    import sys

    code = (
        "import sys, battery_seg.inference, battery_seg.cli._segment; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'qtpy', 'PyQt5', 'napari', 'magicgui', 'monai'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
