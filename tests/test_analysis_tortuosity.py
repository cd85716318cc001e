"""Tortuosity through TauFactor: analytic cases, conventions, limits, cancel, no overhead."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from battery_seg.analysis import SolverOptions, estimate_tortuosity, tortuosity, tortuosity_job
from battery_seg.errors import BatterySegError
from battery_seg.jobs import Progress

CPU = {"device": "cpu", "conv_crit": 1e-3}


def _serpentine(mask: np.ndarray, y: int, width: int, layers: int) -> list[tuple[int, int, int]]:
    """Draw a 1-voxel-wide meander in plane ``y`` from z=0 to the last z; return its voxels.

    Even z hold single connector voxels, odd z hold runs of ``width`` along x, so the only
    face contacts are between consecutive path voxels (a chain of unit resistances) and each
    end face touches exactly one voxel.
    """
    path = [(0, y, 1)]
    x = 1
    for layer in range(layers):
        z = 2 * layer + 1
        run = range(1, width + 1) if x == 1 else range(width, 0, -1)
        path += [(z, y, i) for i in run]
        x = run[-1]
        path.append((z + 1, y, x))
    for voxel in path:
        mask[voxel] = 1
    return path


def _chain_resistance(path, spacing) -> float:
    """Resistance of the chain in units of a z-link, including the two half links at the faces.

    TauFactor weights a link along axis a by (dz / d_a)^2 relative to a z-link.
    """
    resistance = 1.0  # two half-voxel links to the fixed-concentration faces
    for a, b in itertools.pairwise(path):
        axis = int(np.flatnonzero(np.subtract(a, b))[0])
        resistance += (spacing[axis] / spacing[0]) ** 2
    return resistance


def test_straight_channels_have_tau_one_also_with_anisotropic_voxels():
    mask = np.zeros((12, 6, 6), dtype=np.uint8)
    mask[:, ::2, 1::3] = 1
    # (2, 1, 1): lateral voxels smaller than along z, where TauFactor 1.2.1 dropped the flux
    for voxel_size in [(1.0, 1.0, 1.0), (0.5, 1.0, 2.0), (2.0, 1.0, 1.0)]:
        result = tortuosity(mask, "z", voxel_size, **CPU)
        assert result.tortuosity == pytest.approx(1.0, abs=1e-5)
        assert result.effective_diffusivity == pytest.approx(mask.mean(), abs=1e-6)
        assert result.converged and result.note == ""
        assert result.macmullin == pytest.approx(1 / mask.mean(), rel=1e-5)
        assert result.bruggeman_tortuosity == pytest.approx(mask.mean() ** -0.5)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (1.0, 1.0, 2.0), (2.0, 1.0, 1.0)])
def test_meander_in_series_gives_the_chain_resistance(spacing):
    mask = np.zeros((9, 3, 7), dtype=np.uint8)
    path = _serpentine(mask, 1, width=5, layers=4)
    padded = np.pad(mask, 1)
    neighbours = sum(np.roll(padded, s, a) for a in range(3) for s in (1, -1))[1:-1, 1:-1, 1:-1]
    assert all(neighbours[v] == (1 if v in (path[0], path[-1]) else 2) for v in path)
    result = tortuosity(mask, "z", spacing, **CPU)
    expected = len(path) * _chain_resistance(path, spacing) / mask.shape[0] ** 2
    assert result.tortuosity == pytest.approx(expected, rel=2e-3)
    if spacing == (1.0, 1.0, 1.0):
        assert expected == pytest.approx((len(path) / mask.shape[0]) ** 2)


def test_paths_in_parallel_add_their_conductances():
    mask = np.zeros((9, 5, 9), dtype=np.uint8)
    short = _serpentine(mask, 1, width=2, layers=4)
    long = _serpentine(mask, 3, width=7, layers=4)
    resistances = [_chain_resistance(p, (1, 1, 1)) for p in (short, long)]
    expected = (len(short) + len(long)) / (9**2 * sum(1 / r for r in resistances))
    result = tortuosity(mask, "z", **CPU)
    assert result.tortuosity == pytest.approx(expected, rel=2e-3)


def test_layers_across_the_transport_axis_do_not_percolate():
    mask = np.zeros((6, 6, 8), dtype=np.uint8)
    mask[:, :, ::2] = 1  # lamellae: parallel to z and y, in series along x
    assert tortuosity(mask, "z", **CPU).tortuosity == pytest.approx(1.0, abs=1e-5)
    across = tortuosity(mask, "x", **CPU)
    assert across.tortuosity == math.inf and across.effective_diffusivity == 0.0
    assert across.macmullin == math.inf
    assert "does not percolate along x" in across.note and across.iterations == 0


def test_absent_phase_single_voxel_and_single_layer():
    absent = tortuosity(np.zeros((4, 4, 4), dtype=np.uint8), "z", **CPU)
    assert absent.tortuosity == math.inf and "absent" in absent.note
    voxel = tortuosity(np.ones((1, 1, 1), dtype=np.uint8), "z", **CPU)
    assert voxel.tortuosity == 1.0 and voxel.effective_diffusivity == 1.0
    layer = np.zeros((1, 4, 4), dtype=np.uint8)
    layer[0, :2] = 1
    single = tortuosity(layer, "z", **CPU)
    assert (single.tortuosity, single.effective_diffusivity) == (1.0, 0.5)
    assert "one layer" in single.note


def test_percolating_convention_uses_the_through_connected_fraction():
    mask = np.zeros((10, 3, 5), dtype=np.uint8)
    mask[:, 1, 1] = 1  # a channel
    mask[0:4, 1, 3] = 1  # a dead end from the front
    mask[5, 1, 3] = 1  # an isolated voxel
    total = tortuosity(mask, "z", **CPU)
    percolating = tortuosity(mask, "z", convention="percolating", **CPU)
    assert total.through_fraction == pytest.approx(10 / 15)
    assert percolating.effective_diffusivity == pytest.approx(total.effective_diffusivity, rel=1e-3)
    assert percolating.tortuosity == pytest.approx(1.0, abs=2e-3)
    assert total.tortuosity == pytest.approx(1.5, rel=2e-3)
    assert total.volume_fraction == pytest.approx(15 / 150)
    assert percolating.volume_fraction == pytest.approx(10 / 150)


def test_same_value_as_taufactor_called_directly():
    import taufactor

    rng = np.random.default_rng(3)
    mask = (rng.random((24, 20, 20)) < 0.6).astype(np.uint8)
    solver = taufactor.Solver(mask, device="cpu")
    solver.solve(verbose=False, conv_crit=1e-2)
    direct = float(np.ravel(solver.tau)[0])
    ours = tortuosity(mask, "z", device="cpu", conv_crit=1e-2)
    assert ours.effective_diffusivity == float(np.ravel(solver.D_eff)[0])  # bit for bit
    assert ours.iterations == solver.iter
    # TauFactor divides by a float32 volume fraction, we by the exact one
    assert ours.tortuosity == pytest.approx(direct, rel=1e-6)


def test_long_solve_is_refused_with_the_way_to_go_ahead():
    mask = np.ones((16, 8, 8), dtype=np.uint8)
    with pytest.raises(BatterySegError, match=r"above the limit.*--force.*--device cuda.*--roi"):
        tortuosity(mask, "z", device="cpu", max_seconds=1e-9)
    with pytest.raises(BatterySegError, match="above the limit"):
        tortuosity(mask, "z", device="cpu", max_memory_bytes=1000)
    forced = tortuosity(mask, "z", device="cpu", max_seconds=1e-9, force=True)
    assert forced.tortuosity == pytest.approx(1.0, abs=1e-5)


def test_measured_rate_refines_the_estimate(monkeypatch):
    import battery_seg.analysis._estimate as estimate_module

    rng = np.random.default_rng(1)
    mask = (rng.random((40, 24, 24)) < 0.55).astype(np.uint8)
    job = tortuosity_job(mask, "z", solver=SolverOptions(device="cpu", conv_crit=1e-6))
    events = [next(job) for _ in range(4)]
    job.close()
    measured = [e.data["estimate"] for e in events[1:] if e.data]
    assert len(measured) == 1 and "measured over the first" in measured[0]
    monkeypatch.setitem(estimate_module.SECONDS_PER_VOXEL_ITERATION, "cpu", 1e-18)
    monkeypatch.setitem(estimate_module._SECONDS_PER_ITERATION, "cpu", 0.0)
    job = tortuosity_job(
        mask, "z", solver=SolverOptions(device="cpu", conv_crit=1e-6, max_seconds=1e-4)
    )
    assert next(job).step == 0  # the prior estimate is far below the limit
    with pytest.raises(BatterySegError, match="above the limit"):
        for _ in range(4):
            next(job)


def test_estimate_comes_first_and_scales_with_the_volume():
    small = estimate_tortuosity((64, 64, 64), "z", "cpu")
    assert small.iterations == 500 and small.memory_bytes == 72 * 64**3
    bigger = estimate_tortuosity((256, 64, 64), "z", "cpu")
    assert bigger.iterations == 1100
    # 5 ns per voxel and iteration plus 2 ms per iteration (the prior on the CPU)
    assert small.seconds == pytest.approx(500 * (64**3 * 5e-9 + 2e-3))
    assert bigger.seconds == pytest.approx(1100 * (4 * 64**3 * 5e-9 + 2e-3))
    assert "GB on cpu" in bigger.describe()
    mask = np.ones((8, 4, 4), dtype=np.uint8)
    first = next(tortuosity_job(mask, "z", solver=SolverOptions(device="cpu")))
    assert isinstance(first, Progress) and first.step == 0
    assert first.data["estimate"].startswith("tortuosity of phase along z: about")


def test_cancel_stops_the_solve_at_the_next_progress_event():
    rng = np.random.default_rng(0)
    mask = (rng.random((40, 24, 24)) < 0.55).astype(np.uint8)
    job = tortuosity_job(mask, "z", solver=SolverOptions(device="cpu", conv_crit=1e-6))
    events = [next(job), next(job)]
    # one chunk ran: about a second by the prior estimate (20 ms an iteration here), at most 100
    assert 0 < events[1].step <= 100
    job.close()  # what napari's worker.quit() does at a yield
    with pytest.raises(StopIteration):
        next(job)


def test_bad_requests():
    with pytest.raises(BatterySegError, match="3D"):
        tortuosity(np.ones((4, 4), dtype=np.uint8), "z")
    with pytest.raises(BatterySegError, match="convention"):
        tortuosity(np.ones((4, 4, 4), dtype=np.uint8), "z", convention="porespy")
    with pytest.raises(BatterySegError, match="more than 10x"):
        tortuosity(np.ones((4, 4, 4), dtype=np.uint8), "z", (20.0, 1.0, 1.0), device="cpu")


@pytest.mark.parametrize("faster", [1, 2])
def test_solve_keeps_the_thread_count_that_ran_faster(faster):
    import torch

    from battery_seg.analysis._taufactor import ThreadChoice

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        choice = ThreadChoice("cpu")
        used = []
        for index in range(5):
            with choice.chunk(index, 10):
                used.append(torch.get_num_threads())
                time.sleep(0.01 if torch.get_num_threads() == faster else 0.05)
        assert used[:3] == [2, 1, 2]  # warm-up, then one thread, then all, judged
        assert used[3:] == [faster, faster] and choice.threads == faster
        assert torch.get_num_threads() == 2  # restored between and after chunks
    finally:
        torch.set_num_threads(threads)


def test_taufactor_prints_nothing(capsys):
    rng = np.random.default_rng(2)
    mask = (rng.random((30, 12, 12)) < 0.6).astype(np.uint8)
    tortuosity(mask, "z", device="cpu", conv_crit=1e-3, iter_limit=150)  # not converged
    assert capsys.readouterr().out == ""


def test_the_config_hands_its_solver_fields_on_whole():
    from battery_seg.analysis import AnalysisConfig

    config = AnalysisConfig(
        convention="percolating",
        front_face="high",
        device="cpu",
        conv_crit=1e-3,
        iter_limit=500,
        max_solve_seconds=60.0,
        max_memory_bytes=10**9,
        force=True,
    )
    assert config.solver == SolverOptions(
        "percolating",
        "high",
        "cpu",
        1e-3,
        500,
        max_seconds=60.0,
        max_memory_bytes=10**9,
        force=True,
    )
    with pytest.raises(BatterySegError, match="iter_limit at least 100"):
        SolverOptions(iter_limit=10)
    with pytest.raises(BatterySegError, match="either solver= or its fields"):
        tortuosity(np.ones((4, 4, 4), dtype=np.uint8), solver=SolverOptions(), device="cpu")
