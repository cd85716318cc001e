"""Slabs of a lazy label volume along axis 0, worked on by a pool of threads, results in order.

A slab spans whole planes (Y, X), so a measurement that needs neighbours only has to stitch
consecutive slabs along axis 0 (their last and first planes). Slab edges follow the volume's
chunks along axis 0 (a zarr chunk row is read once) and are split further when a chunk row is
larger than ``max_voxels``, which bounds memory to a few slabs at once. Each thread reads its
slab with dask's synchronous scheduler (no nested thread pools); reading, decompressing and the
numpy work release the GIL, so the cores work in parallel.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = ["SLAB_VOXELS", "map_slabs", "slab_bounds", "worker_count"]

SLAB_VOXELS = 1 << 24  # 16 M voxels: 16 MB as uint8, ~200 MB of temporaries in the workers


def worker_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def slab_bounds(chunks: tuple[int, ...], plane_voxels: int, max_voxels: int) -> list[tuple]:
    """(start, stop) of each slab: chunk rows along axis 0, split to at most ``max_voxels``."""
    most = max(1, max_voxels // max(plane_voxels, 1))
    bounds = []
    start = 0
    for size in chunks:
        pieces = -(-size // most)
        edges = np.linspace(start, start + size, pieces + 1).round().astype(int)
        bounds.extend(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
        start += size
    return bounds


def map_slabs(
    encoded,
    function: Callable[[np.ndarray], Any],
    *,
    max_voxels: int | None = None,
    workers: int | None = None,
    halo: int | None = None,
) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(number, total, function(slab))`` for every slab of ``encoded``, in order.

    ``encoded`` is a dask array (Z, Y, X). At most ``workers + 1`` slabs are in flight; closing
    the generator cancels the slabs not yet started. With ``halo``, each slab comes with up to
    ``halo`` planes of its neighbours on either side, as ``function(block, own, first)``: the
    slab's own planes are ``block[own[0]:own[1]]`` and ``block`` starts at plane ``first``.
    """
    workers = workers or worker_count()
    plane = int(np.prod(encoded.shape[1:]))
    bounds = slab_bounds(encoded.chunks[0], plane, max_voxels or SLAB_VOXELS)
    if not bounds:
        return

    def work(start: int, stop: int):
        if halo is None:
            return function(np.asarray(encoded[start:stop].compute(scheduler="synchronous")))
        first, last = max(0, start - halo), min(encoded.shape[0], stop + halo)
        block = np.asarray(encoded[first:last].compute(scheduler="synchronous"))
        return function(block, (start - first, stop - first), first)

    pool = ThreadPoolExecutor(workers, thread_name_prefix="battery-seg-slab")
    try:
        todo = iter(bounds)
        pending = deque(pool.submit(work, *b) for b in itertools.islice(todo, workers + 1))
        number = 0
        while pending:
            result = pending.popleft().result()
            following = next(todo, None)
            if following is not None:
                pending.append(pool.submit(work, *following))
            number += 1
            yield number, len(bounds), result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
