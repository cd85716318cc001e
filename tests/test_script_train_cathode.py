"""How scripts/train_cathode_model.py chooses a stage's weights: whole held-out generated
cathodes, segmented every few epochs; the best weights and the last ones are both saved."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

from battery_seg.model import ModelCard, UNet, UNetConfig, load_model
from battery_seg.phases import PhaseSet

SCRIPTS = Path(__file__).parents[1] / "scripts"


def _script():
    sys.path.insert(0, str(SCRIPTS))  # the script imports train_default_model beside it
    try:
        spec = importlib.util.spec_from_file_location(
            "train_cathode_model", SCRIPTS / "train_cathode_model.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


def test_held_out_volumes_choose_the_weights_and_the_last_are_kept(tmp_path):
    script = _script()
    torch.manual_seed(0)
    config = UNetConfig(in_channels=5, n_phases=3, base_channels=4, depth=2)
    card = ModelCard(PhaseSet.parse("pore,active,cbd"), context=5, architecture=config)
    good, bad = UNet(config).eval(), UNet(config).eval()
    held = script.HeldOut(
        2, 2, (8, 48, 48), tmp_path / "best.pt", tmp_path / "last.pt", tmp_path / "cache"
    )
    assert [name.split()[1] for _, _, name in held.volumes] == ["ct", "fibsem"]
    assert all(image.shape == labels.shape == (8, 48, 48) for image, labels, _ in held.volumes)
    # a network that always says "active" scores that phase's IoU / 3 on every volume
    with torch.no_grad():
        good.head.bias.copy_(torch.tensor([-50.0, 50.0, -50.0]))
        bad.head.bias.copy_(torch.tensor([-50.0, -50.0, 50.0]))  # always "cbd": a worse score

    assert held(bad, card) is None  # epoch 1: no check (every 2), the last weights saved
    assert (tmp_path / "last.pt").is_file() and not (tmp_path / "best.pt").exists()
    first = held(good, card)  # epoch 2: checked, the best so far
    assert held(bad, card) is None
    worse = held(bad, card)  # epoch 4: checked, worse: the best stays the good network's
    assert first > worse and held.best == first
    assert [epoch for epoch, _ in held.scores] == [2, 4]
    best, _ = load_model(tmp_path / "best.pt")
    last, _ = load_model(tmp_path / "last.pt")
    x = torch.zeros(1, 5, 48, 48)
    with torch.inference_mode():
        assert best(x).argmax(1).eq(1).all() and last(x).argmax(1).eq(2).all()
    again = script.held_out_volume(0, (8, 48, 48), tmp_path / "cache")  # read from the cache
    np.testing.assert_array_equal(again[0], held.volumes[0][0])
