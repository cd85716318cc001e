"""Names several layers share: axes, devices, backends and the layout of our Zarr stores.

The readers and writers, the checks, the jobs, the command line and the docks all speak of the
same axes, device names and store arrays. They are defined here once, in a module that imports
nothing of ours, so any layer can use them without importing another (and without the import
circles that come from borrowing a name from a layer above).

>>> from battery_seg.names import AXES, DEVICES, LABELS_ARRAY
>>> AXES, DEVICES, LABELS_ARRAY
(('z', 'y', 'x'), ('auto', 'cpu', 'cuda'), '0')
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = [
    "AXES",
    "BACKENDS",
    "CUDA_INDEX",
    "DEVICES",
    "DEVICE_METAVAR",
    "LABELS_ARRAY",
    "OUR_ATTRIBUTES",
    "PARTIAL_SUFFIX",
    "battery_seg_attrs",
]

# The spatial axes of every volume, in array order (Z is the slicing axis by default).
AXES = ("z", "y", "x")

# Where work runs: "auto" picks CUDA when available, else the CPU; "cuda:N" picks a GPU.
DEVICES = ("auto", "cpu", "cuda")
DEVICE_METAVAR = "{auto,cpu,cuda,cuda:N}"
CUDA_INDEX = re.compile(r"^cuda:\d+$")

# How the network runs on the CPU: "auto" uses OpenVINO when installed and it keeps the labels.
BACKENDS = ("auto", "torch", "openvino")

# Our OME-Zarr stores: the level-0 array (the NGFF "datasets" path), the root attribute that
# marks a store as ours (so --overwrite may replace it), and the suffix of a store being written.
LABELS_ARRAY = "0"
OUR_ATTRIBUTES = "battery_seg"
PARTIAL_SUFFIX = ".partial"


def battery_seg_attrs(store: str | Path) -> dict[str, Any] | None:
    """Our ``battery_seg`` root attributes of a Zarr store (v2 or v3), or None if it has none."""
    for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
        file = Path(store) / name
        if file.is_file():
            try:
                attrs = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return None
            attrs = attrs.get(key, {}) if key else attrs
            value = attrs.get(OUR_ATTRIBUTES) if isinstance(attrs, dict) else None
            return value if isinstance(value, dict) else None
    return None
