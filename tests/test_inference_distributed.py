"""The task graph on dask.distributed with process workers (the scale-out path)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from battery_seg.inference import SegmentConfig, segment
from battery_seg.model import ModelCard, UNetConfig, save_model
from battery_seg.phases import PhaseSet

SHAPE = (10, 40, 36)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _save_model(path):
    """A tiny U-Net taught for a few steps to threshold grey levels (so phases vary)."""
    torch.manual_seed(1)
    card = ModelCard(PhaseSet.parse("nmc"), context=3,
                     architecture=UNetConfig(in_channels=3, n_phases=3, base_channels=4, depth=2))
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


def test_process_workers_give_the_threaded_result_and_load_the_model_once(tmp_path):
    distributed = pytest.importorskip("distributed")
    from battery_seg.io import open_volume

    rng = np.random.default_rng(0)
    image = (rng.random(SHAPE).cumsum(1).cumsum(2) * 40).astype(np.uint16)
    model = _save_model(tmp_path / "model.pt")
    options = {"model": model, "tile": 32, "block_shape": (2, 40, 20)}
    threaded = segment(image, SegmentConfig(**options))
    assert len(np.unique(threaded.labels)) >= 2

    out = tmp_path / "seg.zarr"
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
    ) as cluster:
        result = segment(image, SegmentConfig(scheduler=cluster.scheduler_address,
                                              output=out, **options))
        with distributed.Client(cluster) as client:
            loads = client.run(lambda: __import__(
                "battery_seg.inference._predictor", fromlist=["x"]).load_count)
    assert result.labels == out
    np.testing.assert_array_equal(open_volume(out).data.compute(), threaded.labels)
    assert sorted(loads.values()) in ([0, 1], [1, 1]), loads  # once per worker, not per task
    assert sum(loads.values()) >= 1
