"""Long-running jobs as generators: progress events out, a result back, cancel at any yield.

Every long computation in the core (segmenting, training, analysing) is written as a generator
that yields :class:`Progress` events and *returns* its result. The CLI and the Python API drain it
with :func:`run_job`; the napari widgets wrap the same generator in a ``thread_worker`` whose
``quit()`` stops it at the next ``yield`` (cooperative cancel), so tests exercise exactly the path
users run.

Examples
--------
>>> def count(n):
...     for i in range(n):
...         yield Progress(i + 1, n, "counting")
...     return n
>>> run_job(count(3))
3
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Job", "Progress", "run_job"]

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """One progress event of a job.

    ``step`` of ``total`` units are done (``total`` may grow, e.g. with early stopping);
    ``message`` is a short human-readable status; ``data`` carries job-specific payload such as
    ``{"epoch": 3, "loss": 0.21, "iou": {...}}`` or a finished block for live display.
    """

    step: int
    total: int
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0


Job = Generator[Progress, None, T]


def run_job(job: Job[T], on_progress: Callable[[Progress], None] | None = None) -> T:
    """Run ``job`` to completion, passing each event to ``on_progress``; return its result."""
    while True:
        try:
            event = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(event)
