"""Hand back the results of futures as they finish, watching that the cluster is still there.

``dask.distributed`` already reschedules the tasks of a worker that dies on the others; what it
does not do is give up: with every worker gone a client waits forever. :func:`as_finished` stops
after ``connect_timeout`` seconds without any worker (or without the scheduler) and turns a task
that kept killing its workers into a message that says what to do.
"""

from __future__ import annotations

import contextlib
import pickle
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import BatterySegError
from ._session import ClusterSession

__all__ = ["RunStats", "as_finished"]

_POLL_SECONDS = 0.02
_CHECK_SECONDS = 1.0


@dataclass
class RunStats:
    """What came back to the client: ``tasks`` results of ``bytes_received`` bytes (pickled)."""

    tasks: int = 0
    bytes_received: int = 0


def as_finished(
    session: ClusterSession,
    futures: Sequence[Any],
    *,
    resume_hint: str = "",
    stats: RunStats | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, result)`` of each future in ``futures`` as soon as it is finished.

    Closing the iterator cancels the futures that have not finished. ``resume_hint`` ends the
    messages of a cluster that lost all its workers or a task that killed its workers.
    """
    from distributed import as_completed

    index = {future.key: i for i, future in enumerate(futures)}
    pending = as_completed(futures, loop=session.client.loop)
    remaining = set(index)
    watch = _Watch(session, resume_hint)
    last_check = time.monotonic()
    try:
        while remaining:
            batch = pending.next_batch(block=False) if pending.has_ready() else []
            if not batch:
                time.sleep(_POLL_SECONDS)
                if time.monotonic() - last_check >= _CHECK_SECONDS:
                    last_check = time.monotonic()
                    watch.check()
                continue
            watch.progress()
            for future in sorted(batch, key=lambda f: index[f.key]):
                remaining.discard(future.key)
                result = _result(future, watch)
                future.release()  # the worker may forget it (a block's arrays, in memory mode)
                if stats is not None:
                    stats.tasks += 1
                    stats.bytes_received += len(pickle.dumps(result, protocol=5))
                yield index[future.key], result
    finally:
        if remaining:
            with contextlib.suppress(Exception):
                session.client.cancel([f for f in futures if f.key in remaining])


class _Watch:
    """Raises once the cluster has had no usable worker for ``connect_timeout`` seconds.

    Unusable: gone, the scheduler unreachable, or every worker paused by dask because its
    memory is above the pause threshold of its limit (such a worker never takes another task,
    since the memory of a running block is not data dask could spill).
    """

    def __init__(self, session: ClusterSession, hint: str) -> None:
        self.session, self.hint = session, hint
        self.stalled_since: float | None = None

    def progress(self) -> None:
        self.stalled_since = None

    def check(self) -> None:
        problem = self._problem()
        now = time.monotonic()
        if problem is None or self.stalled_since is None:
            self.stalled_since = None if problem is None else now
            return
        timeout = self.session.options.connect_timeout
        if now - self.stalled_since >= timeout:
            raise BatterySegError(
                f"Stopped waiting for {self.session.where}: {problem} (for {timeout:g} s). "
                f"{self.hint}"
            )

    def _problem(self) -> str | None:
        try:
            workers = self.session.workers() if self.session.client.status == "running" else None
        except Exception:  # the scheduler does not answer
            workers = None
        if workers is None:
            return "the connection to it was lost; start the scheduler and workers again."
        if not workers:
            return "all its workers are gone; start workers again."
        if all(w.get("status") == "paused" for w in workers.values()):
            worker = next(iter(workers.values()))
            used = (worker.get("metrics") or {}).get("memory", 0) / 2**20
            limit = (worker.get("memory_limit") or 0) / 2**20
            return (
                f"every worker is paused by dask for lack of memory (e.g. {used:.0f} MiB used of "
                f"a {limit:.0f} MiB limit); give the workers more memory (--memory-limit, or "
                "'dask worker --memory-limit') or use smaller blocks (--block)."
            )
        return None


def _result(future: Any, watch: _Watch) -> Any:
    """The result of a finished future; a result lost with its worker is recomputed, so wait
    for it as long as the cluster lives."""
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError

    session, hint = watch.session, watch.hint
    while True:
        try:
            return future.result(timeout=_CHECK_SECONDS)
        except TimeoutError:
            watch.check()
        except KilledWorker:
            raise BatterySegError(
                f"The task {future.key} was running on workers of {session.where} that died, "
                "several times in a row (out of memory? see the worker logs; give the workers "
                f"more memory or use smaller blocks). {hint}"
            ) from None
        except FutureCancelledError:
            raise BatterySegError(
                f"The task {future.key} was cancelled by {session.where} (was the scheduler "
                f"restarted?). {hint}"
            ) from None
