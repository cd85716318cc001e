"""Live segmentation: a head on the bundled network's features, fitted in seconds to strokes."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE = (12, 96, 96)
# The bundled default model's features, strokes on 1 % of one slice (120 voxels, 30 per phase),
# scored on a slice nobody painted: measured pore 0.95, silicon 0.79, cbd 0.69, graphite 0.95.
MIN_LIVE_IOU = (0.8, 0.7, 0.5, 0.85)


@pytest.fixture(scope="module")
def phantom():
    from battery_seg.phantom import make_sample
    from battery_seg.training import simulate_strokes

    sample = make_sample(SHAPE, seed=0)
    strokes = simulate_strokes(sample.labels, slices=[6], fraction=0.01, seed=0)
    return sample, strokes


@pytest.fixture(scope="module")
def live(phantom):
    import torch

    from battery_seg.training import LiveConfig, live_fit

    torch.set_num_threads(1)
    sample, strokes = phantom
    return live_fit(sample.image, strokes, LiveConfig(steps=200))


def _iou(truth, predicted, n_phases=4):
    return [
        np.logical_and(truth == v, predicted == v).sum()
        / np.logical_or(truth == v, predicted == v).sum()
        for v in range(1, n_phases + 1)
    ]


def test_live_fit_learns_the_phantom_from_strokes(phantom, live):
    sample, _ = phantom
    labels, doubt = live.predict_slice(sample.image, 2)
    scores = _iou(sample.labels[2], labels)
    print("live IoU", np.round(scores, 3))
    assert all(s >= m for s, m in zip(scores, MIN_LIVE_IOU, strict=True)), scores
    assert doubt.shape == labels.shape and 0 <= doubt.min() and doubt.max() <= 1
    assert live.card.architecture.live_hidden == 32


def test_live_head_keeps_the_phase_fractions_of_a_network_that_knows_the_data(phantom, live):
    """Strokes of about 30 voxels per phase teach equal phases; the head's biases are shifted
    so that it predicts the start network's fractions on the painted slice (not the strokes')."""
    from battery_seg.training import LiveConfig, live_fit

    sample, strokes = phantom
    matched = live.card.provenance["live"]["fractions_matched"]
    assert matched is not None and live.features == "network"
    np.testing.assert_allclose(matched["after"], matched["target"], atol=0.02)
    truth = np.bincount(sample.labels[6].ravel(), minlength=5)[1:] / sample.labels[6].size
    assert np.abs(np.subtract(matched["target"], truth)).max() < 0.05  # the network's are right
    plain = live_fit(sample.image, strokes, LiveConfig(steps=200, match_fractions=False))
    assert plain.card.provenance["live"]["fractions_matched"] is None


def test_saved_live_model_segments_like_the_live_view(phantom, live, tmp_path):
    from battery_seg.inference import SegmentConfig, segment
    from battery_seg.model import load_model

    sample, _ = phantom
    path = live.save(tmp_path / "live.pt")
    _, card = load_model(path)
    assert card.architecture == live.card.architecture and card.phases == live.card.phases
    result = segment(sample.image, SegmentConfig(model=path))
    labels = np.asarray(result.labels)
    shown, _ = live.predict_slice(sample.image, 2)
    # tiles and blending differ from the one-slice view only at a few pixels
    assert (labels[2] == shown).mean() > 0.99


def test_head_on_cached_features_equals_the_networks_forward(phantom, live):
    from battery_seg.training import predict_slice

    sample, _ = phantom
    intensity = live.bank.intensity(sample.image)
    full = predict_slice(live.network, live.card, sample.image, 9, intensity)
    assert np.array_equal(full, live.predict_slice(sample.image, 9)[0])


def test_suggest_slices_prefers_an_unpainted_slice():
    """Half the volume imaged otherwise (another X-ray model) and painted on the first half
    only: the unpainted half is where the live model is unsure, so it is suggested first."""
    from battery_seg.phantom import make_sample, random_xct_params
    from battery_seg.training import LiveConfig, live_fit, simulate_strokes, suggest_slices

    first = make_sample(SHAPE, seed=0)
    second = make_sample(SHAPE, seed=1, xct=random_xct_params(np.random.default_rng(3)))
    image = np.concatenate([first.image[:6], second.image[6:]])
    truth = np.concatenate([first.labels[:6], second.labels[6:]])
    strokes = simulate_strokes(truth, slices=[3], fraction=0.01, seed=0)
    live = live_fit(image, strokes, LiveConfig(steps=200))
    ranked = suggest_slices(live, image, strokes, candidates=[3, 9], count=2)
    assert [s.index for s in ranked] == [9, 3], ranked
    assert ranked[0].uncertainty > 2 * ranked[1].uncertainty  # measured 0.45 and 0.07
    everywhere = suggest_slices(live, image, strokes, count=3)  # 12 candidates: every slice
    assert all(s.index >= 6 for s in everywhere), everywhere


def test_refit_from_the_previous_head_keeps_the_bank(phantom, live):
    from battery_seg.training import LiveConfig, live_fit

    sample, strokes = phantom
    assert live.bank.cached(sample.image, 6)
    again = live_fit(sample.image, strokes, LiveConfig(steps=200), bank=live.bank, previous=live)
    assert again.bank is live.bank
    assert (
        again.predict_slice(sample.image, 2)[0] == live.predict_slice(sample.image, 2)[0]
    ).mean() > 0.95


def test_cli_quick_writes_a_live_model(phantom, tmp_path, capsys):
    import tifffile

    from battery_seg.cli import main
    from battery_seg.model import load_card

    sample, strokes = phantom
    tifffile.imwrite(tmp_path / "image.tif", sample.image)
    tifffile.imwrite(tmp_path / "strokes.tif", strokes)
    out = tmp_path / "live.pt"
    argv = ["train", str(tmp_path / "image.tif"), str(tmp_path / "strokes.tif"), "-o", str(out)]
    assert main([*argv, "--quick", "--threads", "1"]) == 0
    assert "live classifier" in capsys.readouterr().out
    assert load_card(out).architecture.live_hidden > 0


def test_train_init_from_a_live_model_refuses_other_phases(phantom, live, tmp_path):
    from battery_seg.errors import BatterySegError
    from battery_seg.training import TrainConfig
    from battery_seg.training._init import initial_model

    path = live.save(tmp_path / "live.pt")
    assert initial_model(TrainConfig(init=str(path))).card.architecture.live_hidden
    with pytest.raises(BatterySegError, match="fine-tunes for those phases only"):
        initial_model(TrainConfig(init=str(path), phases="nmc"))


def test_suggestions_put_slices_with_no_strokes_first():
    """A painted slice stays uncertain where strokes keep off (its boundaries), yet a new slice
    teaches more: unpainted slices come first, each group by its uncertainty."""
    from battery_seg.training import suggest_slices

    doubt = {0: 0.9, 1: 0.2, 2: 0.5, 3: 0.7}

    class Model:  # predict_slice is all suggest_slices asks of a live model
        def predict_slice(self, image, index):
            return np.ones((4, 4), np.uint8), np.full((4, 4), doubt[index], np.float32)

    strokes = np.zeros((4, 4, 4), np.uint8)
    strokes[3, 0, 0] = strokes[0, 1, 1] = 1
    ranked = suggest_slices(Model(), np.zeros((4, 4, 4)), strokes, count=4)
    assert [(s.index, s.painted) for s in ranked] == [(2, False), (1, False), (0, True), (3, True)]
    assert ranked[2].uncertainty == pytest.approx(0.9)


def test_live_fits_separate_images_each_on_its_own_grey_values(phantom):
    """Strokes on two separate slices, the second imaged with another gain and offset (as
    slices far apart in a scan, or two files): one fit reads both, each image normalised on
    its own, and labels both as well as a fit on either alone."""
    from battery_seg.errors import BatterySegError
    from battery_seg.training import LiveConfig, live_fit, simulate_strokes

    sample, _ = phantom
    first, second = sample.image[3], sample.image[9].astype(np.float32) * 3.0 + 500.0
    strokes = [simulate_strokes(sample.labels[k], fraction=0.01, margin=1, seed=k) for k in (3, 9)]
    both = live_fit([first, second], strokes, LiveConfig(steps=200))
    assert both.painted_voxels == sum(int((s > 0).sum()) for s in strokes)
    assert both.card.provenance["live"]["images"] == 2
    for image, k in ((first, 3), (second, 9)):
        scores = _iou(sample.labels[k], both.predict_slice(image, 0)[0])
        assert min(scores) >= 0.5 and np.mean(scores) >= 0.75, (k, np.round(scores, 3))
    with pytest.raises(BatterySegError, match="one strokes array per image"):
        live_fit([first, second], strokes[:1])
    with pytest.raises(BatterySegError, match="of image 2 must have the image's shape"):
        live_fit([first, second], [strokes[0], strokes[1][:10]])


def test_cli_quick_fits_every_pair(phantom, tmp_path, capsys):
    import tifffile

    from battery_seg.cli import main
    from battery_seg.model import load_card
    from battery_seg.training import simulate_strokes

    sample, _ = phantom
    argv = ["train"]
    for k in (3, 9):
        tifffile.imwrite(tmp_path / f"image{k}.tif", sample.image[k])
        strokes = simulate_strokes(sample.labels[k], fraction=0.01, margin=1, seed=k)
        tifffile.imwrite(tmp_path / f"strokes{k}.tif", strokes)
        argv += [str(tmp_path / f"image{k}.tif"), str(tmp_path / f"strokes{k}.tif")]
    out = tmp_path / "live.pt"
    assert main([*argv, "-o", str(out), "--quick", "--threads", "1"]) == 0
    assert "live classifier" in capsys.readouterr().out
    assert load_card(out).provenance["live"]["images"] == 2
