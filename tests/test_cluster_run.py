"""Segmentation and statistics on a real dask cluster: a ``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1, started here (no mocks), against the local result."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from battery_seg.cli import main
from battery_seg.cluster import ClusterOptions
from battery_seg.inference import SegmentConfig, segment
from battery_seg.io import open_volume
from cluster_helpers import running_cluster, tiny_model, write_image

SHAPE = (32, 64, 64)
OPTIONS = ["--tile", "32", "--block", "4", "64", "32"]  # 8 x 1 x 2 = 16 blocks
BATTERY_SEG = Path(sys.executable).with_name("battery-seg")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("dask"), workers=2) as processes:
        yield processes


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    model = tiny_model(folder / "model.pt")
    image = write_image(folder / "scan.zarr", SHAPE)
    local = folder / "local.zarr"  # the reference: threads on this machine
    extra = ["--probabilities", "--uncertainty", "entropy"]
    assert (
        main(["segment", str(image), "-o", str(local), "--model", str(model), *OPTIONS, *extra])
        == 0
    )
    return SimpleNamespace(model=model, image=image, local=local)


def _arrays(store: Path) -> dict[str, np.ndarray]:
    import zarr

    root = zarr.open_group(str(store), mode="r")
    return {name: root[name][:] for name in ("0", "probabilities", "uncertainty") if name in root}


def _worker_model_loads(address: str) -> dict[str, tuple[int, list[str], str]]:
    from distributed import Client

    def loads(dask_worker):
        from battery_seg.inference import _predictor

        return _predictor.load_count, list(_predictor.loaded_from), dask_worker.local_directory

    with Client(address, set_as_default=False) as client:
        return client.run(loads)


def test_segment_on_the_cluster_equals_local_bit_for_bit(cluster, data, tmp_path):
    out = tmp_path / "cluster.zarr"
    config = SegmentConfig(
        model=data.model,
        tile=32,
        block_shape=(4, 64, 32),
        probabilities=True,
        uncertainty="entropy",
        output=out,
        cluster=ClusterOptions(cluster.address),
    )
    events = []
    result = segment(open_volume(data.image), config, on_progress=events.append)

    assert result.output == out and not out.with_name("cluster.zarr.partial").exists()
    expected, got = _arrays(data.local), _arrays(out)
    assert set(got) == {"0", "probabilities", "uncertainty"}
    for name, array in expected.items():  # labels, probabilities and uncertainty, bit for bit
        np.testing.assert_array_equal(got[name], array, err_msg=name)
    assert len(np.unique(expected["0"])) >= 2
    assert events[0].total == 0 and events[0].message.startswith("Running on the dask scheduler")
    assert "(2 workers)" in events[0].message

    # the workers wrote the blocks; only small summaries came back
    blocks, received = int(result.timing["blocks"]), result.timing["bytes_received"]
    written = sum(a.nbytes for a in got.values())
    assert blocks == 16 and 0 < received < 1024 * blocks, received
    assert received < written / 50, (received, written)

    # each worker read the weights exactly once for its blocks, from the copy the worker
    # plugin gave it: no shared file needed
    loads = _worker_model_loads(cluster.address)
    assert len(loads) == 2
    for count, paths, local_directory in loads.values():
        assert count == 1 and len(paths) == 1
        assert Path(paths[0]).parent == Path(local_directory) and paths[0] != str(data.model)


def test_cli_and_stats_on_the_cluster_equal_local(cluster, data, tmp_path, capsys):
    out = tmp_path / "cli.zarr"
    args = ["segment", str(data.image), "-o", str(out), "--model", str(data.model), *OPTIONS]
    assert main([*args, "--scheduler", cluster.address]) == 0
    np.testing.assert_array_equal(_arrays(out)["0"], _arrays(data.local)["0"])

    reports = {}
    for where, extra in {
        "local": [],
        "cluster": ["--scheduler", str(cluster.scheduler_file)],
        "workers": ["--workers", "1", "--memory-limit", "1GiB"],
    }.items():
        target = tmp_path / f"{where}.json"
        assert (
            main(
                [
                    "stats",
                    str(data.local),
                    "--axis",
                    "all",
                    "--no-surfaces",
                    "--json",
                    str(target),
                    *extra,
                ]
            )
            == 0
        )
        reports[where] = json.loads(target.read_text())
    assert "Counting phases on the dask scheduler" not in capsys.readouterr().out
    for where in ("cluster", "workers"):
        for key in ("phases", "networks", "profiles"):
            assert reports[where][key] == reports["local"][key], (where, key)
    fractions = [p["volume_fraction"] for p in reports["local"]["phases"].values()]
    assert pytest.approx(sum(fractions)) == 1.0 and min(fractions) > 0.01


@pytest.fixture(scope="module")
def expected(data):
    """Labels of the volume in blocks of (1, 64, 64), in threads here."""
    return segment(
        open_volume(data.image),
        SegmentConfig(
            model=data.model, tile=32, block_shape=(1, 64, 64), cluster=ClusterOptions("threads")
        ),
    ).labels


def _wait_for_records(run: subprocess.Popen, records: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while not (records.is_dir() and len(os.listdir(records)) >= count):
        assert run.poll() is None, run.stdout.read().decode()
        assert time.monotonic() < deadline, "no block was written"
        time.sleep(0.005)


def test_kill_9_of_the_cli_resumes_to_the_same_result(cluster, data, expected, tmp_path, capsys):
    block = ["--tile", "32", "--block", "1", "64", "64"]  # 32 blocks
    out = tmp_path / "killed.zarr"
    command = [
        "segment",
        str(data.image),
        "-o",
        str(out),
        "--model",
        str(data.model),
        *block,
        "--scheduler",
        cluster.address,
    ]
    run = subprocess.Popen(
        [str(BATTERY_SEG), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    records = out.with_name("killed.zarr.partial") / ".battery_seg" / "done"
    try:
        _wait_for_records(run, records, 2)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        run.stdout.close()
    time.sleep(1.0)  # blocks that were running on the workers still finish and are recorded
    done = len(os.listdir(records))
    assert 2 <= done < 32 and not out.exists()

    # a partial store is never mistaken for a result
    capsys.readouterr()
    assert main(["stats", str(out)]) == 2
    assert main(["stats", str(out.with_name("killed.zarr.partial"))]) == 2
    errors = capsys.readouterr().err
    assert errors.count("partially written label store") == 2 and "Traceback" not in errors

    assert main(command) == 0  # the same command again
    output = capsys.readouterr().out
    assert f"32 blocks ({done} resumed)" in output
    np.testing.assert_array_equal(open_volume(out).data.compute(), expected)
    assert not out.with_name("killed.zarr.partial").exists()


def test_kill_9_of_a_run_with_workers_leaves_no_process_behind(data, expected, tmp_path):
    import psutil

    out = tmp_path / "workers.zarr"
    command = [
        "segment",
        str(data.image),
        "-o",
        str(out),
        "--model",
        str(data.model),
        "--tile",
        "32",
        "--block",
        "1",
        "64",
        "64",
        "--workers",
        "2",
    ]
    run = subprocess.Popen(
        [str(BATTERY_SEG), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    workers = []
    try:
        _wait_for_records(run, out.with_name("workers.zarr.partial") / ".battery_seg" / "done", 1)
        workers = psutil.Process(run.pid).children(recursive=True)
        assert len(workers) >= 2
        os.kill(run.pid, signal.SIGKILL)  # the command only: its workers must follow it
        run.wait()
        _, alive = psutil.wait_procs(workers, timeout=20)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        run.stdout.close()
    segment(
        open_volume(data.image),
        SegmentConfig(  # resumed in threads
            model=data.model, tile=32, block_shape=(1, 64, 64), output=out
        ),
    )
    np.testing.assert_array_equal(open_volume(out).data.compute(), expected)
