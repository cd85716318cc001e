"""Benchmark of the cell-model metrics on the 256^3 NMC electrode: the figures and their times.

Prints, for ``../shared/data/nmc_electrode_polaron_256.tiff`` (pore 0, NMC 85, CBD 170, 0.39 µm
voxels) or a crop of it: the time and result of each metric (surface coverage, local-thickness
size distribution, watershed particles, representativity, porous-CBD and electronic tortuosity,
the PyBaMM parameters), next to a peer run in the same process where one exists: PoreSpy's
``local_thickness`` (same D50?) and TauFactor's ``MultiPhaseSolver`` called directly (same tau?).

    .venv/bin/python bench/bench_metrics.py                     # 256^3 (tens of minutes on 2 cores)
    .venv/bin/python bench/bench_metrics.py --size 128          # a crop, quicker
    .venv/bin/python bench/bench_metrics.py --skip-transport    # no multiphase solves
    .venv/bin/python bench/bench_metrics.py --transport-size 128 --rounds 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
ELECTRODE = DATA / "nmc_electrode_polaron_256.tiff"
PHASES = "pore=0,nmc=85,cbd=170"
VOXEL = (0.39, 0.39, 0.39)


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def bench_coverage(labels, config) -> None:
    from battery_seg.analysis import analyse

    result, seconds = _timed(analyse, labels, config.with_changes(surfaces=True))
    data = result.to_dict()
    print(f"surface areas + coverage: {seconds:.1f} s (streamed slab by slab)")
    for name, coverage in data["surface_coverage"].items():
        shares = ", ".join(f"{other} {value:.3f}" for other, value in coverage.items())
        print(f"  {name} surface faces: {shares}")
    print(f"  active area density (NMC-pore): {data['active_area_density']:.4f} 1/µm")


def bench_sizes(labels, peer: bool) -> None:
    from battery_seg.analysis._particles import particles_job
    from battery_seg.analysis._sizes import distribution_of, local_thickness_job, percentile_sizes
    from battery_seg.jobs import run_job

    for value, name in ((0, "pore"), (85, "nmc"), (170, "cbd")):
        mask = labels == value
        thickness, seconds = _timed(run_job, local_thickness_job(mask, VOXEL))
        sizes = distribution_of(thickness, mask, float(np.prod(VOXEL)))
        line = (
            f"  {name}: local thickness D10/D50/D90 {sizes.d10:.2f}/{sizes.d50:.2f}/"
            f"{sizes.d90:.2f} µm in {seconds:.1f} s"
        )
        if peer:
            import porespy

            radius, theirs_s = _timed(porespy.filters.local_thickness, mask)
            sizes_ps, counts = np.unique(2 * VOXEL[0] * radius[mask], return_counts=True)
            d10, d50, d90 = percentile_sizes(sizes_ps, counts)
            line += f"; PoreSpy {d10:.2f}/{d50:.2f}/{d90:.2f} µm in {theirs_s:.1f} s"
        print(line)
        found, seconds = _timed(run_job, particles_job(mask, VOXEL, name=name))
        print(
            f"  {name}: {found.count} particles ({found.fragments} fragments), D50 "
            f"{found.d50:.2f} µm, sphericity {found.sphericity_mean:.3f}, in {seconds:.1f} s"
        )


def bench_representativity(labels) -> None:
    from battery_seg.analysis import representativity

    for value, name in ((0, "pore"), (85, "nmc"), (170, "cbd")):
        found, seconds = _timed(representativity, labels == value, VOXEL)
        low, high = found.ci95
        print(
            f"  {name}: {found.volume_fraction:.4f} in [{low:.4f}, {high:.4f}] (95 %), integral "
            f"range {found.integral_range_length:.2f} µm, edge for +-1 % "
            f"{found.edge_for_one_percent:.0f} µm, in {seconds:.1f} s"
        )


def _direct_multiphase(image: np.ndarray, device: str):
    import taufactor

    solver = taufactor.MultiPhaseSolver(image, cond={1: 1.0, 2: 0.1}, device=device)
    solver._end_simulation = lambda *args, **kwargs: None  # its printout only
    solver.solve(verbose=False, conv_crit=1e-2)
    return float(solver.tau[0])


def bench_transport(labels, device: str, rounds: int) -> None:
    from battery_seg.analysis import multiphase_tortuosity

    index = np.select([labels == 0, labels == 85, labels == 170], [1, 2, 3]).astype(np.uint8)
    image = np.select([index == 1, index == 3], [1, 2]).astype(np.uint8)
    ours_times, direct_times = [], []
    for _ in range(rounds):  # alternating, so the machine's load hits both alike
        direct, seconds = _timed(_direct_multiphase, image, device)
        direct_times.append(seconds)
        ours, seconds = _timed(
            multiphase_tortuosity, index, {1: 1.0, 3: 0.1}, "z", VOXEL, device=device
        )
        ours_times.append(seconds)
    ours_s, direct_s = float(np.median(ours_times)), float(np.median(direct_times))
    print(
        f"  electrolyte with porous CBD (D_cbd 0.1), z: tau {ours.tortuosity:.4f}, D_eff "
        f"{ours.effective_diffusivity:.4f} in {ours_s:.1f} s ({ours.iterations} iterations); "
        f"TauFactor direct tau {direct:.4f} in {direct_s:.1f} s (ours/direct time "
        f"{ours_s / direct_s:.2f}, medians of {rounds})"
    )
    found, seconds = _timed(
        multiphase_tortuosity, index, {2: 1.0, 3: 0.01}, "z", VOXEL, device=device
    )
    print(
        f"  electronic (NMC 1, CBD 0.01), z: tau {found.tortuosity:.4f}, D_eff "
        f"{found.effective_diffusivity:.4f} in {seconds:.1f} s ({found.iterations} iterations)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="edge of the crop (default 256)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-transport", action="store_true")
    parser.add_argument("--transport-size", type=int, help="crop for the solves (default --size)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating multiphase solves")
    parser.add_argument("--skip-peers", action="store_true", help="no PoreSpy comparison")
    args = parser.parse_args()
    import tifffile

    from battery_seg.analysis import AnalysisConfig

    if not ELECTRODE.exists():
        raise SystemExit(f"{ELECTRODE} is absent (it ships beside the project in ../shared/data)")
    labels = tifffile.imread(ELECTRODE)[: args.size, : args.size, : args.size]
    config = AnalysisConfig(PHASES, voxel_size=VOXEL, connectivity=False, profiles=False)
    print(f"NMC electrode {labels.shape}, voxel {VOXEL[0]} µm")
    bench_coverage(labels, config)
    print("size distributions and particles:")
    bench_sizes(labels, peer=not args.skip_peers)
    print("representativity (ImageRep method):")
    bench_representativity(labels)
    if not args.skip_transport:
        edge = args.transport_size or args.size
        print(f"multiphase transport on {edge}^3 ({args.device}):")
        bench_transport(labels[:edge, :edge, :edge], args.device, args.rounds)


if __name__ == "__main__":
    main()
