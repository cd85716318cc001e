"""Options several subcommands share, defined once so their names, choices and help agree."""

from __future__ import annotations

import argparse
import re

__all__ = ["DEVICES", "add_device_argument", "add_front_face_argument", "device"]

DEVICES = ("auto", "cpu", "cuda")
_CUDA_N = re.compile(r"^cuda:\d+$")


def device(text: str) -> str:
    """argparse type: one of :data:`DEVICES` or ``cuda:N`` (a GPU by number)."""
    if text in DEVICES or _CUDA_N.match(text):
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
        metavar="{auto,cpu,cuda,cuda:N}",
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
