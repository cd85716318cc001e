"""The U-Net as an ONNX file (for the bioimage.io export, ONNX Runtime and other runtimes).

Uses PyTorch's ``torch.export``-based exporter (``dynamo=True``, which needs ``onnxscript``);
the batch size, height and width stay dynamic, so one file serves every tile size.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import BatterySegError

__all__ = ["ONNX_OPSET", "export_onnx"]

ONNX_OPSET = 18
"""The ONNX opset written (ONNX Runtime >= 1.14 runs it)."""


def export_onnx(
    network: torch.nn.Module,
    path: str | os.PathLike,
    *,
    input_name: str = "input",
    output_name: str = "output",
    opset: int = ONNX_OPSET,
) -> Path:
    """Write ``network`` (a :class:`~battery_seg.model.UNet` or a subclass) to ``path`` as ONNX.

    The graph maps ``(N, context, H, W)`` float32 tiles to ``(N, n_phases, H, W)``; ``N``, ``H``
    and ``W`` are dynamic (``H`` and ``W`` multiples of ``2**depth``). The weights are stored in
    the file itself. ``network`` is not modified.

    Raises
    ------
    BatterySegError
        If ``onnxscript`` (PyTorch's ONNX exporter) is not installed.

    Examples
    --------
    >>> from battery_seg.model import UNet, UNetConfig
    >>> net = UNet(UNetConfig(in_channels=3, n_phases=4, base_channels=8, depth=2))
    >>> export_onnx(net, "unet.onnx")  # doctest: +SKIP
    PosixPath('unet.onnx')
    """
    try:
        import onnxscript  # noqa: F401  (the exporter's dependency: a clear message if absent)
    except ImportError:
        raise BatterySegError(
            "Writing ONNX weights needs the packages onnx and onnxscript: "
            "pip install 'napari-battery-seg[bioimageio]'."
        ) from None
    config = network.config
    path = Path(path)
    network = network.eval()
    example = torch.zeros(1, config.in_channels, 2 * config.multiple, 2 * config.multiple)
    batch = torch.export.Dim("batch")
    height, width = torch.export.Dim("height"), torch.export.Dim("width")
    shapes = ({0: batch, 2: config.multiple * height, 3: config.multiple * width},)
    with _quiet_exporter():
        torch.onnx.export(
            network,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes=shapes,
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    return path


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs missing torchvision ops and PyTorch-internal deprecations: not news
    to a user exporting a U-Net."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)
