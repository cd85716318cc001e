"""Training end to end: checkpoints with provenance, cancel, fine-tuning, bad input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import torch

from battery_seg.errors import BatterySegError
from battery_seg.jobs import run_job
from battery_seg.model import load_model, save_model
from battery_seg.phantom import make_sample
from battery_seg.training import TrainConfig, predict_volume, simulate_strokes, train, train_job

# from scratch (init=None): a tiny network; the default start (a bundled model) is tested apart
TINY = dict(
    init=None, base_channels=4, depth=2, patch_size=32, batch_size=2, steps_per_epoch=2, epochs=2
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**settings) -> TrainConfig:
    """A TrainConfig of the tiny scratch settings with ``settings`` replacing any of them."""
    return TrainConfig(**{**TINY, **settings})


@pytest.fixture(scope="module")
def sample():
    sample = make_sample((12, 48, 48), seed=1)
    painted = simulate_strokes(sample.labels, slices=[3, 8], fraction=0.05, seed=0)
    return sample.image, sample.labels, painted


def test_learns_the_phantom_from_strokes_to_a_stated_iou():
    sample = make_sample((24, 64, 64), seed=0)
    painted = simulate_strokes(sample.labels, slices=3, fraction=0.04, seed=0)
    assert (painted > 0).sum() <= 0.04 * 3 * 64 * 64
    config = TrainConfig(
        phases="si-graphite",
        init=None,
        context=3,
        epochs=8,
        steps_per_epoch=20,
        base_channels=8,
        depth=3,
        patch_size=48,
        batch_size=8,
        seed=0,
    )
    result = train([(sample.image, painted, "phantom")], config)
    predicted = predict_volume(result.model, result.card, sample.image)
    iou = [
        np.logical_and(predicted == v, sample.labels == v).sum()
        / np.logical_or(predicted == v, sample.labels == v).sum()
        for v in range(1, 5)
    ]
    # Measured: mean 0.66 (pore 0.74, silicon 0.71, cbd 0.32, graphite 0.87) from strokes on
    # 4 % of 3 slices after 160 steps (~10 s on one core); the margin absorbs thread noise.
    assert np.mean(iou) > 0.55 and iou[3] > 0.75, iou


def test_checkpoint_has_provenance_and_labels_are_untouched(sample, tmp_path):
    image, _, painted = sample
    painted = painted.copy()
    painted.flags.writeable = False
    before = painted.copy()
    output = tmp_path / "model.pt"
    config = TrainConfig(phases="si-graphite", context=3, output=output, seed=3, **TINY)
    result = train([(image, painted, "phantom")], config)
    np.testing.assert_array_equal(painted, before)
    assert result.model_path == output and len(result.history) == 2
    _, card = load_model(output)
    assert card.context == 3 and card.phases.names == ("pore", "silicon", "cbd", "graphite")
    p = card.provenance
    counts = np.bincount(painted[painted > 0], minlength=5)[1:]
    assert p["painted_voxels"] == dict(zip(card.phases.names, counts.tolist(), strict=True))
    assert p["data"][0]["name"] == "phantom" and p["data"][0]["shape"] == [12, 48, 48]
    assert p["epochs"] == 2 and p["init"] == "scratch" and p["seed"] == 3
    assert set(p["best_val_iou"]) <= set(card.phases.names) and p["best_epoch"] >= 1
    assert p["package_version"] and p["training_seconds"] > 0
    assert sorted(q.name for q in tmp_path.iterdir()) == ["model.pt"]  # no temporary files
    history = result.history[-1]
    assert {"epoch", "loss", "val_iou", "best"} <= set(history)


def test_same_seed_same_model(sample):
    image, _, painted = sample
    config = TrainConfig(phases="si-graphite", context=1, seed=5, **TINY)
    a, b = train([(image, painted)], config), train([(image, painted)], config)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]


def test_cancel_mid_epoch_keeps_last_good_checkpoint(sample, tmp_path):
    image, _, painted = sample
    output = tmp_path / "model.pt"
    config = TrainConfig(
        phases="si-graphite", output=output, **{**TINY, "epochs": 50, "steps_per_epoch": 4}
    )
    job = train_job([(image, painted)], config)
    for event in job:
        if event.data.get("best"):
            saved = output.stat().st_mtime_ns
            break
    next(job)  # one step into the next epoch
    job.close()  # what the widget's Cancel does (the generator is stopped at a yield)
    assert output.stat().st_mtime_ns == saved
    _, card = load_model(output)
    assert card.provenance["epochs"] >= 1
    assert sorted(q.name for q in tmp_path.iterdir()) == ["model.pt"]


def test_time_budget_stops_training(sample):
    image, _, painted = sample
    config = TrainConfig(phases="si-graphite", **{**TINY, "epochs": None}, minutes=0.03)
    result = train([(image, painted)], config)
    assert result.stopped_by == "time" and result.history


def test_fine_tuning_keeps_phases_and_context(sample, tmp_path):
    image, _, painted = sample
    first = tmp_path / "first.pt"
    train([(image, painted)], TrainConfig(phases="si-graphite", context=3, output=first, **TINY))
    second = tmp_path / "second.pt"
    result = train([(image, painted)], tiny(init=first, output=second))
    assert result.card.context == 3 and result.card.provenance["init"] == str(first)
    assert result.card.provenance["config"]["learning_rate"] == 1e-3  # gentler than scratch
    with pytest.raises(BatterySegError, match=r"context 3.*context 1 was asked"):
        run_job(train_job([(image, painted)], tiny(init=first, context=1)))


def test_a_deeper_context_starts_from_exactly_the_checkpoints_predictions(sample, tmp_path):
    from battery_seg.training._init import initial_model

    image, _, painted = sample
    first = tmp_path / "first.pt"
    plain = TrainConfig(phases="si-graphite", context=3, output=first, grey_weight=0, **TINY)
    train([(image, painted)], plain)  # a plain U-Net (test_grey_head: starts from a blended one)
    narrow, _ = load_model(first)
    start = initial_model(tiny(init=first, context=5))
    wide, card, label = start.model, start.card, start.label
    assert card.context == wide.config.in_channels == 5 and "context 5" in label
    x = torch.randn(2, 5, 32, 32)
    wide.eval()
    with torch.inference_mode():
        assert torch.allclose(wide(x), narrow(x[:, 1:4]), atol=1e-6)
    result = train([(image, painted)], tiny(init=first, context=5))
    assert result.card.context == 5
    assert predict_volume(result.model, result.card, image).shape == image.shape


def test_other_phases_keep_the_features_with_a_new_output_layer(sample, tmp_path):
    import torch

    from battery_seg.phases import PhaseSet
    from battery_seg.training._init import _new_head

    image, _, painted = sample
    first = tmp_path / "first.pt"
    train(
        [(image, painted)], TrainConfig(phases="si-graphite", output=first, grey_weight=0, **TINY)
    )
    model, card = load_model(first)
    cathode = PhaseSet.parse("nmc")
    fresh, fresh_card = _new_head(model, card, cathode)
    assert fresh_card.phases.names == ("pore", "active", "cbd") and fresh.head.out_channels == 3
    for name, weight in fresh.encoder.state_dict().items():
        torch.testing.assert_close(weight, model.encoder.state_dict()[name])
    # graphite strokes become active-material strokes of a 3-phase set
    nmc = np.where(painted == 4, 2, painted)
    result = train([(image, nmc)], tiny(init=first, phases="nmc"))
    assert result.card.phases.names == ("pore", "active", "cbd")
    assert "new output layer for pore, active, cbd" in result.card.provenance["init"]
    assert painted.max() == 4  # the user's labels are untouched


def test_two_volumes_2d_and_dask_pairs(sample):
    image, _, painted = sample
    pairs = [
        (image[3], painted[3], "slice"),  # a 2D pair
        (da.from_array(image, chunks=(4, 48, 48)), da.from_array(painted, chunks=(4, 48, 48))),
    ]
    result = train(pairs, TrainConfig(phases="si-graphite", context=3, **TINY))
    names = [d["name"] for d in result.card.provenance["data"]]
    assert names == ["slice", "volume 2"]
    assert result.card.provenance["data"][0]["shape"] == [1, 48, 48]


def test_strokes_at_the_volume_edge_with_context(sample):
    image, labels, _ = sample
    painted = np.zeros_like(labels)
    for z in (0, labels.shape[0] - 1):  # first and last slice, up to the borders
        painted[z, 0, :] = labels[z, 0, :]
        painted[z, :, -1] = labels[z, :, -1]
        painted[z, 20:28, 20:28] = labels[z, 20:28, 20:28]
    phases_present = np.unique(painted[painted > 0])
    config = TrainConfig(phases="si-graphite", context=7, train_missing_phases=True, **TINY)
    result = train([(image, painted)], config)
    assert np.isfinite(result.history[-1]["loss"])
    untrained = result.card.provenance["untrained_phases"]
    assert len(untrained) == 4 - len(phases_present)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("shape", r"labels have shape \(12, 48, 40\) but the image has shape \(12, 48, 48\)"),
        ("nothing", "nothing is painted"),
        ("missing", r"silicon have no painted voxel.*--train-missing-phases"),
        ("outside", r"values \[9\] outside the phase set"),
        ("nan", "NaN"),
    ],
)
def test_bad_input_is_a_clear_error_and_labels_stay_untouched(sample, change, message):
    image, _, painted = sample
    image, painted = image.astype(np.float32), painted.copy()
    if change == "shape":
        painted = painted[:, :, :40].copy()
    elif change == "nothing":
        painted[:] = 0
    elif change == "missing":
        painted[painted == 2] = 0
    elif change == "outside":
        painted[5, 5, 5] = 9
    elif change == "nan":
        image[:] = np.nan
    before = painted.copy()
    with pytest.raises(BatterySegError, match=message):
        train([(image, painted, "layer 'strokes'")], TrainConfig(phases="si-graphite", **TINY))
    np.testing.assert_array_equal(painted, before)


def test_existing_output_needs_overwrite(sample, tmp_path):
    image, _, painted = sample
    output = tmp_path / "model.pt"
    torch.save({"an": "older model"}, output)
    before = output.read_bytes()
    with pytest.raises(BatterySegError, match="already exists"):
        train([(image, painted)], TrainConfig(output=output, **TINY))
    assert output.read_bytes() == before
    train([(image, painted)], TrainConfig(output=output, overwrite=True, **TINY))
    assert load_model(output)[1].phases.names[0] == "pore"


def test_bad_settings():
    with pytest.raises(BatterySegError, match="multiple of 4"):
        TrainConfig(patch_size=30, depth=2)
    with pytest.raises(BatterySegError, match="epochs or a time budget"):
        TrainConfig(epochs=None, minutes=None)
    with pytest.raises(BatterySegError, match="context must be one of"):
        TrainConfig(context=2)


def test_predict_volume_matches_model_on_planes(sample):
    image, _, painted = sample
    result = train([(image, painted)], TrainConfig(phases="si-graphite", context=3, **TINY))
    labels = predict_volume(result.model, result.card, image)
    assert labels.shape == image.shape and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {1, 2, 3, 4}
    transposed = predict_volume(result.model, result.card, image.transpose(1, 0, 2), axis=1)
    np.testing.assert_array_equal(transposed.transpose(1, 0, 2), labels)


def test_save_and_reload_gives_same_predictions(sample, tmp_path):
    image, _, painted = sample
    result = train([(image, painted)], TrainConfig(phases="si-graphite", **TINY))
    path = save_model(tmp_path / "m.pt", result.model, result.card)
    model, card = load_model(path)
    np.testing.assert_array_equal(
        predict_volume(model, card, image), predict_volume(result.model, result.card, image)
    )


def test_training_api_imports_without_torch_or_qt():
    import subprocess
    import sys

    code = (
        "import sys, battery_seg.training as t; t.TrainConfig(); "
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'qtpy', 'PyQt5', 'magicgui', 'napari')]; "
        "assert not heavy, heavy; t.train; assert 'torch' in sys.modules; "
        "assert not any(m.split('.')[0] in ('qtpy', 'PyQt5', 'napari') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unpainted_patches_and_consistency_option(sample):
    image, _, painted = sample
    config = TrainConfig(
        phases="si-graphite", unlabelled_patches=2, consistency_weight=1.0, **{**TINY, "epochs": 3}
    )
    result = train([(image, painted)], config)
    assert all(np.isfinite(h["loss"]) for h in result.history)
    assert result.card.provenance["config"]["unlabelled_patches"] == 2
    with pytest.raises(BatterySegError, match="must be >= 0"):
        TrainConfig(consistency_weight=-1)


def test_fine_tuning_retains_the_start_model_off_the_strokes(sample, tmp_path):
    import torch

    from battery_seg.training._init import initial_model
    from battery_seg.training._step import _retain
    from battery_seg.training._train import _teacher

    image, _, painted = sample
    first = tmp_path / "first.pt"
    result = train([(image, painted)], TrainConfig(phases="si-graphite", output=first, **TINY))
    model = result.model
    # the start model's output layer is kept with the same phases; from scratch or for other
    # phases it is new (filled from the start model's rows, see test_transfer)
    assert not initial_model(TrainConfig(**TINY)).keeps_head
    assert not initial_model(tiny(init=first, phases="a,b")).keeps_head
    assert initial_model(tiny(init=first)).keeps_head
    teacher = _teacher(model)
    assert teacher is not model and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    # the retain term pulls unpainted pixels only: no gradient where strokes are painted
    inputs = torch.rand(2, model.config.in_channels, 32, 32)
    logits = torch.randn(2, 4, 32, 32, requires_grad=True)
    unpainted = torch.ones(2, 32, 32, dtype=torch.bool)
    unpainted[:, :8] = False
    _retain(teacher, inputs, logits, unpainted).backward()
    assert logits.grad[:, :, :8].abs().sum() == 0 and logits.grad[:, :, 8:].abs().sum() > 0
    tuned = train([(image, painted)], tiny(init=first))
    assert tuned.card.provenance["config"]["retain_weight"] == 1.0


@pytest.mark.parametrize("cancel", [False, True])
def test_gpu_memory_goes_back_when_training_ends(monkeypatch, sample, cancel):
    """Finished or cancelled, the run's optimiser state and device copies are gone before
    PyTorch's cached GPU memory is handed back (so napari can use it)."""
    import gc

    from battery_seg.training import _train

    image, _, painted = sample
    alive = []

    def release():
        gc.collect()
        alive.append(sum(type(o) is _train._Loop for o in gc.get_objects()))
        return True

    monkeypatch.setattr(_train, "release_gpu_memory", release)
    job = train_job([(image, painted)], TrainConfig(phases="si-graphite", **TINY))
    if cancel:
        next(job), next(job)
        job.close()
    else:
        run_job(job)
    assert alive == [0]


def test_release_gpu_memory_without_cuda_does_nothing(monkeypatch):
    import subprocess
    import sys

    from battery_seg import gpu_memory

    # in a process that never imported torch: nothing to release, and torch is not imported
    code = (
        "import sys; from battery_seg.gpu_memory import release_gpu_memory; "
        "print(release_gpu_memory(), 'torch' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "False"]
    if torch.cuda.is_initialized():
        pytest.skip("this process has initialised CUDA")
    # torch imported, CUDA never initialised: neither a collection nor a cache release runs
    calls = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(gpu_memory.gc, "collect", lambda *a: calls.append("collect"))
    assert gpu_memory.release_gpu_memory() is False
    assert calls == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_release_gpu_memory_hands_cached_blocks_back():
    from battery_seg.gpu_memory import release_gpu_memory

    block = torch.ones(2**24, device="cuda")  # 64 MiB, kept in PyTorch's cache when freed
    del block
    assert torch.cuda.memory_reserved() >= 2**26
    assert release_gpu_memory() is True
    assert torch.cuda.memory_reserved() == 0
