"""Run a core job generator in a napari thread worker with progress, Cancel and error display.

Widgets build their parameters, then call :meth:`JobControls.start` with a zero-argument factory
returning the core generator (see :mod:`battery_seg.jobs`). The generator runs in a worker thread;
each :class:`~battery_seg.jobs.Progress` it yields updates the dock's progress bar and napari's
activity dock, and is forwarded to the widget (to show a finished block or a live loss curve).
Cancel calls ``worker.quit()``, which stops the generator at its next ``yield``; the generator is
then closed in the worker thread, so the job's own ``finally`` blocks clean up partial output at
once (not whenever the generator happens to be garbage-collected).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from magicgui.widgets import Container, ProgressBar, PushButton
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils import progress as napari_progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt

from ..checks import os_error_message
from ..errors import BatterySegError
from ..jobs import Progress
from ._layout import MessageLabel

__all__ = ["JobControls", "format_seconds"]

log = logging.getLogger(__name__)


class JobControls(Container):
    """Run and Cancel buttons, a progress bar and a status message for one kind of job.

    The message wraps and its height is bounded (:class:`MessageLabel`), so a long error never
    widens the dock; when a job ends it says how long it took.
    """

    def __init__(self, run_text: str = "Run", description: str = "battery-seg") -> None:
        self._run = PushButton(text=run_text)
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._bar = ProgressBar(value=0, min=0, max=1000, visible=False)
        self._status = MessageLabel()
        buttons = Container(widgets=[self._run, self._cancel], layout="horizontal", labels=False)
        super().__init__(widgets=[buttons, self._bar, self._status], labels=False)
        self.description = description
        self.worker: GeneratorWorker | None = None
        self._activity: napari_progress | None = None
        self._started = 0.0
        self.seconds = 0.0  # how long the last job ran
        self._cancel.changed.connect(self.cancel)

    @property
    def run_button(self) -> PushButton:
        return self._run

    @property
    def cancel_button(self) -> PushButton:
        return self._cancel

    @property
    def status(self) -> str:
        return self._status.value

    @property
    def running(self) -> bool:
        return self.worker is not None

    def set_status(self, text: str) -> None:
        self._status.value = text

    def elapsed(self) -> str:
        """How long the current (or last) job ran, e.g. ``12.3 s`` or ``2 min 05 s``."""
        seconds = time.perf_counter() - self._started if self.running else self.seconds
        return format_seconds(seconds)

    def start(
        self,
        job_factory: Callable[[], Any],
        on_progress: Callable[[Progress], None] | None = None,
        on_returned: Callable[[Any], None] | None = None,
        on_errored: Callable[[BaseException], None] | None = None,
        on_aborted: Callable[[], None] | None = None,
    ) -> GeneratorWorker:
        """Start ``job_factory()`` (a generator) in a worker thread and wire its signals."""
        if self.worker is not None:
            raise BatterySegError("A job is already running; wait for it or press Cancel.")
        job = job_factory()

        def run_job():  # a generator function, so napari makes a cancellable GeneratorWorker
            return (yield from job)

        worker = create_worker(run_job, _start_thread=False, _ignore_errors=True)
        self.worker = worker
        # Runs in the worker thread right after quit() stopped the generator: clean up now.
        worker.aborted.connect(job.close, Qt.DirectConnection)

        def _progress(event: Progress) -> None:
            if not isinstance(event, Progress):
                return
            self._bar.visible = True
            self._bar.value = int(1000 * min(max(event.fraction, 0.0), 1.0))
            self._status.value = event.message
            activity = self._activity  # set_description may run `finished` re-entrantly
            if activity is not None:
                activity.total = max(event.total, 1)
                activity.n = min(event.step, activity.total)
                activity.set_description(f"{self.description}: {event.message}")
                activity.refresh()
            if on_progress is not None:
                on_progress(event)

        def _returned(result: Any) -> None:
            self.seconds = time.perf_counter() - self._started
            self._status.value = f"Done in {format_seconds(self.seconds)}."
            if on_returned is not None:
                on_returned(result)

        def _errored(exc: BaseException) -> None:
            if isinstance(exc, (BatterySegError, OSError)):  # the user's to fix: one line
                text = os_error_message(exc) if isinstance(exc, OSError) else str(exc)
                self._status.value = f"Error: {text}"
                show_error(text)
            else:  # a bug in battery-seg: show it plainly, keep the traceback in the log
                log.error("battery-seg job failed", exc_info=exc)
                self._status.value = f"Unexpected error: {type(exc).__name__}: {exc}"
                show_error(f"{self.description} failed: {type(exc).__name__}: {exc}")
            if on_errored is not None:
                on_errored(exc)

        def _aborted() -> None:
            self._status.value = "Cancelled; nothing partial was kept."
            show_info(f"{self.description} cancelled.")
            if on_aborted is not None:
                on_aborted()

        worker.yielded.connect(_progress)
        worker.returned.connect(_returned)
        worker.errored.connect(_errored)
        worker.aborted.connect(_aborted)
        worker.finished.connect(self._finished)
        self._activity = napari_progress(total=1, desc=self.description)
        self._run.enabled = False
        self._cancel.enabled = True
        self._bar.value = 0
        self._bar.visible = True
        self._status.value = "Starting..."
        self._started = time.perf_counter()
        worker.start()
        return worker

    def cancel(self) -> None:
        """Ask the running job to stop at its next progress step."""
        if self.worker is not None:
            self._status.value = "Cancelling..."
            self.worker.quit()

    def _finished(self) -> None:
        self.seconds = time.perf_counter() - self._started
        self.worker = None
        self._run.enabled = True
        self._cancel.enabled = False
        self._bar.visible = False
        if self._activity is not None:
            self._activity.close()
            self._activity = None


def format_seconds(seconds: float) -> str:
    """``8.2 s``, ``75 s`` or ``2 min 05 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
