"""Classic per-pixel filter features (ilastik's kind) as fixed torch convolutions.

For each scale ``sigma``: the Gaussian-smoothed intensity, its gradient magnitude, and the two
eigenvalues of its Hessian (their sum is the Laplacian of Gaussian); plus the intensity itself.
They are computed from a network's normalised input (the centre slice of its context), inside
the network, so a live model that reads them stays one saved, exportable network (the kernels
are rebuilt from the sigmas, never stored).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

__all__ = ["FILTER_SIGMAS", "FilterFeatures", "filter_count"]

FILTER_SIGMAS = (1.0, 2.0, 4.0)  # pixels


def filter_count(sigmas: tuple[float, ...] = FILTER_SIGMAS) -> int:
    """Channels of :class:`FilterFeatures`: the intensity and four per scale."""
    return 1 + 4 * len(sigmas)


def _kernels(sigma: float) -> torch.Tensor:
    """``(3, 1, L)`` 1D Gaussian and its first and second derivatives, truncated at 3 sigma."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    first = -x / sigma**2 * g
    second = (x**2 / sigma**4 - 1 / sigma**2) * g
    second = second - second.mean()  # no response to a constant
    return torch.stack([g, first, second])[:, None, :]


class FilterFeatures(nn.Module):
    """``(N, filter_count, H, W)`` filter responses of ``x[:, centre]`` (borders replicated).

    Examples
    --------
    >>> FilterFeatures()(torch.zeros(2, 3, 32, 40)).shape
    torch.Size([2, 13, 32, 40])
    """

    def __init__(self, sigmas: tuple[float, ...] = FILTER_SIGMAS) -> None:
        super().__init__()
        self.sigmas = tuple(float(s) for s in sigmas)
        for i, sigma in enumerate(self.sigmas):
            self.register_buffer(f"kernels{i}", _kernels(sigma), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = x[:, x.shape[1] // 2 : x.shape[1] // 2 + 1]  # (N, 1, H, W)
        maps = [image]
        for i in range(len(self.sigmas)):
            kernels = getattr(self, f"kernels{i}")
            radius = kernels.shape[-1] // 2
            padded = functional.pad(image, (radius,) * 4, mode="replicate")
            rows = functional.conv2d(padded, kernels[:, :, :, None])  # (N, 3, H, W + 2r)
            g_y, d_y, dd_y = rows[:, 0:1], rows[:, 1:2], rows[:, 2:3]
            smooth = functional.conv2d(g_y, kernels[0:1, :, None, :])
            gx = functional.conv2d(g_y, kernels[1:2, :, None, :])
            gxx = functional.conv2d(g_y, kernels[2:3, :, None, :])
            gy = functional.conv2d(d_y, kernels[0:1, :, None, :])
            gyy = functional.conv2d(dd_y, kernels[0:1, :, None, :])
            gxy = functional.conv2d(d_y, kernels[1:2, :, None, :])
            half_trace, half_gap = (gxx + gyy) / 2, (gxx - gyy) / 2
            root = torch.sqrt(half_gap**2 + gxy**2 + 1e-12)
            gradient = torch.sqrt(gx**2 + gy**2 + 1e-12)
            maps += [smooth, gradient, half_trace + root, half_trace - root]
        return torch.cat(maps, dim=1)
