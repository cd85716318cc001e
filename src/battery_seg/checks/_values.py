"""Checked values shared by every job: the voxel size and the torch device."""

from __future__ import annotations

import math
from typing import Any

from ..errors import BatterySegError
from ..names import CUDA_INDEX, DEVICES

__all__ = ["DEVICES", "check_device", "check_voxel_size", "resolve_device"]


def check_voxel_size(voxel_size: Any, where: str = "") -> tuple[float, float, float]:
    """One positive number (isotropic) or three ``(dz, dy, dx)``, as three floats.

    >>> check_voxel_size((0.5, 0.25, 0.25))
    (0.5, 0.25, 0.25)
    """
    try:
        values = [float(v) for v in _as_list(voxel_size)]
    except (TypeError, ValueError):
        values = []
    if len(values) == 1:
        values = values * 3
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        place = f" for {where}" if where else ""
        raise BatterySegError(
            f"Invalid voxel size {voxel_size!r}{place}: give one positive number or three "
            "positive numbers (dz, dy, dx) in µm, e.g. voxel_size=(0.5, 0.325, 0.325) or "
            "--voxel-size 0.5 0.325 0.325."
        )
    return (values[0], values[1], values[2])


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (str, bytes)):
        raise TypeError
    try:
        import numpy as np

        return np.asarray(value, dtype=float).ravel().tolist()
    except (TypeError, ValueError):
        raise TypeError from None


def check_device(device: Any) -> str:
    """A device name this package accepts: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (no torch).

    >>> check_device("CUDA:1")
    'cuda:1'
    """
    name = str(device).strip().lower()
    if name not in DEVICES and not CUDA_INDEX.match(name):
        raise BatterySegError(
            f"Unknown device {device!r}; use auto (CUDA when available), cpu, cuda or cuda:N."
        )
    return name


def resolve_device(device: Any, what: str = "") -> str:
    """``auto`` -> ``cuda`` when PyTorch sees a GPU, else ``cpu``; a CUDA device must exist.

    ``what`` (e.g. ``"training"``) names the job in the message.
    """
    import torch

    name = check_device(device)
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        job = f" for {what}" if what else ""
        if not torch.cuda.is_available():
            raise BatterySegError(
                f"Device {name!r} was requested{job}, but PyTorch sees no CUDA GPU on this "
                "machine. Use cpu (or auto), or install a CUDA build of PyTorch."
            )
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise BatterySegError(
                f"Device {name!r} was requested{job}, but this machine has "
                f"{torch.cuda.device_count()} CUDA GPU(s) (cuda:0 ..). Pick one of them."
            )
    return name
