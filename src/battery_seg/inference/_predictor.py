"""The network as a tile predictor: one cached copy per process, batched, fast on CPU and CUDA.

Dask tasks never carry the network: they carry a :class:`ModelFile` (path + SHA-256 of its
content) and each process loads it once into a module-level cache, so a
``dask.distributed`` worker process reads the checkpoint on its first block only. On a cluster
the checkpoint's bytes reach each worker once through a worker plugin (see :mod:`._shipping`),
which registers the worker's local copy here, so no shared filesystem is needed for the model.
A model that exists only in memory (:class:`InMemoryModel`, e.g. an analytic model in tests)
works with the local schedulers.

For inference the batch-norm layers are folded into the preceding convolutions (identical
results up to float rounding), the network runs channels-last, optionally under bfloat16 /
float16 autocast, always under ``torch.inference_mode``; on the CPU through OpenVINO when
:mod:`._backends` picks it.
"""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BatterySegError
from ._backends import CPU_LOCK, OpenVINOPredictor

if TYPE_CHECKING:
    import torch

    from ..model import ModelCard

__all__ = ["InMemoryModel", "ModelFile", "Predictor", "get_predictor", "resolve_device"]

_CACHE: dict[tuple, Predictor] = {}
_LOCK = threading.Lock()
_COPIES: dict[str, tuple[str, set[str]]] = {}  # sha256 -> (local copy, plugins holding it)
_COPIES_LOCK = threading.Lock()  # not _LOCK: _load runs while get_predictor holds that one
load_count = 0
"""How many checkpoint files this process has read (tests check: once per worker)."""
loaded_from: list[str] = []
"""The files this process read its models from (a worker's local copy on a cluster)."""


@dataclass(frozen=True)
class ModelFile:
    """A model on disk (checkpoint or bioimage.io package), identified by its path and the
    SHA-256 of its content (:func:`battery_seg.model.model_sha256`)."""

    path: str
    sha256: str

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> ModelFile:
        from ..model import model_sha256

        return cls(str(Path(path).resolve()), model_sha256(path))


@dataclass(frozen=True, eq=False)
class InMemoryModel:
    """A network that is not saved to a file, with the card saying what it predicts.

    Examples
    --------
    >>> from battery_seg.model import ModelCard, UNet, UNetConfig
    >>> from battery_seg.phases import PhaseSet
    >>> card = ModelCard(PhaseSet.parse("nmc"), architecture=UNetConfig(n_phases=3))
    >>> model = InMemoryModel(UNet(card.architecture), card)
    """

    network: Any
    card: ModelCard

    @property
    def sha256(self) -> str:
        """Hash of the weights (part of a job's fingerprint)."""
        import torch

        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in self.network.state_dict().items()}, buffer)
        return hashlib.sha256(buffer.getvalue()).hexdigest()


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when a GPU is visible to this process, else ``"cpu"``."""
    from ..checks import resolve_device as resolve

    return resolve(device, "segmentation")


def fuse_batchnorm(network: torch.nn.Module) -> torch.nn.Module:
    """Fold every ``Conv2d`` followed by ``BatchNorm2d`` (in a Sequential) into one conv."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in network.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in itertools.pairwise(names):
            conv, norm = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                module._modules[first] = fuse_conv_bn_eval(conv, norm)
                module._modules[second] = nn.Identity()
    return network


_AUTOCAST = {"bfloat16": "bfloat16", "float16": "float16"}


class Predictor:
    """Callable mapping ``(N, C, H, W)`` float32 tiles to ``(N, K, H, W)`` probabilities.

    :meth:`forward` does the same on tensors already on the device (the device-resident path).
    """

    backend = "torch"

    def __init__(self, network: torch.nn.Module, device: str, precision: str) -> None:
        import torch

        self.device = torch.device(device)
        self.precision = precision
        network = fuse_batchnorm(copy.deepcopy(network).eval()).to(self.device)
        self.network = network.to(memory_format=torch.channels_last)
        if self.device.type == "cuda":  # tiles have few shapes: let cuDNN pick its kernels
            torch.backends.cudnn.benchmark = True
        self.source: Any = None  # the network this predictor was made from

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities (float32, on the device) of tiles ``x`` already on the device."""
        import torch

        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.precision in _AUTOCAST:
                dtype = getattr(torch, _AUTOCAST[self.precision])
                with torch.autocast(self.device.type, dtype=dtype):
                    logits = self.network(x)
            else:
                logits = self.network(x)
            return torch.softmax(logits.float(), dim=1)

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(tiles, dtype=np.float32))
        if self.device.type != "cpu":
            return self.forward(x.to(self.device, non_blocking=True)).cpu().numpy()
        with CPU_LOCK:  # one network call at a time, with all the cores
            return np.ascontiguousarray(self.forward(x).numpy())


def register_model_copy(sha256: str, path: str, holder: str) -> None:
    """Record ``path`` as this process's copy of the model ``sha256`` (a worker plugin's)."""
    with _COPIES_LOCK:
        _COPIES.setdefault(sha256, (path, set()))[1].add(holder)


def forget_model_copy(sha256: str, holder: str) -> None:
    """``holder`` no longer needs the copy; it is forgotten when no holder is left."""
    with _COPIES_LOCK:
        _path, holders = _COPIES.get(sha256, ("", set()))
        holders.discard(holder)
        if not holders:
            _COPIES.pop(sha256, None)


def _load(source: ModelFile) -> torch.nn.Module:
    global load_count
    from ..model import load_model, model_sha256

    with _COPIES_LOCK:
        path = _COPIES.get(source.sha256, (source.path, set()))[0]
    if not Path(path).exists():
        raise BatterySegError(
            f"Model file {source.path} is not readable where this block runs. Run the job "
            "through battery_seg (which ships the weights to each worker) or put the model on a "
            "filesystem every worker mounts."
        )
    if model_sha256(path) != source.sha256:
        raise BatterySegError(
            f"Model file {source.path} changed while the segmentation was running; run the job "
            "again (a resumed store keeps the blocks of the old model only if it is restored)."
        )
    network, _card = load_model(path)
    load_count += 1
    loaded_from.append(path)
    return network


def get_predictor(
    source: ModelFile | InMemoryModel,
    device: str,
    precision: str,
    network: torch.nn.Module | None = None,
    backend: str = "torch",
) -> Predictor | OpenVINOPredictor:
    """The cached predictor of ``source`` in this process (loading the file on first use).

    ``network`` may pass an already loaded network for ``source`` to skip reading the file;
    ``backend`` is ``"torch"`` or ``"openvino"`` (CPU, model files only; see :mod:`._backends`).
    """
    device = resolve_device(device)
    if isinstance(source, InMemoryModel):
        key: tuple = ("memory", id(source.network), device, precision, backend)
    else:
        key = (source.path, source.sha256, device, precision, backend)
    with _LOCK:
        predictor = _CACHE.get(key)
        if (
            isinstance(source, InMemoryModel)
            and predictor is not None
            and predictor.source is not source.network
        ):
            predictor = None  # the id of a network that no longer exists was reused
        if predictor is None:
            if isinstance(source, InMemoryModel):
                network = source.network
            elif network is None:
                network = _load(source)
            predictor = _make_predictor(source, network, device, precision, backend)
            predictor.source = network if isinstance(source, InMemoryModel) else None
            if isinstance(source, InMemoryModel):  # per job: do not pin networks of old jobs
                for old in [k for k in _CACHE if k[0] == "memory" and k[1] != key[1]]:
                    del _CACHE[old]
            _CACHE[key] = predictor
        return predictor


def _make_predictor(source, network, device: str, precision: str, backend: str):
    if backend != "openvino":
        return Predictor(network, device, precision)
    import torch

    fused = fuse_batchnorm(copy.deepcopy(network).eval())
    in_channels = network.config.in_channels
    return OpenVINOPredictor(fused, in_channels, source.sha256, torch.get_num_threads())
