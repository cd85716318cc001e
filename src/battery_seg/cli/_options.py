"""Options several subcommands share, defined once so their names, choices and help agree."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from ..names import AXES, CUDA_INDEX, DEVICE_METAVAR, DEVICES

__all__ = [
    "DEVICES",
    "add_axis_argument",
    "add_command",
    "add_device_argument",
    "add_front_face_argument",
    "add_overwrite_argument",
    "add_phases_argument",
    "add_seed_argument",
    "add_voxel_size_argument",
    "axis_choices",
    "device",
    "write_output",
]

PHASES_METAVAR = "PRESET|NAMES|NAME=VALUE,..."
VOXEL_SIZE_HELP = "voxel size in µm, overriding the file's metadata"


def add_command(
    subparsers, name: str, *, help: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    """A subcommand's parser: one-line ``help``, a ``description`` and an ``epilog`` printed as
    written (line breaks kept)."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def device(text: str) -> str:
    """argparse type: one of :data:`DEVICES` or ``cuda:N`` (a GPU by number)."""
    if text in DEVICES or CUDA_INDEX.match(text):
        return text
    raise argparse.ArgumentTypeError(
        f"invalid choice: {text!r} (choose from {', '.join(DEVICES)} or cuda:N)"
    )


def add_device_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--device {auto,cpu,cuda,cuda:N}``: where ``what`` runs."""
    parser.add_argument(
        "--device",
        type=device,
        default="auto",
        metavar=DEVICE_METAVAR,
        help=f"where {what} runs (default auto: CUDA when available, else the CPU)",
    )


def add_front_face_argument(parser: argparse.ArgumentParser) -> None:
    """``--front-face {low,high}``: which face of each axis is the separator side."""
    parser.add_argument(
        "--front-face",
        default="low",
        choices=("low", "high"),
        help="front (separator) face of each axis: index 0 (low, default) or the last",
    )


def add_voxel_size_argument(parser: argparse.ArgumentParser, help: str = VOXEL_SIZE_HELP) -> None:
    """``--voxel-size Z Y X`` in µm (default: none given)."""
    parser.add_argument(
        "--voxel-size", type=float, nargs=3, default=None, metavar=("Z", "Y", "X"), help=help
    )


def add_axis_argument(
    parser: argparse.ArgumentParser, help: str, *, all_axes: bool = False
) -> None:
    """``--axis {z,y,x}`` (default z), with ``all`` as well when ``all_axes``."""
    parser.add_argument("--axis", default="z", choices=axis_choices(all_axes), help=help)


def axis_choices(all_axes: bool = False) -> tuple[str, ...]:
    """The axes an option takes: z, y, x, and ``all`` when ``all_axes``."""
    return (*AXES, "all") if all_axes else AXES


def add_phases_argument(parser: argparse.ArgumentParser, help: str, flag: str = "--phases") -> None:
    """``--phases PRESET|NAMES|NAME=VALUE,...`` (or ``flag``): a phase set as
    :meth:`battery_seg.phases.PhaseSet.parse` reads it; ``help`` says what it defaults to."""
    parser.add_argument(flag, metavar=PHASES_METAVAR, help=help)


def add_seed_argument(parser: argparse.ArgumentParser) -> None:
    """``--seed N`` (default 0)."""
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def add_overwrite_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--overwrite``; ``help`` says which outputs it replaces (and which it never does)."""
    parser.add_argument("--overwrite", action="store_true", help=help)


def write_output(path: Path | None, write: Callable[..., object], overwrite: bool) -> None:
    """``write(path, overwrite=overwrite)`` and say so, when ``path`` was given."""
    if path is not None:
        write(path, overwrite=overwrite)
        print(f"wrote {path}")
