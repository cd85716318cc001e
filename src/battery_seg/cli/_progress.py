"""Progress of CLI jobs on stderr: a tqdm bar redrawn in place at the terminal's width.

On a terminal the bar (percentage, elapsed and remaining time, the job's message) is redrawn at
most every 0.1 s and always fits the terminal, however narrow, so updates never scroll; lines
printed meanwhile (an epoch's scores, an estimate) appear above it. Elsewhere (logs, CI) one
plain line is printed at most every ``log_every`` seconds and at the end.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

from ..jobs import Progress

__all__ = ["ProgressPrinter"]

_BAR = "{desc} {percentage:3.0f}%|{bar:24}| {elapsed}<{remaining}{postfix}"


class ProgressPrinter:
    """Callable for :func:`battery_seg.jobs.run_job`; also a context manager that closes the
    bar (leaving the terminal clean) however the job ends.

    ``step``/``total`` of each :class:`~battery_seg.jobs.Progress` drive the bar; an event with
    ``total == 0`` (no measure of progress yet) only changes the message.
    """

    def __init__(self, label: str, stream: TextIO | None = None, log_every: float = 10.0):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.log_every = log_every
        self._start = time.perf_counter()
        self._last = -float("inf")
        self._fraction = 0.0
        self.bar = tqdm(
            total=1000,
            desc=label,
            file=self.stream,
            dynamic_ncols=True,
            bar_format=_BAR,
            disable=not self.tty,
            leave=True,
        )

    def __enter__(self) -> ProgressPrinter:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def status(self, message: str) -> None:
        """Show ``message`` at once (e.g. what happens before the first progress step)."""
        self(Progress(0, 0, message))

    def __call__(self, event: Progress) -> None:
        if event.total:
            self._fraction = min(max(event.fraction, 0.0), 1.0)
        final = bool(event.total) and event.step >= event.total
        now = time.perf_counter()
        interval = 0.1 if self.tty else self.log_every
        if not final and event.total and now - self._last < interval:
            return
        self._last = now
        if self.tty:
            self.bar.n = round(1000 * self._fraction)
            self.bar.set_postfix_str(event.message, refresh=False)
            self.bar.refresh()
        else:
            elapsed = now - self._start
            self.stream.write(
                f"{self.label} {100 * self._fraction:5.1f}% {elapsed:6.1f}s {event.message}\n"
            )
            self.stream.flush()

    def write(self, line: str, file: TextIO | None = None) -> None:
        """Print ``line`` (to stdout by default) above the bar."""
        file = file or sys.stdout
        if self.tty:
            self.bar.write(line, file=file)
        else:
            print(line, file=file, flush=True)

    def close(self) -> None:
        self.bar.close()
