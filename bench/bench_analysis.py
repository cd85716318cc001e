"""Benchmark of the phase analysis.

1. ``stats`` with its default measurements (fractions, profiles, surfaces, connectivity along z)
   against what a researcher writes by hand: scikit-image marching cubes + ``mesh_surface_area``
   on each phase mask (surfaces only), on the same tiled sample labels (default 128x512x512),
   one after the other in this process; the time ratio is the figure to quote.
2. A large run: the tiled sample as an OME-Zarr (default 256x1024x1024), ``battery-seg stats``
   in fresh processes (fractions and profiles only; + surfaces; + connectivity; all defaults),
   each with its wall time and peak RSS (``os.wait4``).
3. On request: our tortuosity path against TauFactor called directly (``--tortuosity``),
   volume-fraction throughput against an in-memory numpy bincount (``--fractions``), and the
   tortuosity estimate (the one a solve is refused by) against the measured solve on the tiled
   sample's pore at several sizes (``--estimate-sizes 64 128 192``).

    .venv/bin/python bench/bench_analysis.py                          # 1 and 2 (minutes)
    .venv/bin/python bench/bench_analysis.py --skip-large --peer-shape 64 256 256   # quick
    .venv/bin/python bench/bench_analysis.py --skip-peer --skip-large --tortuosity --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
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
    from battery_seg.analysis import SolverOptions, tortuosity_job
    from battery_seg.jobs import run_job

    estimates = []
    start = time.perf_counter()
    result = run_job(
        tortuosity_job(mask, "z", solver=SolverOptions(device=device, conv_crit=1e-2, force=True)),
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


def bench_estimate(sizes: list[int], device: str, threads: int) -> None:
    """The prior estimate of a solve (before it runs) against its measured time and iterations."""
    import torch

    from battery_seg.analysis import estimate_tortuosity, tortuosity

    torch.set_num_threads(threads)
    print(f"tortuosity estimate vs measured, pore of the tiled sample, {device}, {threads} threads")
    for size in sizes:
        mask = (np.asarray(tiled_sample((size,) * 3).compute()) == 1).astype(np.uint8)
        prior = estimate_tortuosity(mask.shape, "z", device)
        start = time.perf_counter()
        result = tortuosity(mask, "z", device=device, force=True)
        seconds = time.perf_counter() - start
        print(
            f"  {size}^3: estimated {prior.seconds:7.1f} s ({prior.iterations} iterations), "
            f"measured {seconds:7.1f} s ({result.iterations} iterations, tau "
            f"{result.tortuosity:.2f}); estimate / measured {prior.seconds / seconds:.2f}"
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


def tiled_sample(shape: tuple[int, int, int], tile: int = 128):
    """The bundled synthetic Si-graphite anode (``tile``^3, seed 0) tiled to ``shape`` (dask)."""
    import dask.array as da

    from battery_seg.phantom import make_anode

    base = da.from_array(make_anode((tile,) * 3, seed=0), chunks=(32, tile, tile))
    reps = [-(-n // tile) for n in shape]
    return da.tile(base, reps)[tuple(slice(0, n) for n in shape)]


def peer_surface_areas(labels: np.ndarray, voxel_size) -> dict[int, float]:
    """The hand-written script: marching cubes and mesh area of each phase mask."""
    from skimage import measure

    areas = {}
    for value in np.unique(labels):
        mask = (labels == value).astype(np.uint8)
        vertices, faces, _, _ = measure.marching_cubes(mask, 0.5, spacing=voxel_size)
        areas[int(value)] = float(measure.mesh_surface_area(vertices, faces))
    return areas


def bench_peer(shape: tuple[int, int, int], rounds: int) -> None:
    from battery_seg.analysis import AnalysisConfig, analyse

    voxel_size = (0.5, 0.5, 0.5)
    labels = np.asarray(tiled_sample(shape).compute())
    config = AnalysisConfig("si-graphite", voxel_size=voxel_size, voxel_size_source="user")
    print(f"stats defaults vs per-phase marching cubes, tiled sample {shape}, {rounds} rounds")
    ratios = []
    for number in range(1, rounds + 1):
        start = time.perf_counter()
        peer = peer_surface_areas(labels, voxel_size)
        peer_s = time.perf_counter() - start
        start = time.perf_counter()
        ours = analyse(labels, config)
        ours_s = time.perf_counter() - start
        ratios.append(ours_s / peer_s)
        print(
            f"  round {number}: marching cubes (surfaces only) {peer_s:.1f} s; stats defaults "
            f"(fractions, profiles, surfaces, connectivity) {ours_s:.1f} s; ratio {ratios[-1]:.2f}"
        )
    names = config.phases.names
    for index, name in enumerate(names, start=1):
        area = ours.surfaces.areas[name]
        print(f"  {name}: area {area:.4g} µm² (raw marching cubes {peer[index] / area - 1:+.1%})")
    print(f"  median ratio stats / marching cubes: {float(np.median(ratios)):.2f}")


# ru_maxrss survives exec: a child forked from this (large) process would report this process's
# memory, so a small Python process forks the command and reports its child's peak.
_PEAK_RSS = (
    "import os, subprocess, sys; child = subprocess.Popen(sys.argv[1:]); "
    "_, status, usage = os.wait4(child.pid, 0); print('peak_rss_kb', usage.ru_maxrss); "
    "sys.exit(status >> 8)"
)


def _measured(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (GB) of ``command`` run as a fresh process."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *command], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    peak_kb = int(done.stdout.rsplit("peak_rss_kb", 1)[1].split()[0])
    return seconds, peak_kb * 1024 / 1e9, done.stdout


def bench_large(shape: tuple[int, int, int], folder: Path) -> None:
    from battery_seg.io import write_labels

    store = folder / f"tiled_{'x'.join(map(str, shape))}.ome.zarr"
    if not store.exists():
        start = time.perf_counter()
        write_labels(store, tiled_sample(shape), phases="si-graphite", voxel_size=0.5)
        print(f"wrote {store} in {time.perf_counter() - start:.0f} s")
    cli = [str(Path(sys.executable).with_name("battery-seg")), "stats", str(store)]
    runs = {
        "fractions + profiles": ["--no-surfaces", "--no-connectivity"],
        "+ surfaces": ["--no-connectivity"],
        "+ connectivity (z)": ["--no-surfaces"],
        "defaults (all of them)": [],
    }
    voxels = int(np.prod(shape)) / 1e6
    print(f"battery-seg stats on {shape} ({voxels:.0f} M voxels), OME-Zarr, fresh processes")
    for name, flags in runs.items():
        out = folder / "stats.json"
        seconds, rss, _ = _measured([*cli, *flags, "--json", str(out), "--overwrite"])
        reported = json.loads(out.read_text()).get("seconds")
        print(f"  {name:24s} {seconds:6.1f} s wall ({reported:.1f} s analysis), {rss:.2f} GB peak")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tortuosity-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=1, help="alternating solves of each")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tortuosity", action="store_true", help="also bench tortuosity")
    parser.add_argument("--fractions", action="store_true", help="also bench fraction counting")
    parser.add_argument("--estimate-sizes", type=int, nargs="*", default=(), metavar="N")
    parser.add_argument("--fraction-shape", type=int, nargs=3, default=(256, 512, 512))
    parser.add_argument("--fraction-chunks", type=int, nargs=3, default=(32, 256, 256))
    parser.add_argument("--peer-shape", type=int, nargs=3, default=(128, 512, 512))
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--large-shape", type=int, nargs=3, default=(256, 1024, 1024))
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--folder", type=Path, help="keep the large OME-Zarr here (reused)")
    args = parser.parse_args()
    if not args.skip_peer:
        bench_peer(tuple(args.peer_shape), args.rounds)
    if not args.skip_large:
        with contextlib.ExitStack() as stack:
            folder = args.folder or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            folder.mkdir(parents=True, exist_ok=True)
            bench_large(tuple(args.large_shape), folder)
    if args.fractions:
        bench_fractions(tuple(args.fraction_shape), tuple(args.fraction_chunks))
    if args.estimate_sizes:
        bench_estimate(list(args.estimate_sizes), args.device, args.threads)
    if args.tortuosity:
        bench_tortuosity(args.tortuosity_size, args.device, args.threads, args.rounds)


if __name__ == "__main__":
    main()
