"""Connect to a ``dask.distributed`` cluster (or start worker processes here) and check it.

Every check runs before any work starts, so a bad cluster fails within seconds with a message
that names the problem and the fix, never a hang or a traceback from a worker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..checks import check_regular
from ..errors import BatterySegError
from ._options import ClusterOptions

__all__ = ["ClusterSession", "open_session"]

# Sent by value (its module is not importable anywhere), so it runs on workers where
# battery_seg itself cannot be imported and says so instead of failing to unpickle.
_IMPORT_CHECK = """
def battery_seg_on_worker():
    try:
        import battery_seg
    except Exception as exc:
        return "missing", "%s: %s" % (type(exc).__name__, exc)
    return "ok", battery_seg.__version__
"""


def _import_check() -> Any:
    namespace: dict[str, Any] = {"__name__": "battery_seg_worker_check"}
    exec(_IMPORT_CHECK, namespace)
    return namespace["battery_seg_on_worker"]


def _probe_writable(folder: str) -> str | None:
    """Run on a worker: why it cannot create a file in ``folder``, or None."""
    try:
        fd, name = tempfile.mkstemp(prefix=".battery-seg-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


def _probe_readable(path: str) -> str | None:
    """Run on a worker: why it cannot read ``path``, or None."""
    if not os.path.exists(path):
        return "it does not exist there"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


@dataclass(eq=False)
class ClusterSession:
    """A connected ``distributed.Client`` (and the ``LocalCluster`` started for the job).

    ``where`` describes the cluster in messages ("the dask scheduler at tcp://...").
    """

    client: Any
    where: str
    options: ClusterOptions
    cluster: Any = None

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    def workers(self) -> dict[str, dict[str, Any]]:
        """The scheduler's description of each worker, by address."""
        return dict(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def worker_count(self) -> int:
        return len(self.workers())

    def has_resource(self, name: str) -> bool:
        """Whether any worker advertises the resource ``name`` (``dask worker --resources``)."""
        return any(name in (w.get("resources") or {}) for w in self.workers().values())

    def check_package(self) -> None:
        """Raise unless every worker imports the same napari-battery-seg version as here."""
        replies = self.client.run(_import_check(), on_error="return")
        missing, other = {}, {}
        for worker, reply in replies.items():
            if isinstance(reply, BaseException):
                missing[worker] = f"{type(reply).__name__}: {reply}"
            elif reply[0] != "ok":
                missing[worker] = reply[1]
            elif reply[1] != __version__:
                other[worker] = reply[1]
        if missing:
            reason = next(iter(missing.values()))
            raise BatterySegError(
                f"napari-battery-seg cannot be imported on {_list(missing)} of {self.where} "
                f"({reason}). Install napari-battery-seg {__version__} on the workers (in the "
                "Python environment that runs 'dask worker') and start them again."
            )
        if other:
            raise BatterySegError(
                f"{_list(other)} of {self.where} run napari-battery-seg "
                f"{next(iter(other.values()))}, this machine runs {__version__}. Install the same "
                "version on the workers, so that every block is computed the same way."
            )

    def check_readable(self, path: str | os.PathLike, what: str) -> None:
        """Raise unless every worker can read ``path`` (an input read by the tasks)."""
        self._refuse_failed(
            _probe_readable,
            path,
            f"cannot read {what} {path}",
            "Put it on a filesystem every worker mounts at the same path (e.g. a shared "
            "/scratch or /project folder) and give that path.",
        )

    def check_writable(self, folder: str | os.PathLike, what: str) -> None:
        """Raise unless every worker can create files in ``folder`` (where tasks write)."""
        self._refuse_failed(
            _probe_writable,
            folder,
            f"cannot write {what}",
            "Write the output to a folder every worker can write at the same path (a shared "
            "filesystem, with permissions for the user the workers run as).",
        )

    def _refuse_failed(self, probe, path: str | os.PathLike, problem: str, fix: str) -> None:
        """Run ``probe`` on ``path`` on every worker; raise naming those it failed on."""
        failed = self._probe(probe, str(Path(path).resolve()))
        if failed:
            raise BatterySegError(
                f"{_list(failed)} of {self.where} {problem} ({next(iter(failed.values()))}). {fix}"
            )

    def _probe(self, probe: Any, path: str) -> dict[str, str]:
        replies = self.client.run(probe, path, on_error="return")
        return {
            worker: (
                f"{type(reply).__name__}: {reply}" if isinstance(reply, BaseException) else reply
            )
            for worker, reply in replies.items()
            if reply is not None
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=10)


def _list(workers: dict[str, Any]) -> str:
    names = sorted(workers)
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"the worker{'s' * (len(names) != 1)} {shown}"


@contextlib.contextmanager
def open_session(options: ClusterOptions) -> Iterator[ClusterSession | None]:
    """Connect to the cluster ``options`` name (``None`` for dask's local schedulers).

    Starts a ``LocalCluster`` of ``options.workers`` processes when asked to, checks that the
    workers can import napari-battery-seg, and closes everything on exit.
    """
    if not options.distributed:
        yield None
        return
    session = _start_here(options) if options.workers is not None else _connect(options)
    try:
        session.check_package()
        yield session
    finally:
        session.close()


def _connect(options: ClusterOptions) -> ClusterSession:
    from distributed import Client

    timeout, file = options.connect_timeout, options.scheduler_file
    address = options.scheduler if file is None else _scheduler_address(file)
    try:
        client = Client(address=address, timeout=f"{timeout}s", set_as_default=False)
    except Exception as exc:  # OSError/TimeoutError when unreachable, ValueError when malformed
        raise BatterySegError(
            f"Could not connect to the dask scheduler at {options.scheduler} within {timeout:g} s "
            f"({type(exc).__name__}: {exc}). Check the address (e.g. tcp://host:8786) and that "
            "the scheduler is running and reachable from here, or leave the scheduler empty to "
            "run on this machine."
        ) from None
    address = client.scheduler.address
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError):
        client.close(timeout=5)
        raise BatterySegError(
            f"The dask scheduler at {address} has no workers (none joined within {timeout:g} s). "
            f"Start workers with 'dask worker {address}' (or scale up the dask-jobqueue "
            "cluster) and run again."
        ) from None
    count = len(client.scheduler_info(n_workers=-1).get("workers", {}))
    where = f"the dask scheduler at {address} ({count} worker{'s' * (count != 1)})"
    return ClusterSession(client, where, options)


def _scheduler_address(file: Path) -> str:
    """The address a scheduler file (``dask scheduler --scheduler-file``) gives, checked here:
    distributed would retry an unreadable file until its timeout, then fail from a thread."""
    check_regular(file, "scheduler file")
    if not file.is_file():
        what = "is a folder, not" if file.is_dir() else "does not exist; it should be"
        raise BatterySegError(
            f"The scheduler file {file} {what} the JSON file that 'dask scheduler "
            f"--scheduler-file {file}' writes. Start the scheduler that way first, or give its "
            "address (tcp://host:8786)."
        )
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
        address = info["address"]
        if not isinstance(address, str) or not address:
            raise TypeError
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise BatterySegError(
            f"{file} is not a dask scheduler file (a JSON object with the scheduler's "
            f"'address'; {type(exc).__name__}). Give the file that 'dask scheduler "
            "--scheduler-file' wrote, or the scheduler's address (tcp://host:8786)."
        ) from None
    return address


# For the worker processes started here:
# * distributed sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns glibc's adaptive mmap
#   threshold off: every large temporary array is then mapped and faulted in anew, and blocks
#   segment about half as fast (measured). One torch thread per worker stays (OMP_NUM_THREADS).
# * a block's memory is working memory, not results dask could spill, so a worker paused at 80 %
#   of its limit would never resume: no pausing or spilling, the limit is where the nanny
#   restarts the worker (95 %), and a block that keeps exceeding it fails with a message.
_LOCAL_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": False,
}


def _start_here(options: ClusterOptions) -> ClusterSession:
    import dask
    from distributed import Client, LocalCluster

    count = int(options.workers)  # type: ignore[arg-type]
    limit = options.memory_limit if options.memory_limit is not None else "auto"
    try:
        with dask.config.set(_LOCAL_WORKER_CONFIG):
            cluster = LocalCluster(
                n_workers=count,
                threads_per_worker=1,
                processes=True,
                memory_limit=limit,
                dashboard_address=":0",
                silence_logs=logging.ERROR,  # a free port, no warning
            )
    except Exception as exc:
        raise BatterySegError(
            f"Could not start {count} dask worker processes on this machine "
            f"({type(exc).__name__}: {exc}). Use fewer workers or a smaller memory limit, or "
            "leave --workers out to run in threads."
        ) from None
    client = Client(cluster, set_as_default=False)
    each = f", memory limit {options.memory_limit} each" if options.memory_limit else ""
    where = f"{count} worker process{'es' * (count != 1)} on this machine{each}"
    return ClusterSession(client, where, options, cluster)
