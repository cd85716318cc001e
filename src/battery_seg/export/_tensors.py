"""What goes into a package besides its description: weights, test tensors and a cover image.

bioimage.io consumers normalise each input tile by its own percentiles (``scale_range``), where
battery-seg uses percentiles of the whole volume; the test output is computed here exactly as a
consumer computes it, so ``bioimageio test`` reproduces it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BatterySegError

if TYPE_CHECKING:
    import torch

    from ..model import ModelCard

__all__ = [
    "EPS",
    "TEST_SIZE",
    "expected_output",
    "halo",
    "min_tile",
    "normalise_tile",
    "save_torchscript",
    "test_tile",
    "write_cover",
]

TEST_SIZE = 128
"""Height and width of the test tile (rounded to what the network accepts)."""
EPS = 1e-6
"""The ``eps`` of bioimage.io's ``scale_range``: ``(x - low) / (high - low + eps)``."""


def halo(card: ModelCard) -> int:
    """Pixels to crop on each side of an output tile for tiling: two cells of the network's
    coarsest grid (32 for depth 4, half the 64-pixel overlap of battery-seg's own 256-pixel
    tiles). Measured with the default model, tiles cropped by 32 pixels agree with a whole-plane
    pass on 99.8 % of the labels (48 pixels: 99.9 %)."""
    return 2 * card.architecture.multiple


def min_tile(card: ModelCard) -> int:
    """The smallest input tile: a multiple of ``2**depth`` with content left inside the halo."""
    return 2 * halo(card) + card.architecture.multiple


def test_tile(sample: Any, card: ModelCard) -> np.ndarray:
    """``(1, context, S, S)`` float32 grey values from the middle of ``sample`` (``(Z, Y, X)``
    or ``(Y, X)``, NumPy or dask; only the slices needed are read): the context slices around
    its middle slice (the nearest one repeated past its ends), its central ``S x S`` window
    (mirrored where the sample is smaller)."""
    volume = sample if sample.ndim == 3 else sample[None]
    depth, height, width = volume.shape
    multiple, reach = card.architecture.multiple, card.context // 2
    if min(height, width) < min_tile(card):
        raise BatterySegError(
            f"The sample image is {height} x {width} pixels, smaller than the model's smallest "
            f"tile ({min_tile(card)} x {min_tile(card)}): its test tensors would be mostly "
            "mirrored copies. Give a larger sample (e.g. the volume the model was trained on) "
            "or leave --sample out for the synthetic one."
        )
    size = max(min_tile(card), min(TEST_SIZE, height, width) // multiple * multiple)
    middle = depth // 2
    planes = np.clip(np.arange(middle - reach, middle + reach + 1), 0, depth - 1)
    y0, x0 = max(0, (height - size) // 2), max(0, (width - size) // 2)
    window = (slice(y0, y0 + size), slice(x0, x0 + size))
    stack = np.stack([np.asarray(volume[int(p)][window]) for p in planes]).astype(np.float32)
    pad = [(0, 0), (0, size - stack.shape[1]), (0, size - stack.shape[2])]
    if pad[1][1] or pad[2][1]:
        stack = np.pad(stack, pad, mode="symmetric")
    if not np.isfinite(stack).all() or np.ptp(stack) == 0:
        raise BatterySegError(
            "The middle of the sample image is constant or holds NaN; give another sample image "
            "(e.g. the volume the model was trained on)."
        )
    return np.ascontiguousarray(stack[None])


def normalise_tile(tile: np.ndarray, card: ModelCard) -> np.ndarray:
    """``tile`` scaled as bioimage.io's ``scale_range`` does, per tile over channels, y and x."""
    norm = card.normalization
    low, high = np.percentile(tile, [norm.low_percentile, norm.high_percentile])
    return ((tile - np.float32(low)) / np.float32(high - low + EPS)).astype(np.float32)


def expected_output(network: torch.nn.Module, tile: np.ndarray, card: ModelCard) -> np.ndarray:
    """What the package's network gives for ``tile`` after the package's preprocessing."""
    import torch

    with torch.inference_mode():
        return network(torch.from_numpy(normalise_tile(tile, card))).numpy()


def save_torchscript(network: torch.nn.Module, tile: np.ndarray, path: Path) -> Path:
    """Trace ``network`` on ``tile`` and save it as TorchScript (what deepImageJ and other
    consumers of bioimage.io models load)."""
    import torch

    with warnings.catch_warnings():
        # torch.jit is deprecated in recent PyTorch, but TorchScript is still the bioimage.io
        # format most consumers read; the U-Net's shape checks become constants in the trace
        # (checked sizes only), which bioimage.io's test at other sizes confirms.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(network, torch.from_numpy(tile))
        traced.save(str(path))
    return path


def write_cover(tile: np.ndarray, probabilities: np.ndarray, card: ModelCard, path: Path) -> Path:
    """A 2:1 PNG: the test tile's middle slice next to its phases in the phases' colours."""
    from PIL import Image

    grey = tile[0, tile.shape[1] // 2]
    low, high = np.percentile(grey, [0.5, 99.5])
    grey = np.clip((grey - low) / max(high - low, 1e-12) * 255, 0, 255).astype(np.uint8)
    colours = np.array([_rgb(p.color) for p in card.phases], dtype=np.uint8)
    phases = colours[probabilities[0].argmax(axis=0)]
    image = np.concatenate([np.repeat(grey[..., None], 3, axis=-1), phases], axis=1)
    zoom = max(1, 256 // image.shape[0])
    image = image.repeat(zoom, axis=0).repeat(zoom, axis=1)
    Image.fromarray(image).save(path)
    return path


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")[:6]
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
