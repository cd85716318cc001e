"""How the network runs: automatic tiles, the OpenVINO backend, the device-resident (GPU) path
run on the CPU against the NumPy path, one network call at a time, and start-up order."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from battery_seg import BatterySegError
from battery_seg.cluster import ClusterOptions
from battery_seg.inference import (
    InMemoryModel,
    SegmentConfig,
    _blocks,
    _choices,
    _predictor,
    segment,
)
from battery_seg.inference import _tiling as tiling
from battery_seg.model import ModelCard, UNetConfig
from battery_seg.phases import PhaseSet
from test_inference_segment import save_unet

SHAPE = (10, 52, 44)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return save_unet(tmp_path_factory.mktemp("model") / "unet.pt", context=3)


def image_data():
    rng = np.random.default_rng(1)
    smooth = rng.random(SHAPE).cumsum(1).cumsum(2)
    return (smooth / smooth.max() * 50000 + rng.integers(0, 8000, SHAPE)).astype(np.uint16)


@pytest.fixture(scope="module")
def image():
    return image_data()


@pytest.mark.parametrize("length", [1, 17, 100, 1152, 1153, 2048, 3000, 5000])
def test_auto_grid_covers_the_axis_with_the_fewest_tiles(length):
    grid = tiling.plan_axis_auto(length, 16)
    assert grid.tile % 16 == 0 and grid.tile <= tiling.MAX_AUTO_TILE
    assert len(grid.starts) == max(1, -(-(length - 64) // (tiling.MAX_AUTO_TILE - 64)))
    ends = [s + grid.tile for s in grid.starts]
    assert grid.starts[0] == 0 and ends[-1] == grid.padded_length
    overlaps = [e - s for e, s in zip(ends[:-1], grid.starts[1:], strict=True)]
    assert all(o >= tiling.AUTO_MARGIN for o in overlaps)  # no gaps, borders in the low tail


def _in_memory(seed=0, context=3, n_phases=4):
    torch.manual_seed(seed)
    config = UNetConfig(in_channels=context, n_phases=n_phases, base_channels=4, depth=2)
    card = ModelCard(PhaseSet.parse("si-graphite"), context=context, architecture=config)
    return InMemoryModel(card.build().eval(), card)


@pytest.mark.parametrize(
    "options",
    [
        {"tile": 16, "block_shape": (3, 20, 24)},  # many blended tiles, tiles across blocks
        {"block_shape": (4, 52, 44)},  # automatic: one tile per plane, nothing blended
        {"tile": 32, "triplanar": True, "uncertainty": "entropy"},
        {"tile": 32, "axis": "y", "uncertainty": "margin"},
    ],
)
def test_device_resident_path_gives_the_numpy_labels(monkeypatch, image, options):
    """The GPU pipeline (torch from normalisation to argmax), run here on the CPU."""
    model = _in_memory()
    config = SegmentConfig(model=model, device="cpu", probabilities=True, **options)
    numpy_path = segment(image, config)
    calls, original = [], _blocks.block_outputs_on_device

    def on_device(job, block, inputs, predictor):
        calls.append(block.key)
        return original(job, block, inputs, predictor)

    monkeypatch.setattr(_blocks, "_on_device", lambda predictor: True)
    monkeypatch.setattr(_blocks, "block_outputs_on_device", on_device)
    device_path = segment(image, config)
    assert len(calls) == numpy_path.timing["blocks"]
    np.testing.assert_array_equal(device_path.labels, numpy_path.labels)
    difference = device_path.probabilities.astype(int) - numpy_path.probabilities
    assert np.abs(difference).max() <= 1  # float32 rounding, then round(p * 255)
    if "uncertainty" in options:
        difference = device_path.uncertainty.astype(int) - numpy_path.uncertainty
        assert np.abs(difference).max() <= 1


def test_device_stack_normalises_as_numpy():
    from battery_seg.inference._blocks import Block, PassInput, VolumeRegion, read_stack
    from battery_seg.inference._device import _read_stack
    from battery_seg.model import IntensityRange

    raw = np.random.default_rng(0).integers(0, 65535, (6, 9, 11), dtype=np.uint16)
    block = Block((0, 0, 0), (slice(0, 4), slice(0, 9), slice(0, 11)))
    spec = PassInput(2, VolumeRegion(raw, block.box), np.array([1, 0, 1, 2, 3]), (2, 3), ())
    intensity = IntensityRange(1200.5, 61000.0)

    class Job:
        pass

    job = Job()
    job.intensity = intensity
    expected = read_stack(spec, intensity, block)
    found = _read_stack(spec, job, block, torch.device("cpu")).numpy()
    np.testing.assert_array_equal(found, expected)  # bit for bit: the same float32 operations


def test_one_network_call_at_a_time_on_the_cpu(image):
    """dask's threads read, normalise and blend; the network never runs twice at once."""
    model = _in_memory()
    running, most = [0], [0]
    lock = threading.Lock()
    forward = model.network.forward

    def counting(x):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        try:
            return forward(x)
        finally:
            with lock:
                running[0] -= 1

    model.network.forward = counting
    config = SegmentConfig(
        model=model,
        device="cpu",
        tile=16,
        block_shape=(2, 52, 44),
        cluster=ClusterOptions("threads", workers=4),
    )
    segment(image, config)
    assert most[0] == 1


def test_little_work_before_the_first_block(monkeypatch, tmp_path, model_path):
    """Start-up reads the input twice, each in one go: three planes for the job's identity and
    a sample for the intensity range; then the blocks run (no whole-volume pass, no per-plane
    reads, no OpenVINO set-up for a small volume)."""
    import dask

    from battery_seg.inference import _execute
    from battery_seg.io import open_volume, write_image

    path = write_image(tmp_path / "in.tif", np.tile(image_data(), (4, 1, 1)), voxel_size=1.0)
    events, compute, run_block = [], dask.base.compute, _execute.run_block

    def counting(*args, **kwargs):
        events.append("compute")
        return compute(*args, **kwargs)

    def first(task):
        events.append("block")
        return run_block(task)

    monkeypatch.setattr(dask.base, "compute", counting)
    monkeypatch.setattr(dask, "compute", counting)
    monkeypatch.setattr(_execute, "run_block", first)
    result = segment(open_volume(path), SegmentConfig(model=model_path, output=tmp_path / "o.zarr"))
    assert result.backend == "torch"
    assert events[: events.index("block")] == ["compute"] * 3  # identity, sample, the blocks


openvino = pytest.importorskip("openvino", reason="the optional OpenVINO backend is not installed")


def test_openvino_backend_keeps_the_labels(model_path, image, model_cache):
    by_torch = segment(image, SegmentConfig(model=model_path, device="cpu", backend="torch"))
    by_openvino = segment(image, SegmentConfig(model=model_path, device="cpu", backend="openvino"))
    assert (by_torch.backend, by_openvino.backend) == ("torch", "openvino")
    assert (by_openvino.labels == by_torch.labels).mean() >= 0.995
    assert list((model_cache / "openvino").glob("*.xml"))  # converted once, kept for next time


def test_auto_backend_picks_openvino_for_large_jobs_of_model_files(monkeypatch, model_path, image):
    config = SegmentConfig(model=model_path, device="cpu")
    assert segment(image, config).backend == "torch"  # too small: set-up would cost more
    monkeypatch.setattr(_choices, "OPENVINO_MIN_VOXELS", 0)
    assert segment(image, config).backend == "openvino"
    assert segment(image, SegmentConfig(model=_in_memory(), device="cpu")).backend == "torch"


def test_auto_backend_falls_back_when_openvino_changes_the_labels(monkeypatch, model_path, image):
    monkeypatch.setattr(_choices, "OPENVINO_MIN_VOXELS", 0)
    call = _predictor.OpenVINOPredictor.__call__
    monkeypatch.setattr(_predictor.OpenVINOPredictor, "__call__", lambda s, t: 1 - call(s, t))
    assert segment(image, SegmentConfig(model=model_path, device="cpu")).backend == "torch"


def test_openvino_for_a_model_in_memory_is_refused(image):
    config = SegmentConfig(model=_in_memory(), device="cpu", backend="openvino")
    with pytest.raises(BatterySegError, match="model files on the CPU only"):
        segment(image, config)
