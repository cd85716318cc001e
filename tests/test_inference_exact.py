"""Chunked inference equals a single pass, checked with analytic models (MONAI style).

The "models" are fixed ``nn.Module``s run through the real machinery (block planning, halos,
mirror padding, the global tile grid, Gaussian blending, dask): a per-pixel affine map of the
context slices, whose result is known in closed form, and a fixed 3x3 convolution, whose tile
borders differ from the interior so only correct blending and halos make blocks seamless.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import torch
from torch import nn

from battery_seg.cluster import ClusterOptions
from battery_seg.inference import InMemoryModel, SegmentConfig, segment
from battery_seg.model import ModelCard, UNetConfig, estimate_intensity_range, normalize
from battery_seg.phases import PhaseSet

SHAPE = (37, 61, 53)
UNEVEN = ((10, 27), (7, 30, 24), (20, 33))
BLOCKS = (9, 25, 22)


class Affine(nn.Module):
    """Phase k logit = sum_c W[k, c] * x[c] + b[k] per pixel (a 1x1 convolution)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        super().__init__()
        self.conv = nn.Conv2d(weight.shape[1], weight.shape[0], 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(weight)[..., None, None])
            self.conv.bias.copy_(torch.from_numpy(bias))

    def forward(self, x):
        return self.conv(x)


class FixedConv(nn.Module):
    """A fixed 3x3 convolution (zero padding): tile borders see zeros, the interior does not."""

    def __init__(self, context: int, n_phases: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(context, n_phases, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 2)
            self.conv.bias.copy_(-self.conv.weight.sum((1, 2, 3)) / 2)  # phases vary with x

    def forward(self, x):
        return self.conv(x)


def _model(network: nn.Module, context: int, n_phases: int = 3) -> InMemoryModel:
    card = ModelCard(
        PhaseSet.from_names([f"p{i}" for i in range(n_phases)]),
        context=context,
        architecture=UNetConfig(in_channels=context, n_phases=n_phases, depth=2),
    )
    return InMemoryModel(network.eval(), card)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    rng = np.random.default_rng(3)
    smooth = rng.random(SHAPE).cumsum(0).cumsum(1).cumsum(2)  # structure on every scale
    return (smooth / smooth.max() * 60000 + rng.integers(0, 5000, SHAPE)).astype(np.uint16)


def _run(image, model, **options):
    options = {
        "tile": 32,
        "batch_size": 16,
        "probabilities": True,
        "uncertainty": "entropy",
        **options,
    }
    return segment(image, SegmentConfig(model=model, **options))


def _assert_same(chunked, single):
    np.testing.assert_array_equal(chunked.labels, single.labels)
    np.testing.assert_array_equal(chunked.probabilities, single.probabilities)
    np.testing.assert_array_equal(chunked.uncertainty, single.uncertainty)


@pytest.mark.parametrize(
    ("context", "axis"),
    [(1, "z"), (3, "z"), (5, "z"), (1, "y"), (3, "y"), (5, "y"), (1, "x"), (3, "x"), (5, "x")],
)
def test_chunked_equals_single_pass(volume, context, axis):
    model = _model(FixedConv(context, 3), context)
    single = _run(volume, model, axis=axis, block_shape=SHAPE, cluster=ClusterOptions("sync"))
    chunked = _run(da.from_array(volume, chunks=UNEVEN), model, axis=axis, block_shape=BLOCKS)
    _assert_same(chunked, single)
    counts = np.bincount(single.labels.ravel(), minlength=4)
    assert counts[0] == 0 and (counts[1:] > 0).all(), "every phase appears"


@pytest.mark.parametrize("context", [1, 3])
def test_triplanar_chunked_equals_single_pass(volume, context):
    model = _model(FixedConv(context, 3, seed=1), context)
    single = _run(volume, model, triplanar=True, block_shape=SHAPE, cluster=ClusterOptions("sync"))
    chunked = _run(
        da.from_array(volume, chunks=UNEVEN), model, triplanar=True, block_shape=(13, 29, 16)
    )
    _assert_same(chunked, single)
    assert single.axis == "zyx"


def _reference(volume, weight, bias, axis):
    """Closed-form probabilities of the Affine model, context slices mirrored at the ends."""
    x = normalize(volume, estimate_intensity_range(volume))
    x = np.moveaxis(x, axis, 0)
    half = weight.shape[1] // 2
    padded = np.pad(x, ((half, half), (0, 0), (0, 0)), mode="reflect")
    channels = np.stack([padded[c : c + x.shape[0]] for c in range(weight.shape[1])])
    logits = np.einsum("kc,c...->k...", weight.astype(np.float64), channels)
    logits += bias[:, None, None, None]
    e = np.exp(logits - logits.max(0))
    return np.moveaxis(e / e.sum(0), 1, axis + 1), logits


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_affine_model_gives_its_closed_form_with_mirrored_context(volume, axis):
    weight = np.array([[4, -9, 2], [-3, 1, -3], [1, 7, 0.5]], np.float32)
    bias = np.array([1, 0.5, -2], np.float32)
    got = _run(
        da.from_array(volume, chunks=UNEVEN),
        _model(Affine(weight, bias), 3),
        axis="zyx"[axis],
        block_shape=BLOCKS,
    )
    probabilities, logits = _reference(volume, weight, bias, axis)
    np.testing.assert_allclose(got.probabilities, np.rint(probabilities * 255), atol=1)
    top2 = np.sort(np.moveaxis(logits, 1, axis + 1), axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-4  # not a near-tie that float rounding may flip
    assert clear.mean() > 0.99
    expected = probabilities.argmax(0) + 1
    np.testing.assert_array_equal(got.labels[clear], expected[clear])
    assert len(np.unique(got.labels)) == 3


def test_triplanar_averages_the_three_passes(volume):
    weight = np.array([[4, -9, 2], [-3, 1, -3], [1, 7, 0.5]], np.float32)
    bias = np.array([1, 0.5, -2], np.float32)
    got = _run(volume, _model(Affine(weight, bias), 3), triplanar=True, block_shape=BLOCKS)
    mean = sum(_reference(volume, weight, bias, a)[0] for a in range(3)) / 3
    np.testing.assert_allclose(got.probabilities, np.rint(mean * 255), atol=1)
    top2 = np.sort(mean, axis=0)[-2:]
    clear = top2[1] - top2[0] > 1e-5
    np.testing.assert_array_equal(got.labels[clear], mean.argmax(0)[clear] + 1)


@pytest.mark.parametrize("shape", [(3, 10, 13), (1, 1, 7), (4, 5, 70)])
def test_volume_smaller_than_a_tile_is_padded(shape):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, shape).astype(np.uint8)
    context = 3 if shape[0] >= 3 else 1
    model = _model(FixedConv(context, 3), context)
    single = _run(image, model, tile=64, block_shape=shape)
    chunked = _run(image, model, tile=64, block_shape=(1, 3, 4))
    _assert_same(chunked, single)
    assert single.labels.shape == shape and single.labels.min() >= 1


def test_two_dimensional_image_is_one_slice(volume):
    weight, bias = np.array([[6], [0], [-6]], np.float32), np.array([-4, 0, 2], np.float32)
    got = _run(volume[5], _model(Affine(weight, bias), 1))
    probabilities, _ = _reference(volume[5][None], weight, bias, 0)
    assert got.labels.shape == (1, *SHAPE[1:])
    np.testing.assert_allclose(got.probabilities, np.rint(probabilities * 255), atol=1)
    assert len(np.unique(got.labels)) == 3
