"""Choosing a model in a dock: a bundled model by name, or a model file or bioimage.io package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import BatterySegError

__all__ = ["MODEL_FILTER", "chosen_model"]

MODEL_FILTER = "Models (*.pt *.zip *.yaml)"
"""File dialog filter: .pt files from training, bioimage.io packages (zip or rdf.yaml)."""


def chosen_model(choice: str, file: Any, from_file: str) -> str:
    """The model a dock's choice names: a bundled model's name, or the chosen file when the
    choice is ``from_file`` (a message saying what to choose when there is none)."""
    if choice != from_file:
        return choice
    path = Path(file) if file is not None else Path()
    if not path.name or not path.exists():
        raise BatterySegError(
            "Choose a model file (.pt from training, or a bioimage.io package .zip / rdf.yaml "
            "from 'Export for bioimage.io') or a bundled model (default or fast)."
        )
    return str(path)
