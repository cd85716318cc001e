"""Volume fractions and through-thickness profiles, counted block by block on dask.

Each block of the label volume is mapped to phase indices 0..K+1 (0 = unlabelled or outside the
region of interest, 1..K = phases, K+1 = a value the phase set does not know) and counted with
``np.bincount``; only the counts travel, so a volume far larger than memory works. Blocks are
processed whole chunk rows along axis 0 at a time (rows grouped until every core has blocks),
which gives progress events and cancel points, or all at once as futures on a
``dask.distributed`` cluster (each worker reads its chunks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BatterySegError
from ..jobs import Job, Progress, run_job
from ..phases import PhaseSet
from ._slabs import worker_count

__all__ = [
    "PhaseCounts",
    "as_dask",
    "count_phases_job",
    "encoded_view",
    "map_phases",
    "phase_lookup",
    "volume_fraction_profiles",
    "volume_fractions",
]

_TARGET_BLOCK_VOXELS = 1 << 23  # ~8 M voxels (8 MB as uint8) per block for in-memory input


@dataclass(frozen=True)
class PhaseCounts:
    """Voxel counts per phase, in total and per slice along each counted axis.

    ``counts[0]`` are unlabelled voxels (label 0 or outside the region of interest),
    ``counts[1..K]`` the phases, ``counts[K+1]`` voxels with values the phase set does not know.
    """

    phases: PhaseSet
    counts: np.ndarray
    profiles: dict[int, np.ndarray]

    @property
    def labelled(self) -> int:
        return int(self.counts[1 : len(self.phases) + 1].sum())

    def volume_fractions(self) -> dict[str, float]:
        """Fraction of the labelled voxels in each phase (unlabelled voxels excluded)."""
        total = self.labelled
        return {
            name: (float(self.counts[i + 1] / total) if total else float("nan"))
            for i, name in enumerate(self.phases.names)
        }

    def profile(self, axis: int) -> dict[str, np.ndarray]:
        """Per-slice volume fractions along ``axis``; NaN where a slice holds no labelled voxel."""
        counts = self.profiles[axis][:, 1 : len(self.phases) + 1].astype(np.float64)
        total = counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            fractions = counts / total[:, None]
        return {name: fractions[:, i] for i, name in enumerate(self.phases.names)}


def phase_lookup(phases: PhaseSet, dtype: np.dtype) -> np.ndarray:
    """uint8 table from label values to phase index 0..K, K+1 for values not in the set.

    Without file values (``NAME=VALUE``) 0 maps to 0 (unlabelled); with them every value that is
    no phase's file value is unknown. The table covers 0..max known value (or the whole range of
    an 8/16-bit dtype); :func:`map_phases` treats values beyond it as unknown.
    """
    unknown = len(phases) + 1
    values = [p.value if p.source_value is None else p.source_value for p in phases]
    top = max(values)
    if np.dtype(dtype).kind == "u" and np.dtype(dtype).itemsize <= 2:
        top = max(top, int(np.iinfo(dtype).max))
    lut = np.full(top + 1, unknown, dtype=np.uint8)
    if not phases.has_source_values:
        lut[0] = 0
    for index, value in enumerate(values, start=1):
        lut[value] = index
    return lut


def map_phases(block: np.ndarray, lut: np.ndarray, unknown: int) -> np.ndarray:
    """Phase indices 0..K+1 of a block of label values (see :func:`phase_lookup`)."""
    block = np.asarray(block)
    if block.dtype.kind not in "ui":
        raise BatterySegError(
            f"Labels must be integers, got {block.dtype}; convert the label image to an "
            "integer type (e.g. uint8) or open the label file rather than the greyscale image."
        )
    top = len(lut) - 1
    if block.dtype.kind == "u" and np.iinfo(block.dtype).max <= top:
        return lut[block]
    inside = (block >= 0) & (block <= top)
    return np.where(inside, lut[np.clip(block, 0, top)], np.uint8(unknown)).astype(np.uint8)


def as_dask(array, chunks: Sequence[int] | None = None):
    """A dask view of a numpy, zarr or dask array (zarr chunking is kept)."""
    import dask.array as da

    if isinstance(array, da.Array):
        return array if chunks is None else array.rechunk(chunks)
    if chunks is None:
        native = getattr(array, "chunks", None)
        if isinstance(native, tuple) and all(isinstance(c, int) for c in native):
            chunks = native
        else:
            shape = np.shape(array)
            plane = int(np.prod(shape[1:])) or 1
            chunks = (max(1, _TARGET_BLOCK_VOXELS // plane), *shape[1:])
    return da.from_array(array, chunks=tuple(chunks), asarray=True, lock=False)


def encoded_view(labels, phases: PhaseSet | str | None, roi=None):
    """Lazy dask array of phase indices (uint8 0..K+1, 0 outside ``roi``) of ``labels``.

    ``roi`` is a box ``((z0, z1), (y0, y1), (x0, x1))`` (the view is cropped to it), a boolean
    array of the labels' shape (voxels outside become 0) or ``None``.
    """
    phases = PhaseSet.parse(phases)
    data, inside = _labels_in_roi(labels, roi)
    lut = phase_lookup(phases, data.dtype)
    encoded = data.map_blocks(map_phases, lut, len(phases) + 1, dtype=np.uint8)
    if inside is not None:
        encoded = (encoded * inside.rechunk(encoded.chunks)).astype(np.uint8)
    return encoded


def _labels_in_roi(labels, roi):
    data = as_dask(labels)
    if data.ndim != 3:
        raise BatterySegError(
            f"Labels must be a 3D volume (Z, Y, X), got shape {data.shape}; add a leading axis "
            "of length 1 to a 2D image."
        )
    if data.dtype.kind not in "ui":
        map_phases(np.zeros(1, data.dtype), np.zeros(1, np.uint8), 1)  # raises the dtype message
    if roi is None:
        return data, None
    if isinstance(roi, (tuple, list)) and len(roi) == 3 and all(len(r) == 2 for r in roi):
        for (start, stop), size in zip(roi, data.shape, strict=True):
            if not 0 <= int(start) < int(stop) <= size:
                raise BatterySegError(
                    f"Region of interest {[list(r) for r in roi]} does not fit the volume of shape "
                    f"{data.shape}; give (start, stop) ranges inside it."
                )
        return data[tuple(slice(int(a), int(b)) for a, b in roi)], None
    mask = as_dask(roi)
    if mask.shape != data.shape:
        raise BatterySegError(
            f"The region-of-interest mask has shape {mask.shape} but the labels have "
            f"{data.shape}; give a mask of the same shape."
        )
    return data, mask.astype(bool)


def _block_counts(mapped, nbins: int, axes: tuple[int, ...]):
    mapped = np.asarray(mapped)
    cz, cy, cx = mapped.shape
    per_z = np.zeros((cz, nbins), dtype=np.int64)
    per_y = np.zeros((cy, nbins), dtype=np.int64) if 1 in axes else None
    per_x = np.zeros((cx, nbins), dtype=np.int64) if 2 in axes else None
    rows = (np.arange(cy, dtype=np.intp) * nbins)[:, None]
    cols = (np.arange(cx, dtype=np.intp) * nbins)[None, :]
    for i in range(cz):
        plane = mapped[i]
        per_z[i] = np.bincount(plane.ravel(), minlength=nbins)
        if per_y is not None:
            per_y += np.bincount((rows + plane).ravel(), minlength=cy * nbins).reshape(cy, nbins)
        if per_x is not None:
            per_x += np.bincount((cols + plane).ravel(), minlength=cx * nbins).reshape(cx, nbins)
    return per_z, per_y, per_x


def count_phases_job(
    labels,
    phases: PhaseSet | str | None,
    *,
    roi=None,
    axes: Sequence[int] = (0, 1, 2),
    cluster=None,
) -> Job[PhaseCounts]:
    """Count voxels per phase in total and per slice along ``axes``, block by block.

    Parameters
    ----------
    labels : numpy, dask or zarr array (Z, Y, X)
        Label values of ``phases``.
    phases : PhaseSet or str
        Phase set (``"pore=0,nmc=85,cbd=170"`` maps foreign file values).
    roi : box ``((z0, z1), (y0, y1), (x0, x1))``, boolean array of ``labels``' shape, or None
        Only voxels inside are counted.
    axes : sequence of int
        Axes along which per-slice counts (profiles) are kept.
    cluster : battery_seg.cluster.ClusterSession, optional
        Count on this ``dask.distributed`` cluster: every block is a task reading its chunk
        where it runs; only the counts come back. ``None``: dask's threads, whole chunk rows
        along axis 0 at a time.

    Raises
    ------
    BatterySegError
        Label values outside the phase set (listed, with the ``--phases`` fix).
    """
    import dask

    phases = PhaseSet.parse(phases)
    encoded = encoded_view(labels, phases, roi)
    nbins = len(phases) + 2
    axes = tuple(sorted(set(axes)))
    per_axis = {a: np.zeros((encoded.shape[a], nbins), np.int64) for a in range(3)}
    edges = [np.cumsum((0, *chunks)) for chunks in encoded.chunks]
    blocks = encoded.to_delayed()
    index = list(np.ndindex(*blocks.shape))

    def add(position: tuple[int, ...], counts: tuple) -> None:
        for axis, (block_index, count) in enumerate(zip(position, counts, strict=True)):
            if count is not None:
                span = slice(edges[axis][block_index], edges[axis][block_index + 1])
                per_axis[axis][span] += count

    tasks = [dask.delayed(_block_counts)(blocks[i], nbins, axes) for i in index]
    if cluster is not None:
        yield from _count_on_cluster(cluster, tasks, index, add)
    else:
        batches = _row_batches(index, 2 * worker_count())
        for number, batch in enumerate(batches, start=1):
            results = dask.compute(*[tasks[n] for n in batch])
            for n, counts in zip(batch, results, strict=True):
                add(index[n], counts)
            yield Progress(
                number, len(batches), f"counting phases: part {number} of {len(batches)}"
            )
    counts = per_axis[0].sum(axis=0)
    if counts[-1]:
        raise BatterySegError(unknown_values_message(labels, phases, roi))
    return PhaseCounts(phases, counts, {a: per_axis[a] for a in axes})


def _row_batches(index: list[tuple[int, ...]], at_least: int) -> list[list[int]]:
    """Whole chunk rows along axis 0, grouped until a group has ``at_least`` blocks (cores busy)."""
    batches: list[list[int]] = [[]]
    for n, position in enumerate(index):
        starts_row = n > 0 and position[0] != index[n - 1][0]
        if starts_row and len(batches[-1]) >= at_least:
            batches.append([])
        batches[-1].append(n)
    return batches


def _count_on_cluster(cluster, tasks, index, add):
    """Every block as a future; progress per finished block, only counts come back."""
    from ..cluster import as_finished

    futures = cluster.client.compute(tasks)
    total = len(futures)
    hint = "Nothing was written; run the analysis again."
    for done, (n, counts) in enumerate(as_finished(cluster, futures, resume_hint=hint), 1):
        add(index[n], counts)
        yield Progress(done, total, f"counting phases: block {done} of {total}")


def unknown_values_message(labels, phases: PhaseSet, roi=None) -> str:
    """Error text listing the label values that are not in ``phases`` (one extra pass)."""
    import dask

    data, _ = _labels_in_roi(labels, roi)
    lut = phase_lookup(phases, data.dtype)
    unknown = len(phases) + 1

    def unknown_in(block):
        block = np.asarray(block)
        return np.unique(block[map_phases(block, lut, unknown) == unknown])

    found = dask.compute(*[dask.delayed(unknown_in)(b) for b in data.to_delayed().ravel()])
    values = np.unique(np.concatenate(found))
    shown = ", ".join(str(int(v)) for v in values[:20]) + (" ..." if values.size > 20 else "")
    return (
        f"Label values {shown} are not in the phase set ({phases._value_listing()}). Pass the "
        "phase set that matches the file, e.g. --phases pore=0,nmc=85,cbd=170 (NAME=VALUE pairs "
        "for the values the file uses)."
    )


def volume_fractions(labels, phases: PhaseSet | str | None, roi=None) -> dict[str, float]:
    """Volume fraction of each phase among the labelled voxels, counted chunk by chunk.

    Examples
    --------
    >>> labels = np.array([[[1, 1, 2, 0]]], dtype=np.uint8)
    >>> volume_fractions(labels, "pore,solid")
    {'pore': 0.6666666666666666, 'solid': 0.3333333333333333}
    """
    return run_job(count_phases_job(labels, phases, roi=roi, axes=())).volume_fractions()


def volume_fraction_profiles(
    labels, phases: PhaseSet | str | None, axis: int = 0, roi=None
) -> dict[str, np.ndarray]:
    """Per-slice volume fraction of each phase along ``axis`` (through-thickness for ``0``).

    Examples
    --------
    >>> labels = np.array([[[1, 1]], [[1, 2]]], dtype=np.uint8)
    >>> volume_fraction_profiles(labels, "pore,solid", axis=0)["pore"].tolist()
    [1.0, 0.5]
    """
    return run_job(count_phases_job(labels, phases, roi=roi, axes=(axis,))).profile(axis)
