"""The ``battery-seg`` command line: one entry point, one module per subcommand.

Each subcommand module defines ``add_parser(subparsers)`` which registers its parser and sets
``func`` to a ``run(args) -> int`` function, and may set ``interrupted`` to a function of ``args``
saying what Ctrl-C left behind. User errors (:class:`~battery_seg.BatterySegError`, OS errors,
Ctrl-C) are printed as one line without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..checks import os_error_message, printable
from ..errors import BatterySegError

# Order here is the order in --help.
_COMMANDS = ("sample", "info", "segment", "stats", "compare", "masks", "train", "export")

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
    """Entry point of ``battery-seg``; returns the process exit status.

    Every failure a user can cause ends here as one line on stderr, never a traceback: our own
    errors, OS errors (disk full, read-only, permission; the file named), memory exhaustion and
    Ctrl-C (which says what was kept and how to continue). Anything else is a bug: one line
    too, with ``BATTERY_SEG_TRACEBACK=1`` to show where it happened.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    name = f"battery-seg {args.command}"
    try:
        return int(args.func(args) or 0)
    except BatterySegError as exc:
        return _fail(name, str(exc))
    except OSError as exc:
        return _fail(name, os_error_message(exc, getattr(args, "output", None)))
    except MemoryError:
        return _fail(
            name,
            "ran out of memory. Analyse a region (--roi), use smaller blocks or tiles, or run on "
            "a machine with more memory.",
        )
    except KeyboardInterrupt:
        note = getattr(args, "interrupted", None)
        print(f"{name}: interrupted; {note(args) if note else _NOTHING_LEFT}", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("BATTERY_SEG_TRACEBACK"):
            raise
        detail = printable(f"{type(exc).__name__}: {exc}", limit=300)
        return _fail(
            name,
            f"internal error, please report it: {detail} (set BATTERY_SEG_TRACEBACK=1 to see "
            "where it happened)",
            status=3,
        )


_NOTHING_LEFT = "no output was left half-written."


def _fail(name: str, message: str, status: int = 2) -> int:
    print(f"{name}: error: {printable(message, limit=4000)}", file=sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
