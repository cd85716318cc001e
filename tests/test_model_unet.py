"""Contract tests every network configuration must pass (segmentation_models.pytorch style)."""

import numpy as np
import pytest
import torch

from battery_seg import BatterySegError, PhaseSet
from battery_seg.model import (
    IntensityRange,
    ModelCard,
    UNet,
    UNetConfig,
    estimate_intensity_range,
    load_card,
    load_model,
    normalize,
    save_model,
)

CONFIGS = [
    UNetConfig(in_channels=1, n_phases=4, base_channels=8, depth=2),
    UNetConfig(in_channels=3, n_phases=3, base_channels=8, depth=3, dropout=0.0),
    UNetConfig(in_channels=5, n_phases=2, base_channels=4, depth=4),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"ctx{c.in_channels}-d{c.depth}")
class TestUNetContract:
    def test_output_shape(self, config):
        net = UNet(config).eval()
        x = torch.randn(2, config.in_channels, 2 * config.multiple, 3 * config.multiple)
        assert net(x).shape == (2, config.n_phases, *x.shape[-2:])

    def test_probabilities_sum_to_one(self, config):
        net = UNet(config)
        x = torch.randn(1, config.in_channels, config.multiple, config.multiple)
        p = net.predict_proba(x)
        assert not net.training
        torch.testing.assert_close(p.sum(1), torch.ones(1, *x.shape[-2:]))

    def test_shape_errors_say_how_to_pad(self, config):
        net = UNet(config)
        m = config.multiple
        with pytest.raises(ValueError, match=rf"pad to \({m}, {2 * m}\)"):
            net(torch.zeros(1, config.in_channels, m - 1, m + 1))
        with pytest.raises(ValueError, match="context slices as channels"):
            net(torch.zeros(1, config.in_channels + 1, m, m))

    def test_gradients_reach_the_first_layer(self, config):
        net = UNet(config).train()
        x = torch.randn(2, config.in_channels, config.multiple, config.multiple)
        net(x).sum().backward()
        first = net.encoder.stem[0].weight
        assert first.grad is not None and first.grad.abs().sum() > 0


def test_skip_connections_carry_fine_detail():
    """A one-pixel change at the input changes the output at that pixel even through depth 4."""
    net = UNet(UNetConfig(in_channels=1, n_phases=2, base_channels=4, depth=4)).eval()
    x = torch.zeros(1, 1, 32, 32)
    y = x.clone()
    y[0, 0, 10, 10] = 5.0
    with torch.inference_mode():
        diff = (net(y) - net(x)).abs().sum(1)[0]
    assert diff[10, 10] > 0
    assert diff[0, 31] == 0 or diff[10, 10] > diff[0, 31]


def test_checkpoint_round_trip(tmp_path):
    phases = PhaseSet.parse("nmc")
    config = UNetConfig(in_channels=3, n_phases=3, base_channels=4, depth=2)
    net = UNet(config)
    card = ModelCard(phases, context=3, architecture=config, provenance={"epochs": 2})
    path = save_model(tmp_path / "m.pt", net, card)
    loaded, loaded_card = load_model(path)
    assert loaded_card.phases == phases and loaded_card.context == 3
    assert loaded_card.provenance == {"epochs": 2}
    assert load_card(path) == loaded_card  # the card alone, without building the network
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(loaded(x), net.eval()(x))
    assert not list(tmp_path.glob("*.tmp"))


def test_model_card_rejects_inconsistent_context():
    with pytest.raises(BatterySegError, match="odd number"):
        ModelCard(PhaseSet.parse("nmc"), context=2)
    with pytest.raises(BatterySegError, match="input channels"):
        ModelCard(PhaseSet.parse("nmc"), context=3, architecture=UNetConfig(1, 3))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a zip file at all", "corrupt or not a PyTorch checkpoint"),
        (None, "not a battery-seg model"),
    ],
)
def test_bad_model_files_are_explained(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    for load in (load_model, load_card):
        with pytest.raises(BatterySegError, match=message):
            load(path)
        with pytest.raises(BatterySegError, match="does not exist"):
            load(tmp_path / "missing.pt")


def test_normalisation_from_a_sample():
    rng = np.random.default_rng(0)
    volume = rng.normal(1000, 100, size=(40, 32, 32)).astype(np.uint16)
    intensity = estimate_intensity_range(volume)
    lo, hi = np.percentile(volume, [0.5, 99.5])
    assert abs(intensity.low - lo) < 30 and abs(intensity.high - hi) < 30
    out = normalize(volume[:2], IntensityRange(900.0, 1100.0))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (volume[:2].astype(np.float32) - 900) / 200, rtol=1e-6)


def test_normalisation_refuses_nan_and_constant_images():
    volume = np.ones((4, 8, 8), np.float32)
    with pytest.raises(BatterySegError, match="constant"):
        estimate_intensity_range(volume)
    volume[1, 2, 3] = np.nan
    with pytest.raises(BatterySegError, match="NaN or infinite"):
        estimate_intensity_range(volume)


@pytest.mark.parametrize("rows", [(0, 7), (5, 29), (30, 64), (17, 18)])
def test_live_head_rows_equal_the_whole_slice(rows):
    """The live head computed for some rows only (a large slice in strips) gives those rows of
    the whole slice's logits: the bilinear upsampling reads the same source rows, near the
    edges too."""
    from battery_seg.model import MultiScaleHead

    config = UNetConfig(n_phases=3, base_channels=4, depth=3, live_hidden=5, feature_phases=4)
    head = MultiScaleHead(config).eval()
    generator = torch.Generator().manual_seed(0)
    scales = [
        torch.randn(1, width, 64 // 2**k, 40 // 2**k, generator=generator)
        for k, width in zip(range(config.depth - 1, -1, -1), config.decoder_widths, strict=True)
    ]
    logits = torch.randn(1, 4, 64, 40, generator=generator)
    with torch.no_grad():
        whole = head(scales, logits)
        part, rest = head.strips(scales, logits, [rows, (0, 64)])
    assert part.shape == (1, 3, rows[1] - rows[0], 40)
    torch.testing.assert_close(part, whole[..., rows[0] : rows[1], :], rtol=1e-6, atol=1e-6)
    assert torch.equal(rest, whole)
