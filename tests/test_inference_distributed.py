"""The task graph on dask.distributed with process workers (the scale-out path)."""

from __future__ import annotations

import numpy as np
import pytest

from battery_seg.cluster import ClusterOptions
from battery_seg.inference import SegmentConfig, segment
from cluster_helpers import tiny_model

SHAPE = (10, 40, 36)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_process_workers_give_the_threaded_result_and_load_the_model_once(tmp_path):
    distributed = pytest.importorskip("distributed")
    from battery_seg.io import open_volume

    rng = np.random.default_rng(0)
    image = (rng.random(SHAPE).cumsum(1).cumsum(2) * 40).astype(np.uint16)
    model = tiny_model(tmp_path / "model.pt", seed=1)
    options = {"model": model, "tile": 32, "block_shape": (2, 40, 20)}
    threaded = segment(image, SegmentConfig(**options))
    assert len(np.unique(threaded.labels)) >= 2

    out = tmp_path / "seg.zarr"
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
    ) as cluster:
        result = segment(
            image,
            SegmentConfig(cluster=ClusterOptions(cluster.scheduler_address), output=out, **options),
        )
        with distributed.Client(cluster) as client:
            loads = client.run(
                lambda: __import__("battery_seg.inference._predictor", fromlist=["x"]).load_count
            )
    assert result.labels == out
    np.testing.assert_array_equal(open_volume(out).data.compute(), threaded.labels)
    assert sorted(loads.values()) in ([0, 1], [1, 1]), loads  # once per worker, not per task
    assert sum(loads.values()) >= 1
