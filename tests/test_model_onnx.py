"""export_onnx: one ONNX file that ONNX Runtime runs at any batch size and tile size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from battery_seg.model import UNet, UNetConfig
from battery_seg.model.onnx import export_onnx

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_onnx_runtime_gives_the_network_s_logits_at_other_sizes(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    network = UNet(UNetConfig(in_channels=3, n_phases=4, base_channels=4, depth=2)).eval()
    before = {k: v.clone() for k, v in network.state_dict().items()}
    path = export_onnx(network, tmp_path / "unet.onnx", input_name="raw", output_name="logits")
    assert all(torch.equal(v, before[k]) for k, v in network.state_dict().items())  # untouched
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["raw"]
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 16, 16), (2, 3, 24, 40)]:  # multiples of 2**depth, none of them traced
        tiles = rng.random(shape, dtype=np.float32)
        (got,) = session.run(["logits"], {"raw": tiles})
        with torch.inference_mode():
            expected = network(torch.from_numpy(tiles)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
