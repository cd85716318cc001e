"""A dependency-free text progress bar for CLI jobs (stderr, one line, redrawn in place)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..jobs import Progress


class ProgressPrinter:
    """Callable for :func:`battery_seg.jobs.run_job` that draws ``[#####     ] 50% message``.

    On a terminal the line is redrawn at most every 0.1 s; otherwise (logs, CI) a line is printed
    at most every ``log_every`` seconds and at the end.
    """

    def __init__(self, label: str, stream: TextIO | None = None, log_every: float = 10.0):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.log_every = log_every
        self._last = 0.0
        self._start = time.perf_counter()

    def __call__(self, event: Progress) -> None:
        now = time.perf_counter()
        final = event.total and event.step >= event.total
        if not final and now - self._last < (0.1 if self.tty else self.log_every):
            return
        self._last = now
        width = 30
        filled = int(width * min(event.fraction, 1.0))
        bar = "#" * filled + " " * (width - filled)
        elapsed = now - self._start
        line = (
            f"{self.label} [{bar}] {100 * event.fraction:5.1f}% "
            f"{event.step}/{event.total} {elapsed:6.1f}s {event.message}"
        )
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(160) + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
