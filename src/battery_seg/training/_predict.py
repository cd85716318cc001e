"""Plain whole-plane prediction for validation and benchmarks (no tiling, in memory).

For large volumes use :func:`battery_seg.inference.segment`, which tiles, blends and writes
chunk by chunk. Here each plane is reflect-padded to the network's ``2**depth`` multiple and
predicted whole.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional

from ..model import ModelCard, UNet, estimate_intensity_range, normalize
from ._samples import mirror_index

__all__ = ["predict_planes", "predict_slice", "predict_volume"]


def predict_planes(
    model: UNet,
    planes: np.ndarray,
    *,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    tta: bool = False,
) -> np.ndarray:
    """Per-phase probabilities ``(N, K, H, W)`` of normalised ``(N, context, H, W)`` stacks.

    Examples
    --------
    >>> from battery_seg.model import UNetConfig
    >>> net = UNet(UNetConfig(in_channels=1, n_phases=3, base_channels=4, depth=2))
    >>> predict_planes(net, np.zeros((2, 1, 10, 13), np.float32)).shape
    (2, 3, 10, 13)
    """
    multiple = model.config.multiple
    height, width = planes.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, len(planes), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(planes[start : start + batch_size]))
                x = x.to(device=device, dtype=torch.float32)
                if pad_h or pad_w:
                    mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "replicate"
                    x = functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
                x = x.contiguous(memory_format=torch.channels_last)
                probability = _forward(model, x, tta)[..., :height, :width]
                out.append(probability.float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out)


def predict_slice(model: UNet, card: ModelCard, volume, index: int, intensity=None) -> np.ndarray:
    """Phase labels (1..K, uint8) of slice ``index`` (axis 0) of ``volume``: a quick look.

    Only the slice and its context neighbours (mirrored at the ends) are read, so a lazy volume
    stays lazy; ``intensity`` (an :class:`~battery_seg.model.IntensityRange`) defaults to one
    estimated from those slices. The prediction runs where the model's weights are.

    Examples
    --------
    >>> from battery_seg.model import UNetConfig
    >>> from battery_seg.phases import PhaseSet
    >>> net = UNetConfig(in_channels=1, n_phases=2, base_channels=4, depth=2)  # a 2D model
    >>> card = ModelCard(PhaseSet.parse("pore,solid"), context=1, architecture=net)
    >>> labels = predict_slice(card.build(), card, np.random.default_rng(0).random((4, 16, 12)), 3)
    >>> labels.shape, labels.dtype
    ((16, 12), dtype('uint8'))
    """
    radius = card.context // 2
    around = mirror_index(np.arange(index - radius, index + radius + 1), volume.shape[0])
    planes = np.stack([np.asarray(volume[int(i)]) for i in around])
    if intensity is None:
        intensity = estimate_intensity_range(planes, card.normalization)
    device = next(model.parameters()).device
    probability = predict_planes(model, normalize(planes, intensity)[None], device=device)
    return probability[0].argmax(axis=0).astype(np.uint8) + 1


def _forward(model: UNet, x: torch.Tensor, tta: bool) -> torch.Tensor:
    """Softmax probabilities; with ``tta`` the mean over the 8 rotations / flips of the plane."""
    if not tta:
        return torch.softmax(model(x), dim=1)
    total = 0
    for flip in (False, True):
        view = x.flip(-1) if flip else x
        for turns in range(4):
            p = torch.softmax(model(torch.rot90(view, turns, dims=(-2, -1))), dim=1)
            p = torch.rot90(p, -turns, dims=(-2, -1))
            total = total + (p.flip(-1) if flip else p)
    return total / 8


def predict_volume(
    model: UNet,
    card: ModelCard,
    volume,
    *,
    axis: int = 0,
    batch_size: int = 4,
    device: str = "cpu",
    tta: bool = False,
) -> np.ndarray:
    """Phase labels (1..K, uint8) of every slice of ``volume`` along ``axis``.

    ``volume`` (NumPy or dask, 2D or 3D) is normalised with its own intensity range, as
    inference does; context slices are mirrored at the first and last slice.

    Examples
    --------
    >>> from battery_seg.model import UNetConfig
    >>> from battery_seg.phases import PhaseSet
    >>> card = ModelCard(PhaseSet.parse("nmc"), context=3,
    ...                  architecture=UNetConfig(in_channels=3, n_phases=3, base_channels=4,
    ...                                          depth=2))
    >>> volume = np.random.default_rng(0).random((4, 16, 16))
    >>> predict_volume(card.build(), card, volume).shape
    (4, 16, 16)
    """
    squeeze = volume.ndim == 2
    data = np.asarray(volume)[None] if squeeze else np.asarray(volume)
    intensity = estimate_intensity_range(data, card.normalization)
    data = np.moveaxis(normalize(data, intensity), axis, 0)
    radius = card.context // 2
    labels = np.empty(data.shape, np.uint8)
    for start in range(0, data.shape[0], batch_size):
        indices = np.arange(start, min(start + batch_size, data.shape[0]))
        around = indices[:, None] + np.arange(-radius, radius + 1)[None]
        stacks = data[mirror_index(around, data.shape[0])]  # (n, context, H, W)
        probability = predict_planes(model, stacks, batch_size=batch_size, device=device, tta=tta)
        labels[indices] = probability.argmax(axis=1).astype(np.uint8) + 1
    labels = np.moveaxis(labels, 0, axis)
    return labels[0] if squeeze else labels
