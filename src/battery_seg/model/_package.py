"""Read bioimage.io model packages that battery-seg exported, without running any of their code.

A package is a zip file, a folder, or its ``rdf.yaml`` (also ``bioimageio.yaml``/``model.yaml``).
What battery-seg needs is in two places of it: the model card under ``config: battery_seg:``
in the YAML (phases, context, architecture, normalisation, provenance) and the PyTorch state
dict named by ``weights: pytorch_state_dict: source:``. The YAML is read with
``yaml.safe_load`` and the weights with ``torch.load(weights_only=True)``; the package's
architecture source, TorchScript and ONNX files are for other tools and are never loaded here.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from ..checks import printable
from ..errors import BatterySegError

__all__ = [
    "CONFIG_KEY",
    "file_sha256",
    "is_package",
    "model_bytes",
    "model_sha256",
    "read_package",
]

CONFIG_KEY = "battery_seg"
YAML_NAMES = ("rdf.yaml", "bioimageio.yaml", "model.yaml")
_HOW = "export it with 'battery-seg export MODEL -o MODEL.zip'"


def truncated_zip(path: Path) -> bool:
    """Whether ``path`` starts as a zip file (a package or a ``.pt`` checkpoint) but its end,
    the zip's table of contents, is missing or unreadable: a truncated or damaged download."""
    try:
        with open(path, "rb") as file:
            start = file.read(4)
    except OSError:
        return False
    return start == b"PK\x03\x04" and not zipfile.is_zipfile(path)


def is_package(path: Path) -> bool:
    """Whether ``path`` is a bioimage.io package: a folder or zip with an rdf.yaml, or the YAML."""
    if path.is_dir():
        return any((path / name).is_file() for name in YAML_NAMES)
    if path.suffix.lower() in (".yaml", ".yml"):
        return True
    if not zipfile.is_zipfile(path):  # a PyTorch checkpoint is a zip too: look inside
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name in YAML_NAMES for name in archive.namelist())
    except (zipfile.BadZipFile, EOFError) as exc:
        raise BatterySegError(
            f"{path} is damaged: its zip table of contents cannot be read "
            f"({printable(exc, 80)}); copy, download or export it again."
        ) from None


class _Package:
    """Files of a package by their name in it, wherever it is (zip, folder, YAML's folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.archive = (
            zipfile.ZipFile(path) if path.is_file() and zipfile.is_zipfile(path) else None
        )
        if self.archive is not None:
            names = set(self.archive.namelist())
            self.yaml_name = next((n for n in YAML_NAMES if n in names), "")
            self.folder = None
        elif path.is_dir():
            self.folder = path
            self.yaml_name = next((n for n in YAML_NAMES if (path / n).is_file()), "")
        else:
            self.folder, self.yaml_name = path.parent, path.name
        if not self.yaml_name:
            raise BatterySegError(
                f"{path} is not a bioimage.io model package (it has no rdf.yaml); {_HOW}."
            )

    def read(self, name: str) -> bytes:
        """The bytes of the package file ``name`` (a relative path inside the package)."""
        if "://" in name:
            raise BatterySegError(
                f"{self.path} refers to a file on the web ({name}); download the whole package "
                "(the .zip from bioimage.io) and give its path."
            )
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if not parts or parts[0] == "/" or ".." in parts:
            raise BatterySegError(f"{self.path} names a file outside the package ({name}).")
        try:
            if self.archive is not None:
                return self.archive.read("/".join(parts))
            return (self.folder / Path(*parts)).read_bytes()
        except (KeyError, FileNotFoundError):
            raise BatterySegError(
                f"{self.path} is incomplete: {name} is missing from the package; {_HOW} again."
            ) from None
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # a CRC or inflate failure
            raise BatterySegError(
                f"{self.path} is damaged: {name} in it does not match its checksum or cannot be "
                f"decompressed ({printable(exc, 80)}); download or export the package again."
            ) from None

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def _contents(path: Path) -> tuple[bytes, dict, str, bytes]:
    """The YAML bytes of the package ``path``, its content (with battery-seg's card), and the
    name and bytes of its state-dict weights; a message naming what is missing otherwise."""
    import yaml

    package = _Package(path)
    try:
        raw = package.read(package.yaml_name)
        try:
            rdf = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise BatterySegError(
                f"{path}: {package.yaml_name} is not valid YAML ({exc})."
            ) from None
        if not isinstance(rdf, dict) or rdf.get("type") != "model":
            kind = rdf.get("type") if isinstance(rdf, dict) else None
            raise BatterySegError(
                f"{path} is a bioimage.io package but not a model (type: {kind}); give the "
                "package of a model."
            )
        if not isinstance((rdf.get("config") or {}).get(CONFIG_KEY), dict):
            raise BatterySegError(
                f"{path} is a bioimage.io model ({rdf.get('name', 'unnamed')}) but not one "
                f"battery-seg exported: it has no 'config: {CONFIG_KEY}:' section (phases, "
                "context, architecture, normalisation). battery-seg runs only its own U-Net; "
                "train one on your strokes, starting from a bundled model (--init default)."
            )
        weights = (rdf.get("weights") or {}).get("pytorch_state_dict") or {}
        if not isinstance(weights, dict) or not weights.get("source"):
            formats = ", ".join(rdf.get("weights") or {}) or "none"
            raise BatterySegError(
                f"{path} has no PyTorch state-dict weights (its weights: {formats}); "
                f"battery-seg reads the 'pytorch_state_dict' weights; {_HOW} again."
            )
        name = str(weights["source"])
        return raw, rdf, name, package.read(name)
    finally:
        package.close()


def read_package(path: Path) -> dict[str, Any]:
    """The checkpoint payload (card fields and ``state_dict``) stored in the package ``path``.

    Raises
    ------
    BatterySegError
        If it is not a model package, lacks battery-seg's card or its weights, or these are
        unreadable; the message says what is missing.
    """
    import torch

    _raw, rdf, name, weights = _contents(path)
    try:
        state_dict = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "not usable weights"
        raise BatterySegError(
            f"Could not read the weights {name} of {path}: they are corrupt or not a PyTorch "
            f"state dict ({type(exc).__name__}); {_HOW} again."
        ) from None
    if not isinstance(state_dict, dict):
        raise BatterySegError(f"The weights {name} of {path} are not a state dict; {_HOW} again.")
    return {**rdf["config"][CONFIG_KEY], "state_dict": state_dict}


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_sha256(path: str | os.PathLike) -> str:
    """Content hash of a model: its file's SHA-256, or for a package the hash of its YAML and
    state-dict weights (the same for its zip, its folder and :func:`model_bytes` of it)."""
    path = Path(path)
    if not is_package(path):
        return file_sha256(path)
    raw, _rdf, _name, weights = _contents(path)
    parts = hashlib.sha256(raw).digest() + hashlib.sha256(weights).digest()
    return hashlib.sha256(parts).hexdigest()


def model_bytes(path: str | os.PathLike) -> bytes:
    """The bytes that carry a model to another machine: a checkpoint file as it is, a package
    as a small zip of its YAML and state-dict weights (all that :func:`read_package` reads)."""
    path = Path(path)
    if not is_package(path):
        return path.read_bytes()
    raw, _rdf, name, weights = _contents(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # stored: weights hardly compress
        archive.writestr(YAML_NAMES[0], raw)
        archive.writestr(PurePosixPath(name.replace("\\", "/")).as_posix(), weights)
    return buffer.getvalue()
