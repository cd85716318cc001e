"""What every command that reads a volume shares: ``--channel`` / ``--timepoint``, opening the
input, and the output guard run before any work starts."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["add_selection_arguments", "check_outputs", "input_file", "open_input"]


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--channel N`` and ``--timepoint N`` for 4D/5D and RGB stacks."""
    parser.add_argument(
        "--channel", type=int, metavar="N", help="channel (or RGB colour) of a 4D/5D or RGB stack"
    )
    parser.add_argument("--timepoint", type=int, metavar="N", help="time point of a 4D/5D stack")


def open_input(address: str | Path, args: argparse.Namespace, **kwargs: Any):
    """Open ``address`` lazily with the ``--channel`` / ``--timepoint`` of ``args``."""
    from ..io import open_volume

    return open_volume(
        address,
        channel=getattr(args, "channel", None),
        timepoint=getattr(args, "timepoint", None),
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
