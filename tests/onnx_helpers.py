"""Shared check of the ONNX tests: ONNX Runtime gives a network's own output at other sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def assert_onnx_runs_like(network: torch.nn.Module, path: Path, shapes, ort, **tolerance) -> None:
    """Run the exported ``path`` in ONNX Runtime (module ``ort``) on random tiles of each of
    ``shapes`` and compare with ``network``'s output (first input, first output)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(0)
    for shape in shapes:
        tiles = rng.random(shape, dtype=np.float32)
        (got,) = session.run(None, {name: tiles})
        with torch.inference_mode():
            expected = network(torch.from_numpy(tiles)).numpy()
        np.testing.assert_allclose(got, expected, **{"rtol": 1e-4, "atol": 1e-4, **tolerance})
