"""Ship a model's weights to every ``dask.distributed`` worker once, without a shared filesystem.

Tasks name the model by path and content hash (:class:`ModelFile`); the weights themselves travel
once per worker inside a worker plugin, which the scheduler also hands to workers that join later
(an adaptive dask-jobqueue cluster, a restarted worker). The plugin writes the checkpoint (a
bioimage.io package as a small zip of its YAML and weights) into the worker's local directory;
the worker's predictor cache then loads it once, on the first block.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ..cluster import ClusterSession
from ._predictor import InMemoryModel, ModelFile, forget_model_copy, register_model_copy

__all__ = ["ModelPlugin", "share_model"]


class ModelPlugin(WorkerPlugin):
    """Carries a checkpoint's bytes to each worker and registers the local copy there."""

    def __init__(self, sha256: str, payload: bytes, job_id: str) -> None:
        self.sha256 = sha256
        self.payload = payload
        self.name = f"battery-seg-model-{sha256[:16]}-{job_id[:8]}"

    def setup(self, worker: Any) -> None:
        folder = Path(worker.local_directory)
        path = folder / f"battery-seg-model-{self.sha256[:16]}.pt"
        if not path.is_file():
            tmp = folder / f".{path.name}.{os.getpid()}.tmp"
            tmp.write_bytes(self.payload)
            os.replace(tmp, path)
        register_model_copy(self.sha256, str(path), self.name)

    def teardown(self, worker: Any) -> None:
        forget_model_copy(self.sha256, self.name)


@contextlib.contextmanager
def share_model(
    session: ClusterSession, model: ModelFile | InMemoryModel, job_id: str
) -> Iterator[None]:
    """Register the weights of ``model`` on every worker of ``session`` for the job's duration."""
    if not isinstance(model, ModelFile):
        yield
        return
    from ..model import model_bytes

    payload = model_bytes(model.path)  # a package travels as its YAML and state dict
    plugin = ModelPlugin(model.sha256, payload, job_id)
    session.client.register_plugin(plugin, name=plugin.name)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            session.client.unregister_worker_plugin(plugin.name)
