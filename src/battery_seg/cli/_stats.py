"""``battery-seg stats``: volume fractions, profiles, surfaces, connectivity and tortuosity."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._cluster import add_cluster_arguments, cluster_fields
from ._options import add_device_argument, add_front_face_argument

EPILOG = """\
examples:
  battery-seg stats labels.zarr                             # fractions, surfaces, connectivity (z)
  battery-seg stats electrode.tiff --phases pore=0,nmc=85,cbd=170 --voxel-size 0.39 0.39 0.39 \\
      --axis all --tortuosity --json stats.json --csv stats.csv
  battery-seg stats seg.zarr --probabilities probs.zarr --tortuosity   # with uncertainty ranges
  battery-seg stats /scratch/labels.zarr --scheduler tcp://10.0.0.5:8786 --no-connectivity

Label 0 is unlabelled (excluded) unless --phases maps it (NAME=VALUE pairs for foreign files).
Fractions and profiles stream through the volume; connectivity and tortuosity need the analysed
box in memory (use --roi for a part of a huge volume); with --scheduler or --workers only the
counting runs on the cluster, the rest here. A partially written segmentation
(OUT.zarr.partial) is refused: finish it first. Before each tortuosity solve the time and
memory are estimated and printed; requests above --max-minutes are refused unless --force.
Tortuosity convention (stated in the outputs): taufactor = volume fraction of all voxels of the
phase / relative effective diffusivity; percolating = through-connected fraction instead."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="volume fractions, profiles, surface areas, connectivity and tortuosity of labels",
        description="Measure a phase label volume: volume fractions and through-thickness "
        "profiles, specific surface and interfacial areas, through-connected fractions and "
        "TauFactor tortuosity factors, with the convention and units stated.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("labels", help="label volume: TIFF, Zarr/OME-Zarr or file.h5:/dataset")
    add_volume_arguments(parser)
    parser.add_argument(
        "--axis",
        default="z",
        choices=("z", "y", "x", "all"),
        help="transport / profile axis (default z, the electrode thickness)",
    )
    parser.add_argument(
        "--tortuosity",
        action="store_true",
        help="solve tortuosity factors with TauFactor (pore and solid network)",
    )
    parser.add_argument(
        "--convention",
        default="taufactor",
        choices=("taufactor", "percolating"),
        help="tortuosity convention (default taufactor)",
    )
    parser.add_argument(
        "--network",
        action="append",
        metavar="NAME=PHASE+PHASE",
        help="tortuosity target, repeatable (default: pore and solid=all others)",
    )
    add_front_face_argument(parser)
    add_device_argument(parser, "the tortuosity solver")
    parser.add_argument(
        "--roi",
        metavar="Z0:Z1,Y0:Y1,X0:X1",
        help="analyse only this box (half-open voxel index ranges)",
    )
    parser.add_argument(
        "--probabilities",
        metavar="PROBS",
        help="per-phase probabilities (phases, Z, Y, X) for uncertainty ranges",
    )
    parser.add_argument(
        "--thresholds",
        nargs=2,
        type=float,
        default=(0.3, 0.7),
        metavar=("LOW", "HIGH"),
        help="probability thresholds (default 0.3 0.7)",
    )
    parser.add_argument("--no-surfaces", action="store_true", help="skip surface areas")
    parser.add_argument("--no-connectivity", action="store_true", help="skip connectivity")
    parser.add_argument("--no-profiles", action="store_true", help="skip profiles")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=30.0,
        help="refuse a tortuosity solve estimated longer than this (default 30)",
    )
    parser.add_argument(
        "--force", action="store_true", help="run solves above the time/memory limits"
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write all numbers as JSON")
    parser.add_argument(
        "--csv", type=Path, metavar="OUT", help="write one row per phase/network and axis as CSV"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_cluster_arguments(parser, "The chunked counting (fractions, profiles)")
    parser.set_defaults(func=run)


def add_volume_arguments(parser: argparse.ArgumentParser) -> None:
    """``--phases`` and ``--voxel-size`` (shared with ``battery-seg masks``)."""
    parser.add_argument(
        "--phases",
        metavar="PRESET|NAMES|NAME=VALUE,...",
        help="phase set (default: from the label file, else si-graphite); "
        "e.g. nmc, pore,active,cbd or pore=0,nmc=85,cbd=170",
    )
    parser.add_argument(
        "--voxel-size",
        nargs=3,
        type=float,
        metavar=("Z", "Y", "X"),
        help="voxel size in µm (overrides the file's metadata)",
    )


def open_labels(args: argparse.Namespace):
    """Open LABELS lazily; returns (volume, phase set)."""
    from ..io import open_volume

    volume = open_volume(args.labels, voxel_size=args.voxel_size)
    return volume, phases_of(volume, args.phases)


def phases_of(volume, spec: str | None, fallback=None):
    """The phase set ``spec`` (--phases) names, else the one the file names, else ``fallback``
    (default: si-graphite)."""
    from ..phases import PhaseSet

    if spec:
        return PhaseSet.parse(spec)
    if "phases" in volume.metadata:
        return PhaseSet.from_dict(volume.metadata["phases"])
    return fallback if fallback is not None else PhaseSet.parse(None)


def build_config(args: argparse.Namespace, volume, phases):
    """The :class:`~battery_seg.analysis.AnalysisConfig` of the command-line options."""
    from ..analysis import AnalysisConfig
    from ..analysis._config import parse_roi

    return AnalysisConfig(
        phases=phases,
        voxel_size=volume.voxel_size,
        voxel_size_source=volume.voxel_size_source,
        unit=volume.unit,
        axes=args.axis,
        profiles=not args.no_profiles,
        surfaces=not args.no_surfaces,
        connectivity=not args.no_connectivity,
        tortuosity=args.tortuosity,
        convention=args.convention,
        networks=tuple(args.network) if args.network else None,
        front_face=args.front_face,
        device=args.device,
        thresholds=tuple(args.thresholds),
        roi=parse_roi(args.roi),
        max_solve_seconds=60.0 * args.max_minutes,
        force=args.force,
        **cluster_fields(args),
    )


class _Printer:
    """Progress bar on stderr, plus every tortuosity time/memory estimate on its own line."""

    def __init__(self, bar) -> None:
        self.bar = bar

    def __call__(self, event) -> None:
        if "estimate" in event.data:
            self.bar.write(f"stats: estimated {event.data['estimate']}", file=sys.stderr)
        self.bar(event)


def run(args: argparse.Namespace) -> int:
    from ..analysis import analyse
    from ..errors import BatterySegError
    from ._progress import ProgressPrinter

    for output in (args.json, args.csv):
        if output is not None and output.exists() and not args.overwrite:
            raise BatterySegError(f"{output} already exists; pass --overwrite to replace it.")
    with ProgressPrinter("stats") as progress:
        progress.status(f"opening {args.labels}")
        volume, phases = open_labels(args)
        config = build_config(args, volume, phases)
        probabilities = open_probabilities(args.probabilities) if args.probabilities else None
        result = analyse(
            volume, config, probabilities=probabilities, on_progress=_Printer(progress)
        )
    print(f"{volume.name}: {' x '.join(map(str, result.shape))} voxels, phases {phases.describe()}")
    print(result.format_table())
    if args.json is not None:
        result.to_json(args.json, overwrite=args.overwrite)
        print(f"wrote {args.json}")
    if args.csv is not None:
        result.to_csv(args.csv, overwrite=args.overwrite)
        print(f"wrote {args.csv}")
    return 0


def open_probabilities(path: str):
    """Per-phase probabilities (K, Z, Y, X): a Zarr array (``seg.zarr/probabilities`` as
    ``battery-seg segment --probabilities`` writes it) read lazily, or a 4D TIFF."""
    from ..errors import BatterySegError

    if Path(path).is_dir():
        import zarr

        try:
            return zarr.open_array(path, mode="r")
        except Exception as exc:
            raise BatterySegError(
                f"{path} is not a Zarr array; give the probabilities array inside the "
                f"segmentation store, e.g. seg.zarr/probabilities ({exc})."
            ) from None
    if not Path(path).is_file():
        raise BatterySegError(f"Probabilities file {path} does not exist.")
    import tifffile

    try:
        return tifffile.imread(path)
    except Exception as exc:
        raise BatterySegError(
            f"Cannot read probabilities from {path}: give a Zarr array or a TIFF of shape "
            f"(phases, Z, Y, X) ({exc})."
        ) from None
