"""Where a job runs: dask's local schedulers, an existing cluster, or worker processes here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BatterySegError

__all__ = ["LOCAL_SCHEDULERS", "ClusterOptions"]

LOCAL_SCHEDULERS = {
    "threads": "threads",
    "sync": "sync",
    "synchronous": "sync",
    "processes": "processes",
}


@dataclass(frozen=True)
class ClusterOptions:
    """Where the tasks of a job run.

    Parameters
    ----------
    scheduler
        ``None`` (this machine), one of dask's local schedulers (``"threads"``, ``"sync"``,
        ``"processes"``), the address of a ``dask.distributed`` scheduler
        (``"tcp://host:8786"``, ``"host:8786"``) or the path of a scheduler file (``.json``,
        written by ``dask scheduler --scheduler-file``).
    workers
        With no scheduler: start a ``distributed.LocalCluster`` of this many worker processes
        (one thread each) on this machine for the job. With a local scheduler: its pool size.
    memory_limit
        Memory per worker process started with ``workers`` (``"2GiB"``, ``"1.5 GB"``, bytes);
        ``None``: dask's default (the machine's memory shared between the workers).
    connect_timeout
        Seconds to wait for the scheduler (and for its first worker) before giving up.

    Examples
    --------
    >>> ClusterOptions(workers=2, memory_limit="2GiB").distributed
    True
    >>> ClusterOptions(scheduler="threads", workers=2).local_scheduler
    'threads'
    """

    scheduler: str | None = None
    workers: int | None = None
    memory_limit: str | int | None = None
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        scheduler = self.scheduler
        if scheduler is not None:
            scheduler = str(scheduler).strip() or None
        object.__setattr__(self, "scheduler", scheduler)
        if self.workers is not None:
            if isinstance(self.workers, bool) or int(self.workers) < 1:
                raise BatterySegError(f"workers must be a positive number, got {self.workers!r}.")
            object.__setattr__(self, "workers", int(self.workers))
        if self.remote and self.workers is not None:
            raise BatterySegError(
                f"Give either a scheduler address ({scheduler}: an existing cluster, whose "
                f"workers are started there) or a number of workers ({self.workers}: started on "
                "this machine for the job), not both."
            )
        if self.memory_limit is not None:
            self._check_memory_limit()
        timeout = float(self.connect_timeout)
        if not math.isfinite(timeout) or timeout <= 0:
            raise BatterySegError(
                f"connect_timeout must be a positive number of seconds, got {self.connect_timeout}."
            )
        object.__setattr__(self, "connect_timeout", timeout)

    @classmethod
    def of(cls, value: ClusterOptions | Mapping[str, Any] | None) -> ClusterOptions:
        """The options a configuration's ``cluster`` field gives: options, their fields as a
        mapping, or ``None`` (threads on this machine)."""
        if value is None:
            return cls()
        if isinstance(value, Mapping):
            return cls(**value)
        if not isinstance(value, cls):
            raise BatterySegError(
                f"cluster must be a ClusterOptions (battery_seg.cluster), a mapping of its "
                f"fields or None, got {value!r}."
            )
        return value

    def _check_memory_limit(self) -> None:
        from dask.utils import parse_bytes

        if self.workers is None or self.local_scheduler is not None:
            raise BatterySegError(
                "A memory limit applies to worker processes started on this machine: give "
                "--workers N with it (on an existing cluster, start the workers with "
                "'dask worker --memory-limit')."
            )
        try:
            limit = parse_bytes(self.memory_limit)
        except (ValueError, TypeError):
            limit = 0
        if limit <= 0:
            raise BatterySegError(
                f"Cannot read the memory limit {self.memory_limit!r}; write a size per worker "
                "such as 2GiB, 1500MB or a number of bytes."
            )

    @property
    def local_scheduler(self) -> str | None:
        """dask's local scheduler to use, or ``None`` for a ``dask.distributed`` cluster."""
        if self.scheduler is None:
            return None if self.workers is not None else "threads"
        return LOCAL_SCHEDULERS.get(self.scheduler.lower())

    @property
    def remote(self) -> bool:
        """Whether an existing cluster is named (an address or a scheduler file)."""
        return self.scheduler is not None and self.scheduler.lower() not in LOCAL_SCHEDULERS

    @property
    def distributed(self) -> bool:
        """Whether the job runs on ``dask.distributed`` (an existing cluster or one made here)."""
        return self.local_scheduler is None

    @property
    def scheduler_file(self) -> Path | None:
        """The scheduler file named by ``scheduler``, if it names one."""
        if self.remote and self.scheduler.lower().endswith(".json"):  # type: ignore[union-attr]
            return Path(self.scheduler).expanduser()  # type: ignore[arg-type]
        return None
