"""How the network runs in a job: precision, backend and tiles per call, chosen by trial.

``"auto"`` settings are resolved once per job on this machine, on a few tiles of the volume being
segmented: half precision and OpenVINO are used only where they keep at least 99.5 % of the
labels of float32 PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BatterySegError
from ._backends import openvino_available
from ._predictor import InMemoryModel, ModelFile, get_predictor, resolve_device

if TYPE_CHECKING:
    import torch

__all__ = ["auto_batch_size", "choose_backend", "choose_precision", "cpu_has_native_bfloat16"]

OPENVINO_MIN_VOXELS = 8 * 2**20
"""Smallest job for which ``backend="auto"`` tries OpenVINO (128 x 256 x 256 voxels)."""


def choose_backend(
    requested: str,
    device: str,
    precision: str,
    source: ModelFile | InMemoryModel,
    sample_tiles: Callable[[], np.ndarray],
    network: torch.nn.Module | None = None,
    voxels: int = 0,
) -> str:
    """Resolve ``"auto"``: OpenVINO for a model file on the CPU in float32 when it is installed,
    the job has at least :data:`OPENVINO_MIN_VOXELS` voxels to segment (below, its set-up costs
    more than it saves) and it keeps >= 99.5 % of PyTorch's labels on ``sample_tiles()``;
    otherwise PyTorch."""
    if requested != "auto":
        if requested == "openvino" and not openvino_available():
            raise BatterySegError(
                "backend='openvino' was requested but OpenVINO is not installed; install it "
                '(pip install "napari-battery-seg[openvino]") or use backend="auto".'
            )
        off_cpu = device not in ("cpu", "auto")  # "auto": an existing cluster's workers decide
        if requested == "openvino" and (isinstance(source, InMemoryModel) or off_cpu):
            raise BatterySegError(
                "The OpenVINO backend runs model files on the CPU only; use backend='auto' "
                "or 'torch' for a model in memory or a GPU."
            )
        return requested
    if isinstance(source, InMemoryModel) or device != "cpu" or precision != "float32":
        return "torch"
    if voxels < OPENVINO_MIN_VOXELS or not openvino_available():
        return "torch"
    tiles = sample_tiles()
    reference = get_predictor(source, device, precision, network)(tiles).argmax(1)
    trial = get_predictor(source, device, precision, network, "openvino")(tiles).argmax(1)
    return "openvino" if float((reference == trial).mean()) >= 0.995 else "torch"


def auto_batch_size(device: str, grids: tuple, architecture: Any, precision: str) -> int:
    """Tiles per network call: 4 of 256 x 256 (1 of a larger tile) on the CPU; on a GPU as many
    as a quarter of its free memory holds (~48 bytes per pixel and base channel in float32)."""
    pixels = grids[0].tile * grids[1].tile
    if not str(device).startswith("cuda"):
        return max(1, min(4, 4 * 256 * 256 // pixels))
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    per_tile = 48 * architecture.base_channels * pixels // (1 if precision == "float32" else 2)
    return int(max(1, min(64, free // 4 // per_tile)))


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 / AMX); emulation is slower."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def choose_precision(
    requested: str,
    device: str,
    source: ModelFile | InMemoryModel,
    sample_tiles: Callable[[], np.ndarray],
    network: torch.nn.Module | None = None,
) -> str:
    """Resolve ``"auto"``: half precision only where it is fast and keeps >= 99.5 % of the labels.

    bfloat16 is tried on CUDA GPUs that support it (float16 on older ones) and on CPUs with
    native bfloat16; the labels it gives on ``sample_tiles()`` (a batch from the volume being
    segmented) are compared with float32.
    """
    if requested != "auto":
        return requested
    device = resolve_device(device)
    if device == "cpu" and not cpu_has_native_bfloat16():
        return "float32"
    half = "bfloat16"
    if device != "cpu":
        import torch

        half = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    tiles = sample_tiles()
    reference = get_predictor(source, device, "float32", network)(tiles).argmax(1)
    trial = get_predictor(source, device, half, network)(tiles).argmax(1)
    return half if float((reference == trial).mean()) >= 0.995 else "float32"
