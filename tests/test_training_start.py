"""Where training starts: the automatic bundled model, a new output layer filled from the start
model's own rows, how far the start model is trusted, unpainted images and validation notes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from battery_seg.checks import slice_correlation
from battery_seg.errors import BatterySegError
from battery_seg.model import UNet, UNetConfig
from battery_seg.phantom import make_sample
from battery_seg.phases import PhaseSet
from battery_seg.training import TrainConfig, TrainingPair, simulate_strokes, train
from battery_seg.training._init import resolve_init
from battery_seg.training._samples import Crop
from battery_seg.training._transfer import Agreement, head_rows, map_head
from battery_seg.training._validation_notes import validation_notes

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUICK = dict(patch_size=32, batch_size=2, steps_per_epoch=2, epochs=1)


@pytest.fixture(scope="module")
def sample():
    sample = make_sample((12, 48, 48), seed=1)
    painted = simulate_strokes(sample.labels, slices=[3, 8], fraction=0.05, seed=0)
    return sample.image, sample.labels, painted


def test_auto_start_picks_the_bundled_model_that_suits_the_data():
    volume, flat = np.zeros((8, 16, 16)), np.zeros((16, 16))
    one_slice = np.zeros((1, 16, 16))

    def pick(pairs, **settings):
        return resolve_init(TrainConfig(**settings), [TrainingPair(i, i) for i in pairs])[0].init

    assert TrainConfig().init == "auto"
    assert pick([volume]) == "default"
    assert pick([flat]) == pick([one_slice, flat]) == "2d"
    assert pick([volume], context=1) == pick([volume], context=3) == "2d"
    assert pick([volume, flat]) == "default" and pick([flat], context=7) == "default"
    assert pick([volume], init=None) is None and pick([volume], init="fast") == "fast"
    # a cathode's volumes start from the cathode model, in any order and under its names;
    # single slices from the anode 2d model (it fine-tunes better on the real LRCS slices)
    assert pick([volume], phases="nmc") == pick([volume], phases="cbd,active,pore") == "nmc"
    assert pick([volume], phases="pore,lfp,cbd") == "nmc"
    assert pick([flat], phases="nmc") == pick([volume], phases="pore,nmc,cbd", context=1) == "2d"
    assert pick([volume], phases="pore,active,cbd,crack") == "default"  # not a cathode's three


def test_auto_start_reads_a_stack_of_unrelated_slices_one_slice_at_a_time():
    rng = np.random.default_rng(0)
    unrelated = rng.normal(size=(6, 64, 64))  # separate images: neighbours do not correlate
    volume = make_sample((12, 64, 64), seed=2).image  # a tomogram: they do (0.8 here)
    assert slice_correlation(unrelated) < 0.1 < 0.6 < slice_correlation(volume)
    assert np.isnan(slice_correlation(np.zeros((4, 8, 8))))  # constant slices: cannot tell

    def pick(*images, **settings):
        pairs = [TrainingPair(image, image, f"image {k}") for k, image in enumerate(images)]
        config, notes = resolve_init(TrainConfig(**settings), pairs)
        return config.init, notes

    init, notes = pick(unrelated)
    assert init == "2d" and len(notes) == 1
    assert "image 0 (" in notes[0] and "--init default" in notes[0]
    assert pick(volume) == ("default", [])
    assert pick(unrelated, volume) == ("default", [])  # one real volume: the 2.5D model
    assert pick(unrelated, unrelated[0]) == ("2d", notes)  # with a 2D image: still 2D
    assert pick(unrelated, context=5) == ("default", [])  # an asked-for context wins
    assert pick(unrelated, init="default") == ("default", [])
    assert pick(np.zeros((8, 16, 16))) == ("default", [])


def test_training_on_unrelated_slices_says_it_treats_them_as_2d_images():
    # four far-apart slices of a phantom, stacked as one image (as the LRCS slices ship)
    sample = make_sample((64, 64, 64), seed=3)
    image, labels = sample.image[::20], sample.labels[::20]
    painted = simulate_strokes(labels, slices=[0], fraction=0.05, seed=0)
    before = painted.copy()
    events = []
    result = train([(image, painted, "slices")], TrainConfig(**QUICK), on_progress=events.append)
    card = result.card
    assert card.context == 1 and card.provenance["init"] == "2d"
    notes = [e.data["notes"] for e in events if e.data and "notes" in e.data]
    assert notes and "slices (" in notes[0][0] and "unrelated" in notes[0][0]
    assert card.provenance["data_notes"] == notes[0]
    np.testing.assert_array_equal(painted, before)


def test_a_2d_image_fine_tunes_the_bundled_2d_model_by_default(sample):
    image, _, painted = sample
    result = train([(image[3], painted[3], "slice")], TrainConfig(**QUICK))
    card = result.card
    assert card.context == 1 and card.provenance["init"] == "2d"
    assert card.provenance["config"]["learning_rate"] == 1e-3  # fine-tuning rate
    start = card.provenance["start_model"]
    assert 0 <= start["trust"] <= 1 and 0 <= start["agreement"] <= 1


def test_new_output_rows_come_from_the_same_name_or_the_most_predicted_phase():
    start = PhaseSet.parse("si-graphite")  # pore, silicon, cbd, graphite
    cathode = PhaseSet.parse("nmc")  # pore, active, cbd
    counts = np.array([[90, 0, 10, 0], [0, 30, 5, 65], [0, 0, 80, 20]])
    rows = head_rows(start, cathode, Agreement(counts))
    assert rows == [0, 3, 2]  # pore by name, active -> graphite (most predicted), cbd by name
    source = UNet(UNetConfig(in_channels=1, n_phases=4, base_channels=4, depth=2)).eval()
    mapped = map_head(source, 3, rows).eval()
    x = torch.rand(2, 1, 16, 16)
    with torch.inference_mode():
        torch.testing.assert_close(mapped(x), source(x)[:, rows])
    unknown = map_head(source, 3, [0, None, 2])  # a phase without a row: fresh weights
    assert not torch.equal(unknown.head.weight[1], source.head.weight[3])


def test_trust_follows_how_well_the_start_model_labels_the_strokes():
    """As the training guide states it: a start model that labels the strokes with a balanced
    accuracy of 0.9 or more is kept at full weight, one that labels them at chance not at all;
    the accuracy is scikit-learn's balanced accuracy, so a rare phase counts as much as pore."""
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix

    rng = np.random.default_rng(0)
    painted = rng.choice(3, size=20_000, p=[0.7, 0.25, 0.05])  # a rare phase, as CBD is
    trusts = {}
    for noise in (0.0, 0.1, 0.45, 0.7, 1.0):  # share of strokes labelled at random
        guess = np.where(rng.random(painted.size) < noise, rng.integers(0, 3, painted.size), -1)
        predicted = np.where(guess >= 0, guess, painted)
        agreement = Agreement(confusion_matrix(painted, predicted, labels=[0, 1, 2]))
        expected = balanced_accuracy_score(painted, predicted)
        assert agreement.accuracy([0, 1, 2]) == pytest.approx(expected)
        trusts[noise] = agreement.trust([0, 1, 2])
    assert trusts[0.0] == trusts[0.1] == 1.0  # balanced accuracy 1 and ~0.93
    assert trusts[1.0] == 0.0  # chance
    assert 0.0 < trusts[0.45] < 1.0 and trusts[0.45] > trusts[0.7]  # ~0.7 and ~0.53
    # everything labelled as the majority phase: 70 % of the painted voxels right, yet chance
    majority = Agreement(confusion_matrix(painted, np.zeros_like(painted), labels=[0, 1, 2]))
    assert majority.trust([0, 1, 2]) == 0.0
    # two phases on one start phase: the start model cannot tell them apart
    merged = Agreement(np.array([[100, 0], [100, 0]]))
    assert merged.accuracy([0, 0]) == 0.5 and merged.trust([0, 0]) == 0.0


def test_transfer_to_other_phases_records_the_phase_map(sample, tmp_path):
    image, _, painted = sample
    # a cathode-like phase set painted on the anode sample: graphite and silicon as "active"
    nmc = np.select([painted == 1, painted == 3, painted >= 2], [1, 3, 2], 0).astype(np.uint8)
    result = train([(image, nmc)], TrainConfig(init="fast", phases="nmc", **QUICK))
    start = result.card.provenance["start_model"]
    assert start["phase_map"]["pore"] == "pore" and start["phase_map"]["cbd"] == "cbd"
    assert start["phase_map"]["active"] in ("graphite", "silicon")
    assert start["agreement"] > 0.5  # the fast model knows pore and CBD on the sample
    assert painted.max() == 4  # the user's labels are untouched


def test_unpainted_images_join_as_unpainted_patches(sample):
    image, _, painted = sample
    pairs = [
        (image, painted, "painted"),
        (image[:6], None, "more"),
        (image, np.zeros_like(painted)),
    ]
    config = TrainConfig(init=None, base_channels=4, depth=2, unlabelled_patches=2, **QUICK)
    result = train(pairs, config)
    sources = result.card.provenance["data"]
    assert [s["name"] for s in sources] == ["painted", "more", "volume 3"]
    assert sum(sources[1]["painted_voxels"].values()) == 0
    with pytest.raises(BatterySegError, match="nothing is painted"):
        train([(image, np.zeros_like(painted), "empty")], config)


def _crop(val: np.ndarray, train_: np.ndarray, image: np.ndarray) -> Crop:
    return Crop("v", 0, 0, (0, 0), image[None].astype(np.float32), train_, val)


def test_validation_notes_say_when_the_iou_means_little():
    rng = np.random.default_rng(0)
    image = rng.normal(0, 0.02, (64, 64)) + np.where(np.arange(64) < 32, 0.2, 0.8)[None]
    train_, val = np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8)
    train_[2:6, 2:30], train_[2:6, 34:62] = 1, 2
    val[40:42, 2:30], val[50:52, 2:30], val[40:42, 34:62], val[50:52, 34:62] = 1, 1, 2, 2
    notes = validation_notes([_crop(val, train_, image)], ("pore", "graphite"))
    assert notes["pore"].startswith("easy strokes") and notes["graphite"].startswith("easy")
    # the same grey level on both halves: a threshold cannot tell them apart
    flat = rng.normal(0.5, 0.02, (64, 64))
    notes = validation_notes([_crop(val, train_, flat)], ("pore", "graphite"))
    assert notes == {"pore": "", "graphite": ""}
    one = np.zeros_like(val)
    one[40:42, 2:30] = 1
    notes = validation_notes([_crop(one, train_, flat)], ("pore", "graphite"))
    assert notes["pore"].startswith("few held back: 1 stroke")
    assert notes["graphite"] == "no strokes held back"
