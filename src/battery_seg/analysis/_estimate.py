"""Time and memory of a TauFactor solve, estimated before it starts, and the limits on them.

Iterations grow with the length along the transport axis and with the tortuosity: measured 300
for a 128-layer NMC pore network, 700 for the 256 layers of TauFactor's NMC electrode, 800 and
900 for the pore and CBD of the 128^3 synthetic anode, and 600, 800 and 1200 for the pore of the
tiled anode at 64^3, 128^3 and 192^3; the estimate takes ``200 + 3.5 per layer`` (rounded up to
a check of 100): 500, 700 and 900 for the tiled anode (0.75x to 0.88x of those tortuous
networks, tau 4.5 to 4.8), 1100 for the 256 NMC layers (1.6x) and 700 for the 128 (2.3x: that
pore is much straighter). Each iteration costs a fixed ~2 ms on the CPU plus a constant per voxel
and device (with the buffered sweeps of ``_taufactor.py``: 2.5 ms per iteration at 64^3, 66 ms at
256^3 on 2 quiet cores), and every solve re-estimates its time from its own first chunks of
iterations (and is stopped there if that is above the limit). Peak memory is about 72 bytes per
voxel on the CPU (measured at 256^3: 63 bytes above the mask, TauFactor's own solver and ours
alike). ``docs/analysis_speed.md`` has the estimates against measured solves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BatterySegError
from ._config import axis_index

__all__ = [
    "SECONDS_PER_VOXEL_ITERATION",
    "TortuosityEstimate",
    "check_limits",
    "estimate_tortuosity",
    "fitting_roi",
    "resolve_device",
]

_CHECK_EVERY = 100  # TauFactor checks convergence every 100 iterations
_ITERATIONS_PER_LAYER = 3.5
_ITERATIONS_FIXED = 200
_BYTES_PER_VOXEL = {"cpu": 72, "cuda": 40}  # peak, measured on 128^3-256^3 (see bench)
# Seconds per voxel and iteration before a solve has run (the prior estimate); measured 2.6-4 ns
# on 128^3-256^3 with 2 quiet CPU cores, the buffered sweeps (5 ns leaves room for a busy
# machine). The first 100 iterations of every solve refine it.
SECONDS_PER_VOXEL_ITERATION = {"cpu": 5e-9, "cuda": 0.5e-9}
# Seconds per iteration whatever the size (measured on the CPU only: 2.5 ms per iteration at
# 64^3, of which ~1 ms are the voxels); part of a measured rate, so only the prior adds it.
_SECONDS_PER_ITERATION = {"cpu": 2e-3, "cuda": 0.0}


@dataclass(frozen=True)
class TortuosityEstimate:
    """Expected iterations, seconds and peak memory of one TauFactor solve."""

    voxels: int
    iterations: int
    seconds: float
    memory_bytes: int
    device: str

    def describe(self) -> str:
        return (
            f"about {_duration(self.seconds)} and {self.memory_bytes / 1e9:.2f} GB on "
            f"{self.device} ({self.voxels:,} voxels, ~{self.iterations} iterations)"
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def resolve_device(device: str = "auto") -> str:
    """``"cuda"`` when asked for (or ``auto`` and present), else ``"cpu"``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise BatterySegError(
            "CUDA was requested for the tortuosity solve but no CUDA GPU is available; "
            "use --device cpu (or auto)."
        )
    return str(device)


def estimate_tortuosity(
    shape: Sequence[int],
    axis: str | int = 0,
    device: str = "cpu",
    seconds_per_voxel_iteration: float | None = None,
) -> TortuosityEstimate:
    """Estimate time and peak memory of a TauFactor solve on a mask of ``shape``.

    ``seconds_per_voxel_iteration`` defaults to the device's prior
    (:data:`SECONDS_PER_VOXEL_ITERATION`); a running solve passes its measured rate.

    Examples
    --------
    >>> estimate = estimate_tortuosity((64, 64, 64), "z", "cpu")
    >>> estimate.iterations, estimate.memory_bytes
    (500, 18874368)
    """
    voxels = int(np.prod(shape))
    length = int(shape[axis_index(axis)])
    layers = _ITERATIONS_FIXED + _ITERATIONS_PER_LAYER * length
    iterations = int(math.ceil(layers / _CHECK_EVERY) * _CHECK_EVERY)
    key = device.split(":")[0] if device.split(":")[0] in _BYTES_PER_VOXEL else "cpu"
    if seconds_per_voxel_iteration is None:  # the prior: per voxel and fixed per iteration
        each = voxels * SECONDS_PER_VOXEL_ITERATION[key] + _SECONDS_PER_ITERATION[key]
    else:  # measured on this solve: the fixed part is in it
        each = voxels * seconds_per_voxel_iteration
    memory = _BYTES_PER_VOXEL[key] * voxels
    return TortuosityEstimate(voxels, iterations, iterations * each, memory, device)


def _available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def check_limits(
    estimate: TortuosityEstimate,
    *,
    max_seconds: float | None,
    max_memory_bytes: int | None,
    force: bool,
    what: str,
    region: str = "",
) -> None:
    """Refuse a solve estimated above the limits unless ``force``.

    ``region`` names a region that fits (see :func:`fitting_roi`), for the message.
    """
    if force:
        return
    memory_limit = max_memory_bytes if max_memory_bytes is not None else _available_memory() // 2
    too_slow = max_seconds is not None and estimate.seconds > max_seconds
    too_big = estimate.memory_bytes > memory_limit
    if too_slow or too_big:
        limits = f"{_duration(max_seconds or 0)} / {memory_limit / 1e9:.2f} GB"
        raise BatterySegError(
            f"The tortuosity solve of {what} would take {estimate.describe()}, above the limit "
            f"({limits}). To go ahead anyway pass --force (force=True, or tick 'run anyway' in "
            "the widget); or use a CUDA GPU (--device cuda), or analyse a smaller region "
            f"(--roi{' ' + region if region else ''})."
        )


def fitting_roi(
    shape: Sequence[int],
    axis: int,
    device: str,
    *,
    max_seconds: float | None,
    max_memory_bytes: int | None,
    origin: Sequence[int] = (0, 0, 0),
) -> str:
    """The largest centred box, whole along ``axis``, whose solve fits the limits (``--roi``).

    Time and memory grow with the voxels at a fixed length along the axis, so the two other
    edges shrink by the square root of the excess. ``origin`` offsets the box (an outer ROI).

    Examples
    --------
    >>> fitting_roi((100, 400, 400), 0, "cpu", max_seconds=None, max_memory_bytes=72 * 10**6)
    '0:100,150:250,150:250'
    """
    estimate = estimate_tortuosity(shape, axis, device)
    memory_limit = max_memory_bytes if max_memory_bytes is not None else _available_memory() // 2
    scale = memory_limit / estimate.memory_bytes
    if max_seconds is not None:
        scale = min(scale, max_seconds / estimate.seconds)
    ranges = []
    for index, (size, start) in enumerate(zip(shape, origin, strict=True)):
        edge = size if index == axis else max(1, min(size, int(size * min(scale, 1.0) ** 0.5)))
        low = start + (size - edge) // 2
        ranges.append(f"{low}:{low + edge}")
    return ",".join(ranges)
