"""Batch augmentation in torch, vectorised over the batch so it stays cheap on a CPU.

Geometry (applied to images and painted labels alike): the 8 in-plane 90° rotations / flips,
and for some patches a small rotation with a mild zoom (labels resampled nearest-neighbour;
voxels coming from outside the patch become unpainted). Intensity (images only, identical for
all context slices of a patch): contrast, brightness, gamma, Gaussian noise and blur.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional

__all__ = ["Augmentation", "augment", "augment_geometry", "augment_intensity"]


@dataclass(frozen=True)
class Augmentation:
    """Strengths of the random transforms (each drawn per patch)."""

    rotate_degrees: float = 20.0
    rotate_probability: float = 0.5
    zoom: float = 0.15
    contrast: float = 0.25
    brightness: float = 0.1
    gamma: float = 0.3
    noise: float = 0.04
    blur_probability: float = 0.3


def augment(
    images: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    settings: Augmentation | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly transform a batch of ``(N, C, P, P)`` images and ``(N, P, P)`` labels.

    Examples
    --------
    >>> images, labels = torch.rand(4, 3, 32, 32), torch.randint(0, 3, (4, 32, 32))
    >>> out_images, out_labels = augment(images, labels, torch.Generator().manual_seed(0))
    >>> out_images.shape, out_labels.shape, out_labels.dtype
    (torch.Size([4, 3, 32, 32]), torch.Size([4, 32, 32]), torch.int64)
    """
    settings = settings or Augmentation()
    images, labels = augment_geometry(images, labels, generator, settings)
    return augment_intensity(images, generator, settings), labels


def augment_geometry(images, labels, generator, settings: Augmentation | None = None):
    """The geometric part of :func:`augment` (images and labels alike)."""
    settings = settings or Augmentation()
    images, labels = _dihedral(images, labels, generator)
    return _rotate_zoom(images, labels, generator, settings)


def augment_intensity(images, generator, settings: Augmentation | None = None):
    """The intensity part of :func:`augment` (images only)."""
    return _intensity(images, generator, settings or Augmentation())


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _dihedral(images, labels, generator):
    """One of the 8 rotations / reflections of the square per patch."""
    n = images.shape[0]
    choice = torch.randint(0, 8, (n,), generator=generator)
    images, labels = images.clone(), labels.clone()
    for code in range(1, 8):
        idx = torch.nonzero(choice == code).flatten()
        if idx.numel() == 0:
            continue
        turns, flip = code % 4, code >= 4
        image, label = images[idx], labels[idx]
        if flip:
            image, label = image.flip(-1), label.flip(-1)
        images[idx] = torch.rot90(image, turns, dims=(-2, -1))
        labels[idx] = torch.rot90(label, turns, dims=(-2, -1))
    return images, labels


def _rotate_zoom(images, labels, generator, settings: Augmentation):
    """Small rotation and zoom for a random subset of patches."""
    n = images.shape[0]
    chosen = torch.nonzero(torch.rand(n, generator=generator) < settings.rotate_probability)
    idx = chosen.flatten()
    if idx.numel() == 0 or (settings.rotate_degrees == 0 and settings.zoom == 0):
        return images, labels
    m = idx.numel()
    angle = _uniform(m, -settings.rotate_degrees, settings.rotate_degrees, generator)
    angle = angle * math.pi / 180
    scale = torch.exp(_uniform(m, -settings.zoom, settings.zoom, generator))
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [torch.stack([cos, -sin, torch.zeros(m)], 1), torch.stack([sin, cos, torch.zeros(m)], 1)],
        1,
    ).to(images.dtype)
    grid = functional.affine_grid(theta, [m, 1, *images.shape[-2:]], align_corners=False)
    images, labels = images.clone(), labels.clone()
    images[idx] = functional.grid_sample(
        images[idx], grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    moved = functional.grid_sample(
        labels[idx].unsqueeze(1).to(images.dtype),
        grid,
        mode="nearest",
        padding_mode="zeros",
        align_corners=False,
    )
    labels[idx] = moved.squeeze(1).round().to(labels.dtype)
    return images, labels


def _intensity(images, generator, settings: Augmentation) -> torch.Tensor:
    """Contrast, brightness, gamma, blur and noise, per patch."""
    n = images.shape[0]
    shape = (n, 1, 1, 1)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    contrast = torch.exp(_uniform(n, -settings.contrast, settings.contrast, generator))
    images = (images - mean) * contrast.view(shape) + mean
    images = images + _uniform(n, -settings.brightness, settings.brightness, generator).view(shape)
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    span = (images.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-6)
    gamma = torch.exp(_uniform(n, -settings.gamma, settings.gamma, generator)).view(shape)
    images = low + span * ((images - low) / span).clamp(0, 1) ** gamma
    blur = (torch.rand(n, generator=generator) < settings.blur_probability).to(images.dtype)
    amount = blur * torch.rand(n, generator=generator)
    if bool(amount.any()):
        images = images + amount.view(shape) * (_blur(images) - images)
    sigma = _uniform(n, 0, settings.noise, generator).view(shape)
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    return images + sigma * noise


def _blur(images: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur (sigma 1 pixel) of every channel, reflect-padded."""
    taps = torch.tensor([0.054, 0.244, 0.403, 0.244, 0.054], dtype=images.dtype)
    channels = images.shape[1]
    padded = functional.pad(images, (2, 2, 2, 2), mode="reflect")
    horizontal = taps.view(1, 1, 1, 5).repeat(channels, 1, 1, 1)
    vertical = taps.view(1, 1, 5, 1).repeat(channels, 1, 1, 1)
    out = functional.conv2d(padded, horizontal, groups=channels)
    return functional.conv2d(out, vertical, groups=channels)
