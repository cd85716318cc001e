"""The segmentation job: check the request, plan blocks, run them on dask, collect the result."""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .._bundled import flat_for
from ..checks import (
    check_disk,
    check_memory,
    check_output,
    correlation_evidence,
    output_lock,
    unrelated_slices,
)
from ..cluster import ClusterSession, RunStats, open_session
from ..errors import BatterySegError
from ..gpu_memory import release_gpu_memory
from ..jobs import Job, Progress, run_job
from ._blocks import Block, BlockJob, BlockTask
from ._config import SegmentConfig, SegmentResult
from ._execute import run_tasks
from ._inputs import InputVolume, as_input_volume
from ._models import PreparedModel, prepare_model
from ._outputs import MemorySink, StoreSink
from ._planning import Plan, fingerprint, plan_job

__all__ = ["segment", "segment_job"]


def segment_job(
    image: Any, config: SegmentConfig | None = None, *, voxel_size: Any = None
) -> Job[SegmentResult]:
    """Segment a volume into phases, block by block; a generator job.

    Parameters
    ----------
    image
        ``(Z, Y, X)`` NumPy or dask array (a 2D image is one slice), or a
        :class:`battery_seg.io.Volume` (its voxel size is kept).
    config
        What to do; see :class:`SegmentConfig`. ``None``: the default model, slicing along z,
        result in memory.
    voxel_size
        ``(dz, dy, dx)`` or one number, in µm; overrides the volume's own.

    Yields
    ------
    Progress
        First ``step`` = blocks already done (a resumed store), then one event per finished
        block with ``data={"region": (slice, slice, slice), "labels": uint8 array}`` (``None``
        for an OME-Zarr output: the block is in the store). On a cluster, events with
        ``total=0`` say where the job runs before the first one.

    Returns
    -------
    SegmentResult

    Notes
    -----
    Closing the generator (Cancel) keeps nothing partial in memory; an OME-Zarr output stays
    ``OUT.zarr.partial`` with its finished blocks, and the same job run again continues it (on
    this machine or a cluster, even after the process or a worker was killed).

    With ``config.cluster`` naming a ``dask.distributed`` cluster the
    cluster is checked first (reachable, workers importing this package, the input readable and
    the output writable from the workers); the workers write their blocks into the store and
    only small summaries come back (``timing["bytes_received"]``).

    Examples
    --------
    >>> from battery_seg.jobs import run_job
    >>> result = run_job(segment_job(volume, SegmentConfig(model="model.pt")))  # doctest: +SKIP
    >>> result.labels.shape, result.phases.names  # doctest: +SKIP
    ((64, 256, 256), ('pore', 'silicon', 'cbd', 'graphite'))
    """
    config = config or SegmentConfig()
    started = time.perf_counter()
    volume = as_input_volume(image, voxel_size)
    if config.output is not None:  # refuse at once, before the model and the cluster start
        check_output(config.output, overwrite=config.overwrite, inputs=[volume.path])
    options = config.cluster
    if options.distributed and options.workers is not None:
        yield Progress(0, 0, f"Starting {options.workers} dask workers on this machine")
    try:
        with output_lock(config.output), open_session(options) as session:
            if session is not None:
                yield Progress(0, 0, f"Running on {session.where}")
            result = yield from _segment(volume, config, session, started)
    finally:
        release_gpu_memory()  # PyTorch's cached GPU blocks go back (to napari, say)
    return result


def _segment(
    volume: InputVolume, config: SegmentConfig, session: ClusterSession | None, started: float
) -> Job[SegmentResult]:
    model = prepare_model(config)
    plan = plan_job(volume, config, model)
    sink = _open_sink(volume, config, model, plan)
    if session is not None:
        _check_cluster_paths(session, volume, sink)
    keys = [b.key for b in plan.blocks]
    done_before = sink.done_keys() & set(keys)
    todo = [b for b in plan.blocks if b.key not in done_before]
    job_id = uuid.uuid4().hex
    tasks = _tasks(job_id, volume, config, model, plan, todo, sink.store)
    resumed = f" ({len(done_before)} already done)" if done_before else ""
    plural = "s" * (len(keys) != 1)
    yield Progress(
        len(done_before),
        len(keys),
        f"Segmenting {len(keys)} block{plural}{resumed}",
        data={"store": None if sink.store is None else str(sink.store.partial_path)},
    )
    compute_start, stats = time.perf_counter(), RunStats()
    finished = False
    try:
        step = len(done_before)
        runs = run_tasks(
            tasks,
            job_id,
            config.cluster,
            session,
            stats=stats,
            resume_hint=_resume_hint(sink),
        )
        with contextlib.closing(runs):
            for result in runs:
                labels = sink.accept(result)
                step += 1
                yield Progress(
                    step,
                    len(keys),
                    f"Block {step}/{len(keys)}",
                    data={"region": result.box, "labels": labels},
                )
        outputs = sink.finish(
            keys, model.card.phases, volume.voxel_size, volume.unit, config.overwrite
        )
        finished = True
    finally:
        if not finished:
            sink.discard()
    seconds = time.perf_counter() - compute_start
    timing = {
        "seconds": time.perf_counter() - started,
        "compute_seconds": seconds,
        "voxels_per_second": sum(int(np.prod(b.shape)) for b in todo) / max(seconds, 1e-9),
        "blocks": float(len(keys)),
        "blocks_resumed": float(len(done_before)),
    }
    if session is not None:
        timing["bytes_received"] = float(stats.bytes_received)
    notes = _stack_notes(volume, plan, config.model)  # after the blocks: start-up reads stay two
    return _result(outputs, volume, config, model, plan, timing, notes)


def _stack_notes(volume: InputVolume, plan: Plan, model) -> list[str]:
    """A note when a model that reads neighbouring slices runs over a stack of unrelated
    images (it mixes them; the 2D model reads one slice at a time)."""
    if plan.context == 1 or len(plan.axes) != 1:
        return []
    data = np.moveaxis(volume.data, plan.axes[0], 0)  # the slices the model reads together
    if (r := unrelated_slices(data)) is None:
        return []
    flat = flat_for(model)
    return [
        f"neighbouring slices of the input look unrelated {correlation_evidence(r)}, but the "
        f"model reads {plan.context} neighbouring slices and mixed them: for separate images, "
        f"segment with the {flat} model (--model {flat}), which reads one slice at a time."
    ]


def _check_cluster_paths(
    session: ClusterSession, volume: InputVolume, sink: MemorySink | StoreSink
) -> None:
    """The workers read the input file and write the store themselves: check they can."""
    if volume.path is not None and hasattr(volume.data, "dask"):
        session.check_readable(volume.path, "the input")
    store = sink.store
    if store is None:
        return
    from ..names import LABELS_ARRAY

    try:
        for folder in (store.partial_path / LABELS_ARRAY, store.partial_path / ".battery_seg"):
            session.check_writable(folder, f"into the output {store.partial_path}")
    except BatterySegError:
        if not store.resumed:
            store.abort()  # nothing written yet: leave nothing behind
        raise


def _resume_hint(sink: MemorySink | StoreSink) -> str:
    if sink.store is None:
        return "Nothing was kept; run the job again."
    return (
        f"The blocks already written are kept in {sink.store.partial_path}: run the same "
        "command again to continue from them."
    )


def _result(
    outputs: tuple[Any, Any, Any],
    volume: InputVolume,
    config: SegmentConfig,
    model: PreparedModel,
    plan: Plan,
    timing: dict[str, float],
    notes: list[str],
) -> SegmentResult:
    labels, probabilities, uncertainty = outputs
    return SegmentResult(
        labels=labels,
        phases=model.card.phases,
        voxel_size=volume.voxel_size,
        unit=volume.unit,
        probabilities=probabilities,
        uncertainty=uncertainty,
        context=plan.context,
        axis="zyx" if config.triplanar else config.axis,
        precision=plan.precision,
        backend=plan.backend,
        timing=timing,
        notes=notes,
    )


def segment(
    image: Any,
    config: SegmentConfig | None = None,
    *,
    voxel_size: Any = None,
    on_progress: Any = None,
) -> SegmentResult:
    """Run :func:`segment_job` to the end (``on_progress`` receives each event).

    Examples
    --------
    >>> result = segment(volume, SegmentConfig(model="model.pt", triplanar=True))  # doctest: +SKIP
    >>> on_cluster = SegmentConfig(model="model.pt", output="labels.zarr",
    ...                            cluster=ClusterOptions(scheduler="tcp://10.0.0.5:8786"))
    """
    return run_job(segment_job(image, config, voxel_size=voxel_size), on_progress)


def _tasks(
    job_id: str,
    volume: InputVolume,
    config: SegmentConfig,
    model: PreparedModel,
    plan: Plan,
    blocks: list[Block],
    store: Any,
) -> list[BlockTask]:
    """One task per block (each names the model by path and hash; none holds the network)."""
    job = BlockJob(
        job_id=job_id,
        model=model.source,
        device=config.device,
        precision=plan.precision,
        context=plan.context,
        n_phases=len(model.card.phases),
        grids=plan.grids,
        intensity=plan.intensity,
        batch_size=plan.batch_size,
        probabilities=config.probabilities,
        uncertainty=config.uncertainty,
        store=store,
        backend=plan.backend,
    )
    return [BlockTask(job, b, plan.inputs(volume.data, b)) for b in blocks]


def _open_sink(
    volume: InputVolume, config: SegmentConfig, model: PreparedModel, plan: Plan
) -> MemorySink | StoreSink:
    kind = config.output_kind
    n_phases = len(model.card.phases)
    uncertainty = config.uncertainty != "none"
    if kind != "zarr":
        voxels = math.prod(volume.shape)
        maps = 1 + n_phases * config.probabilities + uncertainty
        where = "in memory" if kind == "memory" else f"in memory before {config.output} is written"
        check_memory(
            voxels * maps,
            f"holding the {'x'.join(map(str, volume.shape))} result {where}",
            "Write the result to an OME-Zarr store (output='labels.zarr', -o labels.zarr), "
            "which is written block by block.",
        )
        tiff = None if kind == "memory" else Path(config.output)  # type: ignore[arg-type]
        if tiff is not None:
            check_disk(tiff, voxels, f"the TIFF {tiff}")
        return MemorySink(volume.shape, n_phases, config.probabilities, uncertainty, tiff)
    from ..io import LabelStore

    extras = {}
    if config.probabilities:
        extras["probabilities"] = ((n_phases, *volume.shape), "uint8")
    if uncertainty:
        extras["uncertainty"] = (volume.shape, "uint8")
    store = LabelStore.create_or_resume(
        config.output,
        shape=volume.shape,
        chunks=plan.block_shape,
        phases=model.card.phases,
        voxel_size=volume.voxel_size,
        unit=volume.unit,
        fingerprint=fingerprint(volume, config, model, plan),
        extras=extras,
        overwrite=config.overwrite,
    )
    return StoreSink(store)
