"""The checks every command, widget and API call shares: one home for each rule.

* **Outputs** (:func:`check_output`, :func:`output_lock`): an output is never an input (the same
  file, a hard or symbolic link to it, a path inside an input store or folder, or a folder that
  holds an input); ``overwrite`` replaces only what this tool writes (our OME-Zarr store, or a
  file of the output's kind), never a foreign folder; one run at a time writes an output.
* **Sizes** (:func:`check_memory`, :func:`check_disk`, :func:`check_declared_shape`): what a
  volume, block, tile batch, patch batch or table needs, checked before it is allocated, with a
  refusal that names the figure.
* **Files** (:func:`check_regular`, :func:`check_dataset`): an input that is a named pipe, a
  device or a socket is refused before it is opened; a dataset must be a 2D-5D numeric array.
* **Values** (:func:`check_voxel_size`, :func:`check_device`, :func:`resolve_device`).
* **Slices** (:func:`unrelated_slices`): a stack of unrelated images is not a tomogram, so a
  model that reads neighbouring slices would mix them.
* **Text** (:func:`printable`, :func:`clean_text`, :func:`csv_safe`, :func:`os_error_message`):
  names from files are safe on a terminal and in a spreadsheet, text written into a package
  carries no control characters; an ``OSError`` becomes one line naming the file.

Every refusal is a :class:`~battery_seg.errors.BatterySegError` whose message names the problem
and the fix. This package imports nothing heavy (NumPy; torch only inside :func:`resolve_device`).

Examples
--------
>>> from battery_seg.checks import check_voxel_size, printable
>>> check_voxel_size(0.5)
(0.5, 0.5, 0.5)
>>> printable("pore\\x1b[31m")
'pore\\\\x1b[31m'
"""

from __future__ import annotations

from ._files import check_dataset, check_regular
from ._output import (
    check_not_input,
    check_output,
    forget_input,
    output_kind,
    output_lock,
    register_input,
)
from ._sizes import (
    MAX_CHUNKS,
    available_memory,
    check_declared_shape,
    check_disk,
    check_memory,
    format_bytes,
    network_bytes,
)
from ._slices import UNRELATED, correlation_evidence, slice_correlation, unrelated_slices
from ._text import clean_text, csv_safe, os_error_message, printable
from ._values import DEVICES, check_device, check_voxel_size, resolve_device

__all__ = [
    "DEVICES",
    "MAX_CHUNKS",
    "UNRELATED",
    "available_memory",
    "check_dataset",
    "check_declared_shape",
    "check_device",
    "check_disk",
    "check_memory",
    "check_not_input",
    "check_output",
    "check_regular",
    "check_voxel_size",
    "clean_text",
    "correlation_evidence",
    "csv_safe",
    "forget_input",
    "format_bytes",
    "network_bytes",
    "os_error_message",
    "output_kind",
    "output_lock",
    "printable",
    "register_input",
    "resolve_device",
    "slice_correlation",
    "unrelated_slices",
]
