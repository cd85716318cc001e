"""Which model the Train dock starts from and where it saves the new one.

The start defaults to ``TrainConfig().init`` (read from the dataclass, never repeated here). A
model is saved next to its image (``<image>-model.pt``) or in :data:`MODELS_FOLDER`; an existing
file is never replaced unless asked: the next free name (``model-2.pt``) is taken, so retraining
keeps the earlier models.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .._bundled import BUNDLED_MODELS
from ..errors import BatterySegError
from ..io._atomic import free_path
from ..training import TrainConfig

__all__ = ["FILE", "MODELS_FOLDER", "SCRATCH", "model_output", "start_choices"]

SCRATCH, FILE = "scratch", "model file"
MODELS_FOLDER = Path.home() / "battery-seg-models"  # when the image's folder is not writable


def start_choices(default: Any = None) -> tuple[list[tuple[str, str]], str]:
    """The "start from" choices (label, value) and the one ``default`` (by default
    ``TrainConfig().init``) names; a default the dock does not know is offered first."""
    if default is None:
        default = TrainConfig().init
    choices = [
        ("scratch (new model)", SCRATCH),
        *[(f"{name} model (bundled)", name) for name in BUNDLED_MODELS],
        ("model file", FILE),
    ]
    value = SCRATCH if TrainConfig(init=default).from_scratch else str(default)
    if value not in [v for _, v in choices]:  # e.g. an automatic pick of a bundled model
        label = "auto: the bundled model for the image" if value == "auto" else f"{value} (default)"
        choices.insert(0, (label, value))
    return choices, value


def model_output(chosen: str, image: Any, *, overwrite: bool) -> Path:
    """The file to save to: ``chosen``, or ``<image>-model.pt`` next to ``image`` when empty;
    the next free name when it exists and not ``overwrite``. Creates :data:`MODELS_FOLDER`
    when that is where it goes."""
    chosen = chosen.strip()
    if chosen in ("", "."):
        name = re.sub(r"[^\w.-]+", "_", image.name if image is not None else "battery-seg")
        output = models_folder(image) / f"{name}-model.pt"
    else:
        output = Path(chosen)
        if output.is_dir():
            raise BatterySegError("Choose a file to save the model to, e.g. model.pt.")
        if not output.suffix:
            output = output.with_suffix(".pt")
    return output if overwrite else free_path(output)


def models_folder(image: Any) -> Path:
    """The folder of the file ``image`` came from when we may write there, else
    :data:`MODELS_FOLDER`."""
    path = getattr(getattr(image, "source", None), "path", None) or (
        image.metadata.get("path") if image is not None else None
    )
    if path:
        from ..io._volume import split_address

        folder = split_address(str(path))[0].parent
        if folder.is_dir() and os.access(folder, os.W_OK):
            return folder
    return MODELS_FOLDER
