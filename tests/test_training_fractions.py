"""Fine-tuning keeps the start model's phase fractions (training._balance)."""

from __future__ import annotations

import numpy as np
import pytest

from battery_seg.jobs import run_job
from battery_seg.model import load_model
from battery_seg.phantom import make_sample
from battery_seg.training import TrainConfig, predict_volume, simulate_strokes, train_job
from battery_seg.training._balance import fraction_shift, predicted_fractions

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# a high learning rate, so that a few steps on equal strokes of every phase move the fractions
QUICK = dict(
    init="default", epochs=2, steps_per_epoch=4, patch_size=64, batch_size=2, learning_rate=1e-2
)


def fractions(labels: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(labels.ravel(), minlength=n + 1)[1:] / labels.size


@pytest.fixture(scope="module")
def runs():
    """The same fine-tuning with and without matching, and the start model's fractions."""
    sample = make_sample((16, 96, 96), seed=3)
    painted = simulate_strokes(sample.labels, slices=[8], fraction=0.03, seed=0)
    network, card = load_model("default")
    start = fractions(predict_volume(network, card, sample.image), 4)
    out = {}
    for match in (True, False):
        events = []
        config = TrainConfig(**QUICK, match_fractions=match)
        result = run_job(train_job([(sample.image, painted)], config), events.append)
        notes = [n for e in events if e.data and "notes" in e.data for n in e.data["notes"]]
        found = fractions(predict_volume(result.model, result.card, sample.image), 4)
        out[match] = (result, found, notes)
    return start, out


def test_matched_fractions_follow_the_start_model_on_the_whole_volume(runs):
    start, out = runs
    matched, plain = out[True][1], out[False][1]
    # the strokes alone move the fractions (else this test could not tell anything) ...
    assert np.abs(plain - start).max() > 0.03, (plain, start)
    # ... matching on 4 survey planes brings the whole volume back to the start's fractions
    assert np.abs(matched - start).max() < 0.02, (matched, start)


def test_matching_is_recorded_and_said(runs):
    _, out = runs
    result, _, notes = out[True]
    record = result.card.provenance["fractions"]
    assert set(record) == {"target", "before", "after", "shift"}
    assert abs(sum(record["shift"])) < 1e-3 and len(record["shift"]) == 4
    assert any("Phase fractions matched to the start model's" in n for n in notes)
    assert "grey_head" not in result.card.provenance  # it knows the imaging: no grey levels
    plain, _, plain_notes = out[False]
    assert "fractions" not in plain.card.provenance
    assert not any("Phase fractions" in n for n in plain_notes)
    assert plain.card.provenance["config"]["match_fractions"] is False


def test_a_start_model_that_does_not_know_the_strokes_is_not_matched():
    sample = make_sample((12, 48, 48), seed=1)
    painted = simulate_strokes(sample.labels, slices=[6], fraction=0.05, seed=0)
    config = TrainConfig(
        init=None,
        base_channels=4,
        depth=2,
        patch_size=32,
        batch_size=2,
        steps_per_epoch=2,
        epochs=1,
    )
    result = run_job(train_job([(sample.image, painted)], config))
    assert "fractions" not in result.card.provenance


def test_fraction_shift_reaches_a_target_on_known_probabilities():
    rng = np.random.default_rng(1)
    truth = rng.choice(3, size=50_000, p=[0.5, 0.35, 0.15])
    # a classifier that learnt equal priors: right 70 % of the time, else uniform
    p = np.full((3, truth.size), 0.15)
    p[truth, np.arange(truth.size)] = 0.7
    p += rng.uniform(0, 0.1, p.shape)
    log_p = np.log(p / p.sum(0))[None]
    target = np.array([0.5, 0.35, 0.15])
    shift = fraction_shift(log_p, target)
    assert np.allclose(predicted_fractions(log_p, shift), target, atol=0.005)
    assert fraction_shift(log_p, np.array([0.6, 0.4, 0.0]))[2] == 0  # an absent phase: no offset
