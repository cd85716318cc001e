"""CPU inference backends: OpenVINO when installed and it keeps the labels, PyTorch otherwise.

OpenVINO (``pip install "napari-battery-seg[openvino]"``) runs the same network, converted
from PyTorch once per model and kept in a cache folder, about twice as fast as PyTorch on a CPU.
``backend="auto"`` picks it for a model file on the CPU when it is importable and its labels agree
with PyTorch's on at least 99.5 % of a sample of the volume being segmented; PyTorch is the
fallback everywhere (CUDA, models in memory, an existing cluster whose workers may lack it).

On the CPU one network call runs at a time in a process (:data:`CPU_LOCK`), with all the cores:
dask's other threads read, normalise, blend and write blocks meanwhile instead of fighting the
network's threads for the same cores.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..names import BACKENDS

__all__ = [
    "BACKENDS",
    "CPU_LOCK",
    "OpenVINOPredictor",
    "cache_folder",
    "cpu_settings",
    "openvino_available",
]

CPU_LOCK = threading.Lock()
"""Held around every network call on the CPU: one at a time, each with all the cores."""


def openvino_available() -> bool:
    """Whether the optional OpenVINO runtime is installed (found without importing it)."""
    return importlib.util.find_spec("openvino") is not None


def cache_folder() -> Path:
    """Where converted models are kept: ``$BATTERY_SEG_CACHE`` or ``~/.cache/battery_seg``."""
    root = os.environ.get("BATTERY_SEG_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "battery_seg"
    )
    return Path(root)


def _with_softmax(network: Any) -> Any:
    """The network followed by a softmax over phases (what the converted model computes)."""
    import torch

    class WithSoftmax(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.network(x), dim=1)

    return WithSoftmax().eval()


def _converted(network: Any, in_channels: int, key: str | None) -> Any:
    """The OpenVINO model of ``network`` (batch-norm folded), read from the cache when there."""
    import openvino as ov

    path = None
    if key is not None:
        version = re.sub(r"[^0-9A-Za-z.]+", "_", ov.__version__)  # it holds slashes
        path = cache_folder() / "openvino" / f"{key}-ov{version}.xml"
        if path.is_file() and path.with_suffix(".bin").is_file():
            return ov.Core().read_model(path)
    import torch

    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracing warns about the shape checks in forward
        model = ov.convert_model(
            _with_softmax(network),
            example_input=torch.zeros(1, in_channels, 64, 64),
            input=[(-1, in_channels, -1, -1)],
        )
    if path is not None:
        _save_atomically(model, path)
    return model


def _save_atomically(model: Any, path: Path) -> None:
    """Write the IR (.xml + .bin) under a temporary name, then rename both (best effort)."""
    import openvino as ov

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as folder:
            tmp = Path(folder) / path.name
            ov.save_model(model, tmp, compress_to_fp16=False)
            os.replace(tmp.with_suffix(".bin"), path.with_suffix(".bin"))
            os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs the conversion next time


def cpu_settings(threads: int) -> dict:
    """How the network is compiled for the CPU: one call at a time, all ``threads``, float32."""
    return {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": int(threads),
        "INFERENCE_PRECISION_HINT": "f32",
    }


class OpenVINOPredictor:
    """Callable mapping ``(N, C, H, W)`` float32 tiles to ``(N, K, H, W)`` probabilities."""

    backend = "openvino"
    precision = "float32"

    def __init__(self, network: Any, in_channels: int, key: str | None, threads: int) -> None:
        import openvino as ov
        import torch

        core = ov.Core()
        if key is not None:
            core.set_property({"CACHE_DIR": str(cache_folder() / "openvino" / "compiled")})
        self.compiled = core.compile_model(
            _converted(network, in_channels, key), "CPU", cpu_settings(threads)
        )
        self.request = self.compiled.create_infer_request()
        self.device = torch.device("cpu")

    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        inputs = np.ascontiguousarray(tiles, dtype=np.float32)
        with CPU_LOCK:
            return self.request.infer({0: inputs})[0]  # a copy: the request reuses its buffer
