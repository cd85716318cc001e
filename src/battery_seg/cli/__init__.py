"""The ``battery-seg`` command line: one entry point, one module per subcommand.

Each subcommand module defines ``add_parser(subparsers)`` which registers its parser and sets
``func`` to a ``run(args) -> int`` function. User errors (:class:`~battery_seg.BatterySegError`,
missing files, Ctrl-C) are printed as one line without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import BatterySegError

# Order here is the order in --help.
_COMMANDS = ("sample", "info", "segment", "stats", "compare", "masks", "train")

_DESCRIPTION = """\
Segment X-ray / FIB-SEM tomography of battery electrodes into phases (pore, silicon, CBD,
graphite, ...) and measure the microstructure. Every command also works on volumes too big to
open in napari. Run 'battery-seg COMMAND --help' for the options of one command."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="battery-seg",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"._{name}", __name__).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``battery-seg``; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BatterySegError as exc:
        print(f"battery-seg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"battery-seg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"battery-seg {args.command}: interrupted; no output was left half-written.",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
