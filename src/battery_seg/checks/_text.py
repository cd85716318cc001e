"""Text that reaches a terminal or a spreadsheet, and one-line messages for OS errors."""

from __future__ import annotations

import errno
import os
import re
import unicodedata
from pathlib import Path
from typing import Any

__all__ = ["clean_text", "csv_safe", "os_error_message", "printable"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Hidden siblings our atomic writers use: .NAME.tag-0123456789ab[.suffix] and mkstemp's
# .NAME.random.tmp; a message names NAME, the file the user asked for.
_TEMP_NAME = re.compile(r"^\.(?P<name>.+?)\.(?:[a-z]+-[0-9a-f]{12}(?:\.[^.]+)?|[^.]+\.tmp)$")
_REASONS = {
    errno.ENOSPC: ("no space is left on the device", "Free some space or write to another disk."),
    errno.EDQUOT: ("the disk quota is exceeded", "Free some space or write to another disk."),
    errno.EROFS: ("the file system is read-only", "Write to a folder on a writable disk."),
    errno.EACCES: ("permission denied", "Choose a path you can read and write, or ask for access."),
    errno.EPERM: ("operation not permitted", "Choose a path you can read and write."),
    errno.ENOENT: ("no such file or folder", "Check the path."),
    errno.EISDIR: ("it is a folder", "Give the path of a file."),
    errno.ENOTDIR: ("a part of the path is not a folder", "Check the path."),
    errno.EIO: (
        "an input/output error (a failing disk or network share)",
        "Check the disk or copy the data to a healthy one.",
    ),
    errno.ENAMETOOLONG: ("the name is too long", "Use a shorter path."),
}


def printable(text: Any, limit: int = 200) -> str:
    """``text`` with control, format and other invisible characters escaped, at most ``limit``
    characters long: safe to print on a terminal (no escape sequences, no bidi overrides).

    >>> printable("graphite\\x1b[2J")
    'graphite\\\\x1b[2J'
    """
    out = []
    for char in str(text):
        if unicodedata.category(char)[0] == "C":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    result = "".join(out)
    return result if len(result) <= limit else result[: limit - 3] + "..."


def clean_text(text: Any, limit: int = 200) -> str:
    """``text`` to write into a file another tool reads (an author, a description): control,
    format and other invisible characters dropped, runs of white space made one space, at most
    ``limit`` characters.

    >>> clean_text("Eve\\x1b[31mRED\\a  Smith")
    'Eve[31mRED Smith'
    """
    kept = "".join(
        " " if char.isspace() else char
        for char in str(text)
        if char.isspace() or unicodedata.category(char)[0] != "C"
    )
    return " ".join(kept.split())[:limit]


def csv_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: strings that would start a formula
    (``= + - @``, tab, carriage return) get a leading apostrophe; numbers stay numbers.

    >>> csv_safe("=HYPERLINK(\\"http://x\\")"), csv_safe(-0.5)
    ('\\'=HYPERLINK("http://x")', -0.5)
    """
    if not isinstance(value, str):
        return value
    text = printable(value, limit=1000)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _user_path(filename: Any) -> str:
    path = Path(os.fsdecode(filename))
    match = _TEMP_NAME.match(path.name)
    return str(path.with_name(match["name"])) if match else str(path)


def os_error_message(exc: OSError, path: Any = None) -> str:
    """One line for an ``OSError``: the file, what went wrong in plain words, and the fix.

    ``path`` names the file when the error does not (e.g. an error inside a library).
    """
    filename = exc.filename if exc.filename is not None else path
    where = f"{printable(_user_path(filename))}: " if filename is not None else ""
    reason, fix = _REASONS.get(exc.errno or -1, (None, ""))
    if reason is None:
        reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{where}{reason}. {fix}".rstrip()
