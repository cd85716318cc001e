"""The bundled cathode models segment a cathode with no painting at all."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from battery_seg.cli import main
from battery_seg.inference import SegmentConfig, segment
from battery_seg.model import load_card
from battery_seg.phantom import CTParams, make_cathode, random_cathode_params, simulate_ct

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MATERIALS = {1: "pore", 2: "active", 3: "cbd"}


def mean_iou(truth: np.ndarray, predicted: np.ndarray) -> float:
    scores = [
        ((truth == k) & (predicted == k)).sum() / max(((truth == k) | (predicted == k)).sum(), 1)
        for k in (1, 2, 3)
    ]
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def cathode():
    """A held-out generated NMC cathode (a seed no training uses) under physics-based CT."""
    rng = np.random.default_rng(424_242)
    labels = make_cathode((12, 96, 96), seed=424_242, params=random_cathode_params(rng, "nmc"))
    scan = CTParams(photons=3000, energy_kev=20.0, active_material="nmc622")
    return simulate_ct(labels, MATERIALS, scan, seed=1), labels


def test_bundled_cathode_models_predict_a_cathodes_phases():
    for name, context in (("nmc", 5), ("nmc-2d", 1)):
        card = load_card(name)
        assert card.phases.names == ("pore", "active", "cbd") and card.context == context


def test_nmc_model_segments_a_held_out_cathode_without_painting(cathode):
    image, labels = cathode
    predicted = np.asarray(segment(image, SegmentConfig(model="nmc", device="cpu")).labels)
    chance = mean_iou(labels, np.random.default_rng(0).integers(1, 4, labels.shape))
    assert chance < 0.2 and mean_iou(labels, predicted) > 0.55  # measured 0.60
    # the one-slice model reads each slice on its own, as well
    flat = np.asarray(segment(image[5], SegmentConfig(model="nmc-2d", device="cpu")).labels)
    assert mean_iou(labels[5], flat) > 0.55


def test_segment_command_runs_the_cathode_model(cathode, tmp_path, capsys):
    image, labels = cathode
    tifffile.imwrite(tmp_path / "scan.tif", image)
    out = tmp_path / "phases.tif"
    code = main(
        ["segment", str(tmp_path / "scan.tif"), "-o", str(out), "--model", "nmc", "--device", "cpu"]
    )
    assert code == 0, capsys.readouterr().err
    assert mean_iou(labels, tifffile.imread(out)) > 0.55
