"""Inputs: a named pipe, a device or a socket is never read (it could block); a dataset must be
a 2D to 5D array of numbers."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BatterySegError
from ._text import printable

__all__ = ["check_dataset", "check_regular"]

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_regular(path: str | os.PathLike, what: str = "input") -> None:
    """Refuse an input that exists but is neither a regular file nor a folder.

    Reading a named pipe waits for a writer and a device never ends, so these are refused
    before they are opened (``os.stat`` does not open them).

    >>> check_regular("/dev/null")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    battery_seg.errors.BatterySegError: The input /dev/null is a character device, not a ...
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing or unreadable: the reader's own message names it
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise BatterySegError(
        f"The {what} {printable(Path(path))} is {kind}, not a regular file or a folder; give "
        "the path of a file or folder on disk."
    )


def check_dataset(shape: tuple[int, ...], dtype: Any, where: str) -> None:
    """Refuse a dataset that is not a 2D to 5D array of numbers (integers, floats or booleans):
    a scalar, a 1D list, a 6D array, text, complex numbers or records.

    >>> check_dataset((4, 64, 64), "uint16", "scan.h5:/data")
    """
    kind = np.dtype(dtype).kind
    if not 2 <= len(shape) <= 5:
        raise BatterySegError(
            f"{printable(where)} holds a {len(shape)}D dataset (shape {tuple(shape)}); battery-seg "
            "reads 2D to 5D arrays of numbers (a slice, a Z, Y, X volume, with channels and time "
            "points). Point to the image dataset."
        )
    if kind not in "biuf":
        what = {"c": "complex numbers", "S": "text", "U": "text", "O": "text or objects"}
        raise BatterySegError(
            f"{printable(where)} holds {what.get(kind, 'records')} ({np.dtype(dtype)}), not grey "
            "values or labels; point to the image dataset, or save it as integers or floats."
        )
