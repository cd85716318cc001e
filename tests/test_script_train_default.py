"""The widening step of scripts/train_default_model.py (how the bundled model grew to base 12)."""

import importlib.util
from pathlib import Path

import torch

from battery_seg import PhaseSet
from battery_seg.model import ModelCard, UNet, UNetConfig, load_model, save_model

SCRIPT = Path(__file__).parents[1] / "scripts" / "train_default_model.py"


def _script():
    spec = importlib.util.spec_from_file_location("train_default_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_widening_keeps_the_predictions_and_adds_trainable_channels(tmp_path):
    torch.manual_seed(0)
    config = UNetConfig(in_channels=3, n_phases=4, base_channels=4, depth=2)
    net = UNet(config)
    with torch.no_grad():  # non-trivial batch-norm statistics, as after training
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    card = ModelCard(PhaseSet.parse("si-graphite"), context=3, architecture=config)
    narrow = save_model(tmp_path / "narrow.pt", net, card)

    wide_path = _script().widen(narrow, 6, tmp_path / "wide.pt")

    wide, wide_card = load_model(wide_path)
    assert wide_card.architecture.base_channels == 6 and wide_card.context == 3
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(wide(x), net.eval()(x), atol=1e-5, rtol=1e-5)
    # the added channels compute something: training can route it once their outputs move
    stem = wide.encoder.stem[0].weight
    assert stem[4:].abs().sum() > 0
