"""The grey-level head blended into models fine-tuned from a start model that does not know the
imaging (training._grey_head, model.unet.GreyHead)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from battery_seg.jobs import run_job
from battery_seg.model import ModelCard, Normalization, UNet, UNetConfig, load_model, save_model
from battery_seg.model.unet import FilterFeatures
from battery_seg.phantom import make_sample
from battery_seg.phases import PhaseSet
from battery_seg.training import TrainConfig, simulate_strokes, train_job
from battery_seg.training._grey_head import fit_grey_head, with_grey_head, without_grey_head
from battery_seg.training._samples import Crop
from onnx_helpers import assert_onnx_runs_like

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(base_channels=4, depth=2, patch_size=32, batch_size=2, steps_per_epoch=2, epochs=1)


def _blobs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three phases as discs of three grey levels under noise: (image, truth 1..3)."""
    rng = np.random.default_rng(seed)
    truth = np.ones((96, 96), np.uint8)
    yy, xx = np.mgrid[:96, :96]
    for _ in range(12):
        y, x, r = rng.integers(8, 88), rng.integers(8, 88), rng.integers(5, 12)
        truth[(yy - y) ** 2 + (xx - x) ** 2 < r * r] = rng.integers(2, 4)
    image = np.array([0.2, 0.5, 0.8])[truth - 1] + rng.normal(0, 0.05, truth.shape)
    return image.astype(np.float32), truth


@pytest.fixture(scope="module")
def fitted():
    """A tiny 3-phase U-Net, blobs, their strokes (some held back) and the fitted head."""
    image, truth = _blobs(0)
    strokes = simulate_strokes(truth, fraction=0.02, seed=0)
    held = np.zeros_like(strokes)
    held[:, :20], strokes = strokes[:, :20], np.where(np.arange(96) < 20, 0, strokes)
    crop = Crop("blobs", 0, 0, (0, 0), image[None], strokes, held)
    head = run_job(fit_grey_head([crop], 3, seed=0))
    torch.manual_seed(0)
    architecture = UNetConfig(in_channels=1, n_phases=3, base_channels=4, depth=2)
    card = ModelCard(PhaseSet.parse("pore,active,cbd"), 1, architecture, Normalization())
    return UNet(architecture).eval(), card, head, image, truth, strokes + held


def test_the_model_blends_the_network_and_the_grey_levels(fitted):
    model, card, head, image, truth, painted = fitted
    x = torch.from_numpy(image[None, None])
    blended, blended_card = with_grey_head(model, card, head, 0.5)
    assert blended_card.architecture.grey_hidden == head.first.out_features
    with torch.no_grad():
        grey = head.logits(FilterFeatures()(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        expected = 0.5 * torch.log_softmax(model(x), 1) + 0.5 * torch.log_softmax(grey, 1)
        got = blended.eval()(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # the grey levels alone label the unpainted pixels, from strokes of both kinds
    grey_only, _ = with_grey_head(model, card, head, 1.0)
    with torch.no_grad():
        labels = grey_only.eval()(x)[0].argmax(0).numpy() + 1
    assert (labels == truth)[painted == 0].mean() > 0.9


def test_a_blended_model_round_trips_and_fine_tunes_as_its_u_net(fitted, tmp_path):
    model, card, head, image, _, _ = fitted
    blended, blended_card = with_grey_head(model, card, head, 0.5)
    path = save_model(tmp_path / "blended.pt", blended, blended_card)
    assert torch.load(path, weights_only=False)["format_version"] == 3
    loaded, loaded_card = load_model(path)
    x = torch.from_numpy(image[None, None])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), blended.eval()(x))
    plain, plain_card = without_grey_head(loaded, loaded_card)
    assert plain.grey is None and plain_card.architecture.grey_hidden == 0
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x))
    plain_path = save_model(tmp_path / "plain.pt", plain, plain_card)
    assert torch.load(plain_path, weights_only=False)["format_version"] == 1


def test_training_blends_grey_levels_when_the_start_model_does_not_know_the_imaging(tmp_path):
    sample = make_sample((12, 48, 48), seed=1)
    painted = simulate_strokes(sample.labels, slices=[6], fraction=0.05, seed=0)
    output = tmp_path / "scratch.pt"
    events = []
    config = TrainConfig(init=None, output=output, **TINY)  # from scratch: knows nothing
    blended = lambda model, card: model.grey is not None  # noqa: E731 (what the preview saw)
    job = train_job([(sample.image, painted)], config, preview=blended)
    result = run_job(job, events.append)
    notes = [n for e in events if e.data and "notes" in e.data for n in e.data["notes"]]
    previews = [e.data["preview"] for e in events if e.data and "preview" in e.data]
    assert previews[-1] is True and not any(previews[:-1])  # the last one: the saved model
    assert result.model.grey is not None and result.card.provenance["grey_head"]["weight"] == 0.5
    assert any("blends in a classifier of the grey levels" in n for n in notes)
    loaded, card = load_model(output)  # the file holds the blended model
    assert card.architecture.grey_hidden and loaded.grey is not None
    # fine-tuning from it starts from its U-Net and fits the grey levels to the new strokes
    tuned = run_job(train_job([(sample.image, painted)], TrainConfig(init=output, **TINY)))
    assert tuned.model.grey is not None
    off = TrainConfig(init=None, grey_weight=0, **TINY)
    result = run_job(train_job([(sample.image, painted)], off))
    assert result.model.grey is None and "grey_head" not in result.card.provenance


def test_grey_weight_outside_zero_to_one_is_refused():
    from battery_seg.errors import BatterySegError

    with pytest.raises(BatterySegError, match=r"grey_weight must be in \[0, 1\]"):
        TrainConfig(grey_weight=1.5)


def test_a_blended_model_exports_to_onnx_at_other_sizes(fitted, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from battery_seg.model.onnx import export_onnx

    model, card, head, _, _, _ = fitted
    blended, _ = with_grey_head(model, card, head, 0.5)
    path = export_onnx(blended.eval(), tmp_path / "blended.onnx")
    assert_onnx_runs_like(blended, path, [(1, 1, 32, 32), (2, 1, 24, 40)], ort)


def test_retraining_a_blended_model_keeps_blending(tmp_path):
    """A model that blends grey levels, retrained on strokes its U-Net labels well (corrections
    of a model trained on this data), still blends them: fitted again to the new strokes."""
    from battery_seg.model import load_model

    sample = make_sample((12, 64, 64), seed=1)
    painted = simulate_strokes(sample.labels, slices=[6], fraction=0.05, seed=0)
    model, card = load_model("default")  # knows the phantom's imaging
    crop = Crop("phantom", 0, 6, (0, 0), sample.image[6][None], painted[6], 0 * painted[6])
    head = run_job(fit_grey_head([crop], 4, seed=0))
    blended, blended_card = with_grey_head(model, card, head, 0.5)
    blended_card.provenance["grey_head"] = {"weight": 0.5}
    start = save_model(tmp_path / "blended.pt", blended, blended_card)
    events = []
    config = TrainConfig(init=start, epochs=1, steps_per_epoch=2, patch_size=64, batch_size=2)
    result = run_job(train_job([(sample.image, painted)], config), events.append)
    assert result.card.provenance["start_model"]["trust"] >= 0.5  # its U-Net knows the imaging
    assert result.card.provenance["start_model"]["grey_levels"] is True
    assert result.model.grey is not None
    notes = [n for e in events if e.data and "notes" in e.data for n in e.data["notes"]]
    assert any("blended in grey levels; fitted again to these strokes" in n for n in notes)
