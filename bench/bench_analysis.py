"""Benchmark of the phase analysis: our tortuosity path against TauFactor called directly, and
volume-fraction throughput on a Zarr volume against an in-memory numpy bincount.

Both comparisons run their peer in the same process, one after the other (tortuosity solves
alternate over ``--rounds``), so the machine's load affects both alike; the ratios are the
figures to quote.

    .venv/bin/python bench/bench_analysis.py                       # 256^3 tortuosity (minutes)
    .venv/bin/python bench/bench_analysis.py --tortuosity-size 128 --rounds 3  # quicker
    .venv/bin/python bench/bench_analysis.py --device cuda         # on a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
ELECTRODE = DATA / "nmc_electrode_polaron_256.tiff"


def _electrode_pore(size: int) -> np.ndarray:
    import tifffile

    if ELECTRODE.exists():
        labels = tifffile.imread(ELECTRODE)[:size, :size, :size]
        return (labels == 0).astype(np.uint8)
    print(f"{ELECTRODE} is absent: using a random 45 % pore mask instead")
    rng = np.random.default_rng(0)
    return (rng.random((size,) * 3) < 0.45).astype(np.uint8)


def _solve_directly(mask: np.ndarray, device: str) -> tuple[float, int, float]:
    import taufactor
    import torch

    start = time.perf_counter()
    solver = taufactor.Solver(mask, device=device)
    with contextlib.redirect_stdout(io.StringIO()):  # its printout only
        solver.solve(verbose=False, conv_crit=1e-2)
    tau = float(np.ravel(solver.tau)[0])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return tau, solver.iter, time.perf_counter() - start


def _solve_ours(mask: np.ndarray, device: str) -> tuple[float, int, float, str]:
    from battery_seg.analysis import tortuosity_job
    from battery_seg.jobs import run_job

    estimates = []
    start = time.perf_counter()
    result = run_job(
        tortuosity_job(mask, "z", device=device, conv_crit=1e-2, force=True),
        lambda event: estimates.append(event.data["estimate"]) if event.data else None,
    )
    return result.tortuosity, result.iterations, time.perf_counter() - start, estimates[-1]


def bench_tortuosity(size: int, device: str, threads: int, rounds: int) -> None:
    import torch

    from battery_seg.analysis import estimate_tortuosity

    torch.set_num_threads(threads)
    mask = _electrode_pore(size)
    prior = estimate_tortuosity(mask.shape, "z", device)
    print(
        f"tortuosity, pore of the NMC electrode {mask.shape}, {device}, {threads} threads, "
        f"{rounds} alternating rounds"
    )
    print(f"  prior estimate: {prior.describe()}")
    direct_times, our_times = [], []
    for number in range(1, rounds + 1):
        tau, iterations, seconds = _solve_directly(mask, device)
        direct_times.append(seconds)
        print(
            f"  round {number}: TauFactor directly: tau = {tau:.4f}, {iterations} iterations, "
            f"{seconds:.1f} s"
        )
        tau, iterations, seconds, refined = _solve_ours(mask, device)
        our_times.append(seconds)
        print(
            f"  round {number}: battery_seg path:   tau = {tau:.4f}, {iterations} iterations, "
            f"{seconds:.1f} s (cluster labelling, estimates and progress included)"
        )
    ratios = [ours / direct for ours, direct in zip(our_times, direct_times, strict=True)]
    print(
        f"  overhead ratio ours / direct per round: {', '.join(f'{r:.3f}' for r in ratios)}; "
        f"median {float(np.median(ratios)):.3f}"
    )
    print(
        f"  prior estimate / measured = {prior.seconds / float(np.median(direct_times)):.2f}; "
        f"last refined estimate: {refined}"
    )


def bench_fractions(shape: tuple[int, int, int], chunks: tuple[int, int, int]) -> None:
    import zarr

    from battery_seg.analysis import count_phases_job
    from battery_seg.jobs import run_job

    rng = np.random.default_rng(0)
    data = rng.integers(1, 4, size=shape, dtype=np.uint8)
    voxels = data.size
    with tempfile.TemporaryDirectory() as folder:
        store = zarr.create_array(
            Path(folder) / "labels.zarr", shape=shape, chunks=chunks, dtype="uint8"
        )
        store[:] = data
        store = zarr.open_array(Path(folder) / "labels.zarr", mode="r")
        run_job(count_phases_job(store[:8, :8, :8], "pore,active,cbd"))  # warm-up

        start = time.perf_counter()
        np.bincount(data.ravel(), minlength=4)
        numpy_s = time.perf_counter() - start

        start = time.perf_counter()
        run_job(count_phases_job(store, "pore,active,cbd", axes=()))
        fractions_s = time.perf_counter() - start

        start = time.perf_counter()
        run_job(count_phases_job(store, "pore,active,cbd", axes=(0, 1, 2)))
        profiles_s = time.perf_counter() - start

    print(f"volume fractions, Zarr {shape} uint8 in chunks {chunks} ({voxels / 1e6:.0f} M voxels)")
    print(f"  numpy bincount in memory:        {voxels / numpy_s / 1e6:8.1f} M voxels/s")
    print(
        f"  ours, fractions (Zarr, chunked): {voxels / fractions_s / 1e6:8.1f} M voxels/s "
        f"(ratio to numpy {numpy_s / fractions_s:.2f})"
    )
    print(
        f"  ours, + profiles along z, y, x:  {voxels / profiles_s / 1e6:8.1f} M voxels/s "
        f"(ratio to numpy {numpy_s / profiles_s:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tortuosity-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=1, help="alternating solves of each")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-tortuosity", action="store_true")
    parser.add_argument("--fraction-shape", type=int, nargs=3, default=(256, 512, 512))
    parser.add_argument("--fraction-chunks", type=int, nargs=3, default=(32, 256, 256))
    args = parser.parse_args()
    bench_fractions(tuple(args.fraction_shape), tuple(args.fraction_chunks))
    if not args.skip_tortuosity:
        bench_tortuosity(args.tortuosity_size, args.device, args.threads, args.rounds)


if __name__ == "__main__":
    main()
