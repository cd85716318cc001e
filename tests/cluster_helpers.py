"""A real dask scheduler and dask workers as subprocesses on 127.0.0.1, for the cluster tests.

Each process runs in its own process group (``start_new_session``) so that a kill reaches the
nanny and its worker together, and :meth:`DaskProcesses.close` never leaves one behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

DASK = Path(sys.executable).with_name("dask")
NOBODY = 65534

# A worker process in which battery_seg cannot be imported (as on a machine without it).
_NO_PACKAGE = """
import sys

class _Hidden:
    def find_spec(self, name, path=None, target=None):
        if name == "battery_seg" or name.startswith("battery_seg."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, _Hidden())
sys.argv = ["dask-worker", *sys.argv[1:]]
from distributed.cli.dask_worker import main
main()
"""


class DaskProcesses:
    """``dask scheduler`` plus any number of ``dask worker`` processes, killed at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.scheduler_file = self.folder / "scheduler.json"
        self.workers: dict[str, subprocess.Popen] = {}
        self.scheduler: subprocess.Popen | None = None
        self._count = 0

    def _spawn(self, name: str, command: list[str], **kwargs) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        kwargs.setdefault("cwd", self.folder)
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            **kwargs,
        )
        log.close()
        return process

    def start_scheduler(self, timeout: float = 60) -> str:
        self.scheduler = self._spawn(
            "scheduler",
            [
                str(DASK),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(self.scheduler_file),
            ],
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.scheduler_file.is_file():
                try:
                    return self.address
                except (ValueError, KeyError):
                    pass
            if self.scheduler.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"dask scheduler did not start: {self.log('scheduler')}")

    @property
    def address(self) -> str:
        return json.loads(self.scheduler_file.read_text())["address"]

    def start_worker(self, kind: str = "normal") -> str:
        """Start a worker: ``normal``, ``no-package`` (battery_seg hidden), ``small-memory``
        or ``nobody`` (another user)."""
        self._count += 1
        name = f"worker-{self._count}-{kind}"
        options = ["--nthreads", "1", "--no-dashboard", "--name", name]
        if kind == "normal":
            command = [
                str(DASK),
                "worker",
                "--scheduler-file",
                str(self.scheduler_file),
                "--nworkers",
                "1",
                "--local-directory",
                str(self.folder / name),
                *options,
            ]
            self.workers[name] = self._spawn(name, command)
        elif kind == "no-package":
            command = [sys.executable, "-c", _NO_PACKAGE, self.address, "--no-nanny", *options]
            self.workers[name] = self._spawn(name, command)
        elif kind == "small-memory":  # dask pauses it once torch is imported (no nanny restart)
            command = [
                str(DASK),
                "worker",
                "--scheduler-file",
                str(self.scheduler_file),
                "--no-nanny",
                "--memory-limit",
                "200MB",
                *options,
            ]
            self.workers[name] = self._spawn(name, command)
        elif kind == "nobody":  # another user, as on a cluster whose workers run as one
            command = [
                "setpriv",
                f"--reuid={NOBODY}",
                f"--regid={NOBODY}",
                "--clear-groups",
                str(DASK),
                "worker",
                self.address,
                "--no-nanny",
                "--local-directory",
                f"/tmp/battery-seg-nobody-{os.getpid()}",
                *options,
            ]
            self.workers[name] = self._spawn(name, command, cwd="/tmp")  # ours is private
        else:
            raise ValueError(kind)
        return name

    def wait_for_workers(self, count: int, timeout: float = 90) -> None:
        from distributed import Client

        with Client(self.address, timeout="30s", set_as_default=False) as client:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if len(client.scheduler_info(n_workers=-1)["workers"]) == count:
                    return
                time.sleep(0.1)
        raise RuntimeError(f"expected {count} workers; logs: {self.logs()}")

    def set_workers(self, count: int, kind: str = "normal") -> None:
        """Exactly ``count`` workers of ``kind`` (others are killed)."""
        for name in [n for n in self.workers if not n.endswith(f"-{kind}")]:
            self.kill(name)
        live = [n for n in self.workers if self.workers[n].poll() is None]
        for name in live[count:]:
            self.kill(name)
        for _ in range(count - min(count, len(live))):
            self.start_worker(kind)
        self.wait_for_workers(count)

    def kill(self, name: str) -> None:
        """``kill -9`` a worker (nanny and worker process together)."""
        process = self.workers.pop(name)
        _kill_group(process, signal.SIGKILL)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.is_file() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.log(n)}" for n in ["scheduler", *self.workers])

    def close(self) -> None:
        processes = [*self.workers.values(), *([self.scheduler] if self.scheduler else [])]
        for process in processes:
            _kill_group(process, signal.SIGTERM, wait=False)
        deadline = time.monotonic() + 3
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(process, signal.SIGKILL)
        self.workers.clear()


@contextmanager
def running_cluster(folder: Path, workers: int = 0) -> Iterator[DaskProcesses]:
    """A started scheduler (and ``workers`` workers), closed on exit whatever happens."""
    processes = DaskProcesses(folder)
    try:
        processes.start_scheduler()
        if workers:
            processes.set_workers(workers)
        yield processes
    finally:
        processes.close()


def _kill_group(process: subprocess.Popen, sig: int, wait: bool = True) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    if wait:
        process.wait(30)


def tiny_model(path: Path, seed: int = 4) -> Path:
    """A 2.5D U-Net (base 4, depth 2) taught for a few steps to threshold grey levels."""
    import torch

    from battery_seg.model import ModelCard, UNetConfig, save_model
    from battery_seg.phases import PhaseSet

    torch.manual_seed(seed)
    card = ModelCard(
        PhaseSet.parse("nmc"),
        context=3,
        architecture=UNetConfig(in_channels=3, n_phases=3, base_channels=4, depth=2),
    )
    network = card.build()
    optimizer = torch.optim.Adam(network.parameters(), lr=0.02)
    for _ in range(30):
        x = torch.rand(8, 3, 1, 1) * torch.rand(8, 3, 32, 32)
        target = (x[:, 1] * 3 / x.amax((1, 2, 3))[:, None, None]).long().clamp(max=2)
        loss = torch.nn.functional.cross_entropy(network(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return save_model(path, network.eval(), card)


def write_image(path: Path, shape: tuple[int, int, int], seed: int = 0) -> Path:
    """A uint16 OME-less Zarr volume of smooth random grey levels (several phases)."""
    import zarr

    rng = np.random.default_rng(seed)
    image = (rng.random(shape).cumsum(1).cumsum(2) * 40).astype(np.uint16)
    array = zarr.create_array(str(path), shape=shape, chunks=(8, 64, 64), dtype=image.dtype)
    array[:] = image
    return path
