"""Atomic file and folder replacement: outputs appear complete or not at all."""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np


def temp_sibling(path: Path, tag: str = "tmp") -> Path:
    """A hidden, unique path next to ``path`` (same file system, so renames are atomic)."""
    return path.with_name(f".{path.name}.{tag}-{uuid.uuid4().hex[:12]}")


def remove(path: Path) -> None:
    """Remove a file or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def replace_path(source: Path, target: Path) -> None:
    """Move ``source`` (file or folder) to ``target``, replacing what is there.

    Files are replaced with one :func:`os.replace`. A folder cannot replace a non-empty folder
    in one step, so an existing ``target`` is first renamed aside (hidden sibling), then
    ``source`` renamed into place, then the old one deleted: at no moment does ``target`` hold
    partial content.
    """
    if target.exists() and (source.is_dir() or target.is_dir()):
        aside = temp_sibling(target, "old")
        os.replace(target, aside)
        try:
            os.replace(source, target)
        except OSError:
            os.replace(aside, target)
            raise
        remove(aside)
    else:
        os.replace(source, target)


def json_safe(value: Any) -> Any:
    """``value`` with NumPy scalars as Python ones, NaN as ``None`` (the quantity does not
    exist) and infinities as the strings ``"inf"`` / ``"-inf"``: strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def json_text(value: Any) -> str:
    """Strict JSON text of ``value`` (see :func:`json_safe`; a bare NaN never gets out)."""
    return json.dumps(json_safe(value), indent=2, ensure_ascii=False, allow_nan=False)


def write_json_atomic(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` through a temporary file and :func:`os.replace`."""
    tmp = temp_sibling(path)
    try:
        tmp.write_text(json_text(value), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_output(path: Path, overwrite: bool) -> None:
    """The output guard for a new output (see :func:`battery_seg.checks.check_output`)."""
    from ..checks import check_output as guard

    guard(path, overwrite=overwrite)


def free_path(path: Path) -> Path:
    """``path`` if nothing is there, else the first free ``stem-2.suffix``, ``stem-3.suffix``...

    Examples
    --------
    >>> free_path(Path("/nonexistent/model.pt")).name
    'model.pt'
    """
    path = Path(path)
    if not path.exists():
        return path
    stem, number = path.stem, 2
    base, _, counter = stem.rpartition("-")
    if base and counter.isdigit():  # model-2.pt -> model-3.pt, not model-2-2.pt
        stem, number = base, int(counter) + 1
    while (candidate := path.with_name(f"{stem}-{number}{path.suffix}")).exists():
        number += 1
    return candidate
