"""Size checks before allocation: memory, disk, and shapes that files declare.

Estimates here are lower bounds of what an operation needs, so a refusal means it cannot fit,
never that a generous guess was exceeded; each refusal names the figure and the fix.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import BatterySegError

__all__ = [
    "MAX_CHUNKS",
    "available_memory",
    "check_declared_shape",
    "check_disk",
    "check_memory",
    "format_bytes",
    "network_bytes",
]

#: Most dask chunks a volume may have: each graph operation costs ~30 µs per chunk, so 200,000
#: chunks (12 TiB in 64 MiB slabs) keep opening and planning within seconds.
MAX_CHUNKS = 200_000


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``.

    >>> format_bytes(3 * 2**40)
    '3.0 TiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # pragma: no cover


def available_memory() -> int:
    """Bytes of memory available to a new allocation on this machine (psutil)."""
    import psutil

    return int(psutil.virtual_memory().available)


def check_memory(nbytes: float, what: str, fix: str = "") -> None:
    """Refuse ``what`` when it needs more than the memory available now.

    >>> check_memory(2**60, "the labels of a 1 EiB volume")  # doctest: +SKIP
    Traceback (most recent call last):
    BatterySegError: the labels of a 1 EiB volume would need 1024.0 PiB of memory, ...
    """
    have = available_memory()
    if nbytes > have:
        raise BatterySegError(
            f"{what[:1].upper()}{what[1:]} would need {format_bytes(nbytes)} of memory, but "
            f"{format_bytes(have)} is available. {fix}".rstrip()
        )


def check_disk(path: str | os.PathLike, nbytes: float, what: str, fix: str = "") -> None:
    """Refuse writing ``nbytes`` (uncompressed) at ``path`` when its disk has less space free."""
    folder = Path(path).parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # the write itself will say what is wrong with the folder
    if nbytes > free:
        raise BatterySegError(
            f"{what[:1].upper()}{what[1:]} would need {format_bytes(nbytes)} on disk, but "
            f"{folder} has {format_bytes(free)} free. "
            f"{fix or 'Free some space or write to another disk.'}"
        )


def check_declared_shape(
    shape: Sequence[int], dtype: Any, chunks: Sequence[int], where: str
) -> None:
    """Refuse an array whose declared shape is too large to plan (a damaged or hostile header).

    A few-KB Zarr or HDF5 file can declare an exabyte; building a dask graph of its chunks would
    hang long before any byte is read.
    """
    import numpy as np

    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise BatterySegError(f"{where} declares a negative size {shape}: the file is damaged.")
    count = math.prod(math.ceil(n / max(1, int(c))) for n, c in zip(shape, chunks, strict=True))
    if count > MAX_CHUNKS:
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        raise BatterySegError(
            f"{where} declares an array of shape {shape} ({format_bytes(nbytes)}), which makes "
            f"{count:,} chunks to plan; at most {MAX_CHUNKS:,} are supported. If the file is "
            "right, crop or split the volume; otherwise its header is damaged (it declares a "
            "shape its data do not have)."
        )


def network_bytes(
    base_channels: int, height: int, width: int, batch: int, context: int, *, training: bool
) -> int:
    """A lower bound of a U-Net's float32 memory for ``batch`` tiles of ``height x width``.

    The full-resolution level alone holds the input and at least two activation maps of
    ``base_channels`` (inference); training keeps them, a concatenation and their gradients.
    """
    per_pixel = context + (4 if training else 2) * base_channels
    return 4 * (2 if training else 1) * per_pixel * int(height) * int(width) * int(batch)
