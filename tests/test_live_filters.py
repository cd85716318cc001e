"""The live head on classic filter features: what it computes, when it reads them, and that a
live model reading them is a model like any other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from onnx_helpers import assert_onnx_runs_like

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_filter_features_of_a_ramp_and_a_flat_image():
    """On a linear ramp the smoothed image is the ramp, the gradient magnitude its slope and the
    Hessian eigenvalues zero (away from the borders); on a flat image all but it are zero."""
    from battery_seg.model.unet import FILTER_SIGMAS, FilterFeatures, filter_count

    y, x = np.mgrid[0:112, 0:112].astype(np.float32)
    ramp = torch.from_numpy(0.03 * x + 0.04 * y)[None, None]
    maps = FilterFeatures()(ramp.repeat(1, 3, 1, 1))[0].numpy()
    assert maps.shape == (filter_count(), 112, 112)
    inner = (slice(32, 80), slice(32, 80))  # beyond 3 sigma of the largest scale from the edges
    np.testing.assert_allclose(maps[0][inner], ramp[0, 0].numpy()[inner], atol=1e-6)
    for i in range(len(FILTER_SIGMAS)):
        smooth, gradient, high, low = maps[1 + 4 * i : 5 + 4 * i]
        np.testing.assert_allclose(smooth[inner], ramp[0, 0].numpy()[inner], atol=1e-4)
        np.testing.assert_allclose(gradient[inner], 0.05, rtol=0.03)  # kernels cut at 3 sigma
        assert np.abs(high[inner]).max() < 1e-3 and np.abs(low[inner]).max() < 1e-3
    flat = FilterFeatures()(torch.full((1, 1, 32, 32), 0.7))[0].numpy()
    kept = [0, *range(1, len(flat), 4)]  # the image, then each scale's smoothed image
    smooth, derivatives = flat[kept], np.delete(flat, kept, axis=0)
    assert np.allclose(smooth, 0.7) and np.abs(derivatives).max() < 1e-3


def test_live_models_saved_with_three_filter_scales_still_build():
    """A live network of 13 filter channels (saved before the 8-pixel scale was added) reads
    1, 2 and 4 pixels; a count no scale set gives is refused by name."""
    from battery_seg.model import UNet, UNetConfig
    from battery_seg.model.unet import filter_sigmas

    assert filter_sigmas(13) == (1.0, 2.0, 4.0) and filter_sigmas(17) == (1.0, 2.0, 4.0, 8.0)
    config = UNetConfig(3, 3, 4, 2, live_hidden=8, feature_phases=4, live_filters=13)
    assert UNet(config).filters(torch.zeros(1, 3, 32, 32)).shape == (1, 13, 32, 32)
    with pytest.raises(ValueError, match="live_filters must be one of"):
        UNet(UNetConfig(3, 3, 4, 2, live_hidden=8, feature_phases=4, live_filters=12))


def test_a_bright_disc_has_a_negative_hessian_at_its_centre():
    from battery_seg.model.unet import FilterFeatures

    y, x = np.mgrid[0:64, 0:64]
    disc = ((y - 32) ** 2 + (x - 32) ** 2 <= 9).astype(np.float32)
    maps = FilterFeatures((2.0,))(torch.from_numpy(disc)[None, None])[0].numpy()
    smooth, gradient, high, low = maps[1:]
    assert smooth[32, 32] == smooth.max() and gradient[32, 32] < 0.01 * gradient.max()
    assert high[32, 32] < 0 and low[32, 32] < 0  # a maximum: both curvatures negative


@pytest.fixture(scope="module")
def cathode_strokes():
    """A phantom painted as if its phases were a cathode's (pore, active, cbd: graphite and
    silicon both 'active'): the bundled anode model does not know these phase names."""
    from battery_seg.phantom import make_sample
    from battery_seg.training import simulate_strokes

    sample = make_sample((10, 96, 96), seed=2)
    cathode = np.array([0, 1, 2, 3, 2], np.uint8)[sample.labels]  # si, graphite -> active
    strokes = simulate_strokes(cathode, slices=[5], fraction=0.02, seed=0)
    return sample.image, cathode, strokes


def test_auto_reads_the_filters_when_the_network_does_not_know_the_phases(
    cathode_strokes, tmp_path
):
    from battery_seg.inference import SegmentConfig, segment
    from battery_seg.model import load_model
    from battery_seg.training import LiveConfig, live_fit

    image, truth, strokes = cathode_strokes
    live = live_fit(image, strokes, LiveConfig(phases="pore,active,cbd", init="default"))
    assert live.features == "filters" and live.card.provenance["live"]["features"] == "filters"
    assert live.card.architecture.live_filters > 0
    labels, _ = live.predict_slice(image, 2)
    assert (labels == truth[2]).mean() > 0.8  # measured 0.93
    path = live.save(tmp_path / "live.pt")
    _, card = load_model(path)
    assert card.architecture == live.card.architecture
    result = np.asarray(segment(image, SegmentConfig(model=path)).labels)
    assert (result[2] == labels).mean() > 0.99  # the saved network computes the same filters
    again = live_fit(
        image, strokes, LiveConfig(phases="pore,active,cbd"), bank=live.bank, previous=live
    )
    assert again.features == "filters"  # a refit keeps what the head reads


def test_network_features_when_asked_and_bad_settings(cathode_strokes):
    from battery_seg.errors import BatterySegError
    from battery_seg.training import LiveConfig, live_fit

    image, _, strokes = cathode_strokes
    config = LiveConfig(phases="pore,active,cbd", init="default", features="network", steps=50)
    live = live_fit(image, strokes, config)
    assert live.features == "network" and live.card.architecture.live_filters == 0
    with pytest.raises(BatterySegError, match="features must be 'auto', 'network' or 'filters'"):
        LiveConfig(features="forest")


def test_a_live_network_reading_filters_exports_to_onnx_at_other_sizes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from battery_seg.model import UNet, UNetConfig
    from battery_seg.model.onnx import export_onnx
    from battery_seg.model.unet import filter_count

    torch.manual_seed(0)
    config = UNetConfig(
        in_channels=3,
        n_phases=3,
        base_channels=4,
        depth=2,
        live_hidden=8,
        feature_phases=4,
        live_filters=filter_count(),
    )
    network = UNet(config).eval()
    path = export_onnx(network, tmp_path / "live.onnx")
    assert_onnx_runs_like(network, path, [(1, 3, 32, 32), (2, 3, 24, 40)], ort)
