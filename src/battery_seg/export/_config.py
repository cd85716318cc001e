"""The one configuration object of an export, shared by the widget, the CLI and the API."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checks import check_voxel_size, clean_text, printable
from ..errors import BatterySegError

__all__ = ["DEFAULT_LICENSE", "ExportConfig"]

DEFAULT_LICENSE = "CC-BY-4.0"
"""bioimage.io's recommended licence for models (SPDX identifier)."""
BUNDLED_AUTHOR = "napari-battery-seg developers"
_NAME = re.compile(r"^[A-Za-z0-9_+\- ()]{5,128}$")  # bioimage.io's rule for a model name


@dataclass(frozen=True)
class ExportConfig:
    """What to export and how to describe it.

    Parameters
    ----------
    model
        A model file (``.pt``), a bioimage.io package, or a bundled model's name
        (``"default"``, ``"fast"``).
    output
        The package to write, a ``.zip`` file.
    name
        The model's name on bioimage.io (5 to 128 letters, digits, spaces, ``_+-()``);
        ``None``: made from the model file's name and its phases.
    authors
        Names of the people who made the model (at least one; the bundled models default to
        the package's developers).
    license
        An SPDX licence identifier (``CC-BY-4.0``, ``MIT``, ``BSD-3-Clause``, ...).
    description
        One or two sentences on what the model segments; ``None``: made from its card.
    voxel_size
        ``(dz, dy, dx)`` in µm of the data the model was trained on, when its card does not
        record it (models trained before battery-seg recorded it).
    sample
        A ``(Z, Y, X)`` image volume (NumPy or dask) to cut the package's test input and cover
        from, e.g. the volume the model was trained on; ``None``: the synthetic sample.
    overwrite
        Replace an existing ``output``.

    Everything that can be checked without loading the model is checked when the configuration
    is made, except the licence: it is checked against bioimageio.spec when the export starts
    (importing that takes seconds; the export dock builds its configuration on the GUI thread).

    Examples
    --------
    >>> config = ExportConfig("model.pt", "model.zip", authors=["Ada Lovelace"], license="MIT")
    >>> config.author_names
    ['Ada Lovelace']
    """

    model: str | os.PathLike = "default"
    output: str | os.PathLike | None = None
    name: str | None = None
    authors: Sequence[str] = ()
    license: str = DEFAULT_LICENSE
    description: str | None = None
    voxel_size: Sequence[float] | None = None
    sample: Any = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        """Validate what can be checked without loading the model (raises BatterySegError)."""
        from ..io._atomic import check_output

        set_ = object.__setattr__
        if self.output is None or Path(self.output).suffix.lower() != ".zip":
            raise BatterySegError(
                f"The bioimage.io package must be a .zip file, got {self.output}; e.g. "
                "-o my_model.zip."
            )
        set_(self, "output", Path(self.output))
        check_output(self.output, self.overwrite)
        if self.name is not None and not _NAME.match(self.name):
            raise BatterySegError(
                f"Model name {printable(repr(self.name), 60)} is not allowed on bioimage.io: use "
                "5 to 128 letters, digits, spaces and _ + - ( ) only."
            )
        set_(self, "authors", [clean_text(a) for a in self.authors if a and clean_text(a)])
        if self.description is not None:
            set_(self, "description", clean_text(self.description, limit=1000) or None)
        if not self.authors and not self.is_bundled:
            raise BatterySegError(
                "Name at least one author of the model (--author 'Your Name', or the 'authors' "
                "field of the export dock); bioimage.io lists models by their authors."
            )
        if self.voxel_size is not None:
            set_(self, "voxel_size", check_voxel_size(self.voxel_size, "the export"))
        if self.sample is not None and getattr(self.sample, "ndim", 0) not in (2, 3):
            raise BatterySegError(
                "The sample image must be one (Z, Y, X) volume or (Y, X) slice of grey values."
            )

    @property
    def is_bundled(self) -> bool:
        from ..model import BUNDLED_MODELS

        return str(self.model) in BUNDLED_MODELS

    @property
    def author_names(self) -> list[str]:
        """The authors given, or the package's developers for a bundled model."""
        return list(self.authors) or [BUNDLED_AUTHOR]


def check_license(license: str) -> None:
    """An SPDX identifier bioimage.io accepts (checked before the slow part of an export)."""
    from ._describe import import_spec

    spec = import_spec()  # its own message when bioimageio.spec is missing or too old
    try:
        spec.LicenseId(license)
    except ValueError:
        raise BatterySegError(
            f"Unknown licence {license!r}: give an SPDX identifier such as {DEFAULT_LICENSE}, "
            "MIT or BSD-3-Clause (https://spdx.org/licenses)."
        ) from None
