"""Run block tasks on a dask scheduler and hand back each block as soon as it is finished.

Local schedulers (threads, processes, sync) run ``dask.compute`` in a helper thread; a dask
callback passes every finished block to the job's generator through a queue. On a
``dask.distributed`` cluster (see :mod:`battery_seg.cluster`) each block is a future: the model
reaches each worker once through a worker plugin (:mod:`._shipping`), the workers write their
blocks into the output store themselves and only small :class:`BlockResult` summaries come back.
Closing the generator (Cancel) stops the tasks that have not started; tasks already running finish
their block (a store keeps it as done, so a resumed job does not redo it).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence

from ..cluster import LOCAL_SCHEDULERS, ClusterOptions, ClusterSession, RunStats, as_finished
from ._blocks import BlockResult, BlockTask, run_block, set_cancelled

__all__ = ["run_tasks"]

_FINISHED = object()


def run_tasks(
    tasks: Sequence[BlockTask],
    job_id: str,
    options: ClusterOptions,
    session: ClusterSession | None = None,
    *,
    stats: RunStats | None = None,
    resume_hint: str = "",
) -> Iterator[BlockResult]:
    """Compute the block ``tasks``; yield each :class:`BlockResult` when it finishes.

    ``session`` is the open cluster when ``options`` name one (see
    :func:`battery_seg.cluster.open_session`); ``stats`` counts what comes back from it.
    """
    if not tasks:
        return
    if session is not None:
        yield from _run_distributed(tasks, job_id, session, stats, resume_hint)
    else:
        scheduler = LOCAL_SCHEDULERS[options.local_scheduler or "threads"]
        yield from _run_local(tasks, job_id, scheduler, options.workers)


def _task_key(task: BlockTask, job_id: str) -> str:
    return f"battery-seg-block-{task.block.key}-{job_id}"


def _run_local(
    tasks: Sequence[BlockTask], job_id: str, scheduler: str, workers: int | None
) -> Iterator[BlockResult]:
    import dask
    from dask.callbacks import Callback
    from dask.system import CPU_COUNT

    # dask gives a compute started outside the main thread a fresh pool of Python's default
    # size (cpu count + 4 threads), so say how many: one block per core at a time
    workers = workers or CPU_COUNT
    finished: queue.Queue = queue.Queue()
    delayed = [
        dask.delayed(run_block, pure=False)(task, dask_key_name=_task_key(task, job_id))
        for task in tasks
    ]

    def posttask(key, result, dsk, state, worker_id) -> None:
        if isinstance(result, BlockResult):
            finished.put(result)

    def compute() -> None:
        try:
            dask.compute(
                *delayed,
                scheduler=scheduler,
                num_workers=workers,
                callbacks=[Callback(posttask=posttask)._callback],  # this compute only
            )
            finished.put(_FINISHED)
        except BaseException as exc:  # handed to the generator, which re-raises it
            finished.put(exc)

    thread = threading.Thread(target=compute, name=f"battery-seg {job_id}", daemon=True)
    set_cancelled(job_id, False)
    thread.start()
    try:
        while True:
            item = finished.get()
            if item is _FINISHED:
                return
            if isinstance(item, BaseException):
                raise item
            if not item.skipped:
                yield item
    finally:
        set_cancelled(job_id, True)  # blocks not yet started return at once
        thread.join()
        set_cancelled(job_id, False)


def _run_distributed(
    tasks: Sequence[BlockTask],
    job_id: str,
    session: ClusterSession,
    stats: RunStats | None,
    resume_hint: str,
) -> Iterator[BlockResult]:
    from ._shipping import share_model

    job = tasks[0].job
    # one GPU per block where the workers declare GPUs (dask worker --resources GPU=1)
    gpu = job.device != "cpu" and session.has_resource("GPU")
    with share_model(session, job.model, job_id):
        futures = session.client.map(
            run_block,
            list(tasks),
            key=[_task_key(t, job_id) for t in tasks],
            pure=False,
            resources={"GPU": 1} if gpu else None,
        )
        for _index, result in as_finished(session, futures, resume_hint=resume_hint, stats=stats):
            yield result
