"""The output guard: an output is never an input, and ``overwrite`` replaces only what we write.

Inputs are known two ways: every volume :func:`battery_seg.io.open_volume` opens is registered
for the life of the process (so an API call writing a bare array still cannot write over the
file it came from), and a caller passes the inputs it knows (``inputs=``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import BatterySegError
from ..names import battery_seg_attrs

__all__ = [
    "check_not_input",
    "check_output",
    "forget_input",
    "output_kind",
    "output_lock",
    "register_input",
]

_INPUTS: set[Path] = set()
_KIND_BY_SUFFIX = {
    ".zarr": "zarr",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".json": "json",
    ".csv": "csv",
    ".pt": "model",
    ".pth": "model",
}
_KIND_NAMES = {
    "zarr": "an OME-Zarr store written by napari-battery-seg",
    "tiff": "a TIFF file",
    "json": "a JSON file",
    "csv": "a text (CSV) file",
    "model": "a PyTorch model file",
    "file": "a file",
}
_MAGIC = (
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"II+\x00", "a BigTIFF image"),
    (b"MM\x00+", "a BigTIFF image"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"PK\x03\x04", "a zip archive (e.g. a PyTorch model)"),
    (b"\x80", "a Python pickle (e.g. a PyTorch model)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
)


def register_input(path: str | os.PathLike) -> None:
    """Remember ``path`` as an input of this process; the guard refuses to write over it."""
    _INPUTS.add(Path(path).resolve())


def forget_input(path: str | os.PathLike) -> None:
    """Stop protecting ``path`` (e.g. an output this process wrote and then opened to show)."""
    _INPUTS.discard(Path(path).resolve())


def output_kind(path: str | os.PathLike) -> str:
    """The kind of output a path's name asks for: zarr, tiff, json, csv, model or file."""
    name = Path(path).name.lower()
    if name.endswith(".zarr"):
        return "zarr"
    return _KIND_BY_SUFFIX.get(Path(name).suffix, "file")


def _clash(output: Path, target: Path, source: Path) -> str | None:
    """How writing ``output`` (resolved: ``target``) would touch the input ``source``."""
    if target == source:
        return "it is (or links to)"
    if source in target.parents:
        return "it would go inside"
    if target in source.parents:
        return "it would replace the folder holding"
    with contextlib.suppress(OSError):
        if output.exists() and source.exists() and os.path.samefile(output, source):
            return "it is a hard link to"
    return None


def check_not_input(
    output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = ()
) -> None:
    """Raise if ``output`` is, links to, lies inside or holds an input (registered or given)."""
    output = Path(output)
    target = output.resolve()
    sources = set(_INPUTS) | {Path(p).resolve() for p in inputs if p is not None}
    for source in sorted(sources):
        reason = _clash(output, target, source)
        if reason:
            raise BatterySegError(
                f"Refusing to write {output}: {reason} the input {source}, which is never "
                "modified. Choose another output path."
            )


def _looks_like(head: bytes) -> str:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if b"\x00" in head:
        return "binary data"
    text = head.lstrip()
    if text[:1] in (b"{", b"["):
        return "JSON text"
    return "text" if text else "an empty file"


def _same_kind(kind: str, found: str) -> bool:
    return {
        "tiff": found in ("a TIFF image", "a BigTIFF image", "an empty file"),
        "json": found in ("JSON text", "an empty file"),
        "csv": found in ("text", "JSON text", "an empty file"),
        "model": found.startswith(("a zip archive", "a Python pickle")) or found == "an empty file",
        "file": True,
    }.get(kind, False)


def _is_our_store(path: Path) -> bool:
    return battery_seg_attrs(path) is not None


def _check_replaceable(path: Path, kind: str) -> None:
    """``overwrite`` was given: refuse unless ``path`` is something of the output's kind."""
    if path.is_symlink() and not path.exists():
        return  # a dangling link: replacing it loses nothing
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode) and kind != "zarr":
        raise BatterySegError(
            f"Cannot write {path}: it is a folder, and the output is {_KIND_NAMES[kind]}. Give "
            "the path of a file (e.g. inside that folder), or remove the folder yourself."
        )
    if stat.S_ISDIR(mode):
        entries = sorted(p.name for p in path.iterdir())
        if not entries or (kind == "zarr" and _is_our_store(path)):
            return
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise BatterySegError(
            f"Refusing to replace {path}: it is a folder that napari-battery-seg did not write "
            f"(it holds {shown}). --overwrite replaces only {_KIND_NAMES[kind]}, never another "
            "folder: move or delete it yourself, or choose another output path."
        )
    if not stat.S_ISREG(mode):
        raise BatterySegError(
            f"Cannot write {path}: it is not a regular file (a device, pipe or socket). Give "
            "the path of a file to write."
        )
    with open(path, "rb") as file:
        found = _looks_like(file.read(4096))
    if not _same_kind(kind, found):
        raise BatterySegError(
            f"Refusing to replace {path}: it holds {found}, and --overwrite replaces only "
            f"{_KIND_NAMES[kind]}. Choose another output path (or delete the file yourself)."
        )


def check_output(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    kind: str | None = None,
    inputs: Iterable[str | os.PathLike | None] = (),
) -> Path:
    """Check that ``path`` may be written; return it as a :class:`~pathlib.Path`.

    Parameters
    ----------
    path
        The output file or store.
    overwrite
        Replace an existing output, if it is of the output's ``kind``.
    kind
        ``"zarr"`` (only our own stores or an empty folder are replaced), ``"tiff"``, ``"json"``,
        ``"csv"``, ``"model"`` (files whose content is of that kind) or ``"file"`` (any regular
        file); default: from the name (see :func:`output_kind`).
    inputs
        Paths this job reads, besides those opened with ``open_volume``.

    Raises
    ------
    BatterySegError
        When ``path`` is (or links to, or lies inside, or holds) an input; exists and
        ``overwrite`` is not given or it is not of the output's kind; or its folder is missing
        or not writable.

    Examples
    --------
    >>> check_output("stats.json", overwrite=True, inputs=["labels.tif"])  # doctest: +SKIP
    PosixPath('stats.json')
    """
    path = Path(path)
    kind = kind or output_kind(path)
    check_not_input(path, inputs)
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise BatterySegError(
                f"{path} already exists. Choose another output path, or pass overwrite=True "
                "(--overwrite on the command line) to replace it."
            )
        _check_replaceable(path, kind)
    parent = path.parent
    if not parent.is_dir():
        raise BatterySegError(
            f"Cannot write {path}: the folder {parent} does not exist. Create it first."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BatterySegError(
            f"Cannot write {path}: the folder {parent} is not writable for you (read-only or "
            "permission denied). Choose an output folder you can write to."
        )
    return path


def _holder(lock: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(lock.read_text().strip())
        return f" (process {pid})"
    return ""


def _acquire(lock: Path, path: Path) -> int | None:
    """An open, exclusively locked descriptor of ``lock``; None where locking is unsupported."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BatterySegError(
                f"{path} is being written by another run{_holder(lock)}. Wait for it to finish "
                "(or stop it), or choose another output path."
            ) from None
        except OSError:  # no locks on this file system
            os.close(fd)
            return None
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                return fd  # still the file at that path, not one a finishing run removed
        os.close(fd)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike | None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` while it is written; refuse a second writer at once.

    The lock is ``.NAME.lock`` beside the output, held with ``flock`` (released by the kernel
    even after ``kill -9``) and removed at the end. Where locks are not supported (no
    ``fcntl``, a file system without locks, a folder that cannot be written), nothing is locked
    and the write itself reports any problem.

    Examples
    --------
    >>> with output_lock("labels.zarr"):  # doctest: +SKIP
    ...     write_the_store()
    """
    if path is None:
        yield
        return
    path = Path(path)
    lock = path.with_name(f".{path.name}.lock")
    fd = _acquire(lock, path)
    if fd is None:
        yield
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)
