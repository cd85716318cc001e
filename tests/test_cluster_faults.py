"""Bad clusters and faults: unreachable scheduler, no workers, workers without the package or
unable to write the output, a worker killed mid-run, every worker lost (real processes)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from battery_seg.cli import main
from battery_seg.cluster import ClusterOptions
from battery_seg.errors import BatterySegError
from battery_seg.inference import SegmentConfig, segment
from battery_seg.io import open_volume
from cluster_helpers import running_cluster, tiny_model, write_image

SHAPE = (32, 64, 64)
BLOCK = (1, 64, 64)  # 32 blocks


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("dask"), workers=0) as processes:
        yield processes


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    model = tiny_model(folder / "model.pt")
    image = write_image(folder / "scan.zarr", SHAPE)
    expected = segment(
        open_volume(image),
        SegmentConfig(model=model, tile=32, block_shape=BLOCK, cluster=ClusterOptions("threads")),
    ).labels
    return SimpleNamespace(model=model, image=image, expected=expected)


def _config(data, out, **cluster) -> SegmentConfig:
    """A segmentation of the test volume into ``out``, where ``cluster`` (ClusterOptions) says."""
    options = ClusterOptions(**cluster)
    return SegmentConfig(model=data.model, tile=32, block_shape=BLOCK, output=out, cluster=options)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Background:
    """Runs ``segment`` in a thread; keeps its result or its exception."""

    def __init__(self, data, config: SegmentConfig) -> None:
        self.result, self.error = None, None
        self.thread = threading.Thread(target=self._run, args=(data, config), daemon=True)
        self.thread.start()

    def _run(self, data, config) -> None:
        try:
            self.result = segment(open_volume(data.image), config)
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float = 120) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not end"


def _wait_for_records(out: Path, count: int, run: _Background) -> int:
    records = out.with_name(out.name + ".partial") / ".battery_seg" / "done"
    deadline = time.monotonic() + 120
    while not (records.is_dir() and len(os.listdir(records)) >= count):
        assert run.thread.is_alive(), f"the run ended early: {run.error!r}"
        assert time.monotonic() < deadline, "no block was written"
        time.sleep(0.005)
    return len(os.listdir(records))


def test_unreachable_scheduler_is_a_clear_error_within_seconds(data, tmp_path, capsys):
    address = f"tcp://127.0.0.1:{_free_port()}"
    out = tmp_path / "seg.zarr"
    start = time.monotonic()
    with pytest.raises(BatterySegError, match="Could not connect to the dask scheduler at tcp"):
        segment(
            np.zeros((4, 32, 32), np.uint16),
            _config(data, out, scheduler=address, connect_timeout=2),
        )
    assert time.monotonic() - start < 8
    for command in (
        ["segment", str(data.image), "-o", str(out), "--model", str(data.model)],
        ["stats", str(data.image), "--phases", "a,b"],
    ):
        start = time.monotonic()
        assert main([*command, "--scheduler", address, "--connect-timeout", "2"]) == 2
        assert time.monotonic() - start < 8
        error = capsys.readouterr().err
        progress = f"{command[0]} "  # plain progress lines come first in a log
        error = "\n".join(line for line in error.splitlines() if not line.startswith(progress))
        assert "within 2 s" in error and "Traceback" not in error and error.count("\n") == 0
    assert not out.exists() and not out.with_name("seg.zarr.partial").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scheduler": "tcp://h:8786", "workers": 2}, "not both"),
        ({"memory_limit": "2GiB"}, "give --workers N with it"),
        ({"workers": 2, "memory_limit": "lots"}, "Cannot read the memory limit"),
        ({"workers": 0}, "positive number"),
        ({"scheduler": "tcp://h:8786", "connect_timeout": 0}, "positive number of seconds"),
        ({"scheduler": "missing/scheduler.json"}, "scheduler file .* does not exist"),
    ],
)
def test_bad_cluster_options(tmp_path, options, message):
    from battery_seg.analysis import AnalysisConfig

    with pytest.raises(BatterySegError, match=message):
        config = SegmentConfig(cluster=ClusterOptions(**options))
        segment(np.zeros((4, 32, 32), np.uint16), config)
    with pytest.raises(BatterySegError, match=message):
        config = AnalysisConfig("a,b", cluster=ClusterOptions(**options))
        from battery_seg.analysis import analyse

        analyse(np.ones((4, 8, 8), np.uint8), config)


def test_a_worker_killed_mid_run_the_others_finish_it(cluster, data, tmp_path):
    from distributed import Client

    cluster.set_workers(2)
    out = tmp_path / "seg.zarr"
    run = _Background(data, _config(data, out, scheduler=cluster.address))
    done = _wait_for_records(out, 2, run)
    with Client(cluster.address, set_as_default=False) as client:
        names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
        busy = [a for a, keys in client.processing().items() if keys] or list(names)
    cluster.kill(names[busy[0]])  # kill -9 of the nanny and its worker
    run.join()
    assert run.error is None, run.error
    assert done < 32 and run.result.output == out
    np.testing.assert_array_equal(open_volume(out).data.compute(), data.expected)


def test_losing_every_worker_stops_and_the_store_resumes(cluster, data, tmp_path, capsys):
    cluster.set_workers(1)
    out = tmp_path / "seg.zarr"
    run = _Background(data, _config(data, out, scheduler=cluster.address, connect_timeout=3))
    _wait_for_records(out, 2, run)
    for name in list(cluster.workers):
        cluster.kill(name)
    start = time.monotonic()
    run.join()
    assert time.monotonic() - start < 15
    assert isinstance(run.error, BatterySegError)
    message = str(run.error)
    assert "all its workers are gone" in message and "run the same command again" in message
    partial = out.with_name("seg.zarr.partial")
    # records only: a worker killed while recording a block leaves a hidden temporary file
    records = os.listdir(partial / ".battery_seg" / "done")
    done = len([name for name in records if not name.startswith(".")])
    assert partial.is_dir() and not out.exists() and 2 <= done < 32

    # resumed here, in threads: the same result, without redoing the recorded blocks
    events = []
    result = segment(open_volume(data.image), _config(data, out), on_progress=events.append)
    assert events[0].step == done and result.timing["blocks_resumed"] == done
    np.testing.assert_array_equal(open_volume(out).data.compute(), data.expected)


def test_workers_paused_for_lack_of_memory_stop_the_run(cluster, data, tmp_path):
    cluster.set_workers(1, "small-memory")
    out = tmp_path / "seg.zarr"
    with pytest.raises(BatterySegError) as caught:
        segment(
            open_volume(data.image),
            _config(data, out, scheduler=cluster.address, connect_timeout=3),
        )
    message = str(caught.value)
    assert "every worker is paused by dask for lack of memory" in message
    assert "MiB limit); give the workers more memory" in message
    assert "run the same command again" in message
    assert out.with_name("seg.zarr.partial").is_dir() and not out.exists()


def test_a_scheduler_without_workers(cluster, data, tmp_path):
    cluster.set_workers(0)
    out = tmp_path / "seg.zarr"
    start = time.monotonic()
    with pytest.raises(BatterySegError, match=r"has no workers \(none joined within 2 s\)"):
        segment(
            open_volume(data.image),
            _config(data, out, scheduler=cluster.address, connect_timeout=2),
        )
    assert time.monotonic() - start < 10
    assert not out.with_name("seg.zarr.partial").exists()


def test_workers_without_the_package(cluster, data, tmp_path, capsys):
    cluster.set_workers(1, "no-package")
    out = tmp_path / "seg.zarr"
    with pytest.raises(BatterySegError) as caught:
        segment(open_volume(data.image), _config(data, out, scheduler=cluster.address))
    message = str(caught.value)
    assert "napari-battery-seg cannot be imported on the worker tcp://127.0.0.1" in message
    assert "No module named 'battery_seg'" in message
    assert "Install napari-battery-seg 0.1.0 on the workers" in message
    assert not out.with_name("seg.zarr.partial").exists()
    assert main(["stats", str(data.image), "--phases", "a,b", "--scheduler", cluster.address]) == 2
    assert "Install napari-battery-seg" in capsys.readouterr().err


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="runs a worker as another user (nobody), which needs root",
)
@pytest.mark.filterwarnings("ignore:Mismatched versions found")  # nobody's python is the system's
def test_an_output_the_workers_cannot_write(cluster, data, tmp_path):
    cluster.set_workers(1, "nobody")  # the test's folders are private to root
    out = tmp_path / "seg.zarr"
    image = np.asarray(open_volume(data.image).data)
    with pytest.raises(BatterySegError) as caught:
        segment(image, _config(data, out, scheduler=cluster.address))
    message = str(caught.value)
    assert f"cannot write into the output {out}.partial (PermissionError" in message
    assert "every worker can write at the same path" in message
    assert not out.with_name("seg.zarr.partial").exists() and not out.exists()
