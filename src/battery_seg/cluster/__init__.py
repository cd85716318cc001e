"""Run the block tasks of segmentation and analysis on a ``dask.distributed`` cluster.

The project does not schedule work itself: an existing ``dask.distributed`` scheduler (on a
workstation, a SLURM / PBS allocation via dask-jobqueue, a cloud) runs the task graphs.
:class:`ClusterOptions` says where (``scheduler`` address or scheduler file, or ``workers`` to
start a ``LocalCluster`` of worker processes on this machine), :func:`open_session` connects and
checks the cluster before any work starts (reachable within ``connect_timeout``, at least one
worker, napari-battery-seg importable on every worker, the input readable and the output writable
from the workers) and :func:`as_finished` hands back each finished task, stopping with a clear
message when every worker is gone or a task keeps killing its workers.

Importing this package does not import ``distributed``.

Examples
--------
>>> options = ClusterOptions(scheduler="tcp://10.0.0.5:8786", connect_timeout=5)
>>> options.distributed
True
>>> with open_session(options) as session:  # doctest: +SKIP
...     print(session.where)
the dask scheduler at tcp://10.0.0.5:8786 (8 workers)
"""

from __future__ import annotations

from ._futures import RunStats, as_finished
from ._options import LOCAL_SCHEDULERS, ClusterOptions
from ._session import ClusterSession, open_session

__all__ = [
    "LOCAL_SCHEDULERS",
    "ClusterOptions",
    "ClusterSession",
    "RunStats",
    "as_finished",
    "open_session",
]
