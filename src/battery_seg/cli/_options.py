"""Options several subcommands share, defined once so their names, choices and help agree."""

from __future__ import annotations

import argparse

from ..names import CUDA_INDEX, DEVICE_METAVAR, DEVICES

__all__ = ["DEVICES", "add_device_argument", "add_front_face_argument", "device"]


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
