"""What every command that reads a volume shares: ``--channel`` / ``--timepoint`` / ``--axes``,
opening the input, and the output guard run before any work starts."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["add_selection_arguments", "check_outputs", "input_file", "open_input"]


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--channel N`` and ``--timepoint N`` for 4D/5D and RGB stacks, ``--axes`` to rename axes."""
    parser.add_argument(
        "--channel", type=int, metavar="N", help="channel (or RGB colour) of a 4D/5D or RGB stack"
    )
    parser.add_argument("--timepoint", type=int, metavar="N", help="time point of a 4D/5D stack")
    parser.add_argument(
        "--axes",
        metavar="AXES",
        help="how the file's axes are read, one letter per axis in the file's order: Z, Y, X, "
        "C (channel), T (time), S (colour); e.g. ZYX for a 3D stack saved for ImageJ as "
        "channels or a 3-slice stack taken for an RGB image",
    )


def open_input(address: str | Path, args: argparse.Namespace, **kwargs: Any):
    """Open ``address`` lazily with the ``--channel`` / ``--timepoint`` / ``--axes`` of ``args``."""
    from ..io import open_volume

    return open_volume(
        address,
        channel=getattr(args, "channel", None),
        timepoint=getattr(args, "timepoint", None),
        axes=getattr(args, "axes", None),
        **kwargs,
    )


def input_file(address: str | Path) -> Path:
    """The file or folder of a volume address (``scan.h5:/data`` -> ``scan.h5``)."""
    from ..io._volume import split_address

    return split_address(address)[0]


def check_outputs(
    outputs: Iterable[tuple[Path | None, str]], overwrite: bool, inputs: Iterable[Any]
) -> None:
    """The output guard for each ``(path, kind)`` given, before any work starts."""
    from ..checks import check_output

    sources = [input_file(p) for p in inputs if p is not None]
    for path, kind in outputs:
        if path is not None:
            check_output(path, overwrite=overwrite, kind=kind, inputs=sources)
