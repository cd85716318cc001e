"""``battery-seg stats``: volume fractions, profiles, surfaces, connectivity and tortuosity."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..checks import check_memory, check_regular, printable, register_input
from ..errors import BatterySegError
from ._cluster import add_cluster_arguments, cluster_options
from ._options import (
    add_axis_argument,
    add_command,
    add_device_argument,
    add_front_face_argument,
    add_overwrite_argument,
    add_phases_argument,
    add_voxel_size_argument,
    write_output,
)
from ._volume import add_selection_arguments, check_outputs, open_input

EPILOG = """\
examples:
  battery-seg stats labels.zarr                             # fractions, surfaces, connectivity (z)
  battery-seg stats electrode.tiff --phases pore=0,nmc=85,cbd=170 --voxel-size 0.39 0.39 0.39 \\
      --axis all --tortuosity --json stats.json --csv stats.csv
  battery-seg stats seg.zarr --probabilities probs.zarr --tortuosity   # with uncertainty ranges
  battery-seg stats /scratch/labels.zarr --scheduler tcp://10.0.0.5:8786 --no-connectivity
  battery-seg stats electrode.tiff --phases pore=0,active=85,cbd=170 --voxel-size 0.39 0.39 0.39 \
      --size-distribution --representativity --cbd-diffusivity 0.1 \
      --conductivity active=1,cbd=0.01 --pybamm nmc.json --electrode positive

Label 0 is unlabelled (excluded) unless --phases maps it (NAME=VALUE pairs for foreign files).
Fractions, profiles, surfaces and connectivity stream through the volume slab by slab on all
cores; tortuosity needs the analysed box in memory and is refused before any work when it does
not fit (the message names a --roi that does); with --scheduler or --workers only the counting
runs on the cluster, the rest here. A partially written segmentation
(OUT.zarr.partial) is refused: finish it first. Before each tortuosity solve the time and
memory are estimated and printed; requests above --max-minutes are refused unless --force.
Tortuosity convention (stated in the outputs): taufactor = volume fraction of all voxels of the
phase / relative effective diffusivity; percolating = through-connected fraction instead.
Size distributions, representativity and the multiphase solves (--cbd-diffusivity,
--conductivity) need the analysed box in memory too; surface coverage (with the surface areas)
streams. All lengths are in µm with the voxel size (anisotropic voxels honoured)."""


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "stats",
        help="volume fractions, profiles, surfaces, connectivity, tortuosity, sizes of labels",
        description="Measure a phase label volume: volume fractions and through-thickness "
        "profiles, specific surface and interfacial areas and surface coverage, through-connected "
        "fractions and TauFactor tortuosity factors (also with a porous CBD and through the "
        "electronic network), size distributions and particles, representativity, and PyBaMM / "
        "BPX parameters, with the convention and units stated.",
        epilog=EPILOG,
    )
    parser.add_argument("labels", help="label volume: TIFF, Zarr/OME-Zarr or file.h5:/dataset")
    add_volume_arguments(parser)
    add_axis_argument(
        parser, "transport / profile axis (default z, the electrode thickness)", all_axes=True
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
    parser.add_argument(
        "--size-distribution",
        action="store_true",
        help="per phase: local-thickness size distribution (D10/D50/D90) and watershed "
        "particles (count, equivalent diameters, sphericity); pores too",
    )
    parser.add_argument(
        "--representativity",
        action="store_true",
        help="95%% interval of every volume fraction from the volume itself (ImageRep) and "
        "the edge length needed for +-1%%",
    )
    parser.add_argument(
        "--cbd-diffusivity",
        type=float,
        metavar="D",
        help="also solve the electrolyte tortuosity with a porous CBD of relative "
        "diffusivity D in (0, 1] (e.g. 0.1; TauFactor's multiphase solver)",
    )
    parser.add_argument(
        "--conductivity",
        metavar="NAME=S,...",
        help="also solve the electronic tortuosity with these relative conductivities in "
        "(0, 1], each phase once, e.g. active=1,cbd=0.01 (active = every active phase)",
    )
    parser.add_argument(
        "--pybamm",
        type=Path,
        metavar="OUT",
        help="write PyBaMM parameters (and a BPX fragment) of the electrode as JSON; "
        "turns on --size-distribution and --tortuosity; needs the voxel size, a pore and an "
        "active phase and axis z (checked first); refused for a microstructure a cell model "
        "cannot run with (no pore, no active material, no ionic path through z)",
    )
    parser.add_argument(
        "--electrode",
        default="negative",
        choices=("negative", "positive"),
        help="which electrode the --pybamm parameters describe (default negative)",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="write all numbers as JSON")
    parser.add_argument(
        "--csv", type=Path, metavar="OUT", help="write one row per phase/network and axis as CSV"
    )
    add_overwrite_argument(
        parser, "replace existing outputs (a JSON / CSV file; never an input or another kind)"
    )
    add_cluster_arguments(parser, "The chunked counting (fractions, profiles)")
    parser.set_defaults(func=run)


def add_volume_arguments(parser: argparse.ArgumentParser) -> None:
    """``--phases``, ``--voxel-size``, ``--channel`` and ``--timepoint`` (shared with
    ``battery-seg masks``)."""
    add_phases_argument(
        parser,
        "phase set (default: from the label file, else si-graphite); "
        "e.g. nmc, pore,active,cbd or pore=0,nmc=85,cbd=170",
    )
    add_voxel_size_argument(parser)
    add_selection_arguments(parser)


def open_labels(args: argparse.Namespace):
    """Open LABELS lazily; returns (volume, phase set)."""
    volume = open_input(args.labels, args, voxel_size=args.voxel_size)
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
        tortuosity=args.tortuosity or args.pybamm is not None,
        size_distribution=args.size_distribution or args.pybamm is not None,
        representativity=args.representativity,
        cbd_diffusivity=args.cbd_diffusivity,
        conductivity=args.conductivity,
        convention=args.convention,
        networks=tuple(args.network) if args.network else None,
        front_face=args.front_face,
        device=args.device,
        thresholds=tuple(args.thresholds),
        roi=parse_roi(args.roi),
        max_solve_seconds=60.0 * args.max_minutes,
        force=args.force,
        electrode=args.electrode if args.pybamm is not None else None,
        cluster=cluster_options(args),
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
    from ._progress import ProgressPrinter

    if args.json is not None and args.json == args.csv:
        raise BatterySegError(f"--json and --csv name the same file {args.json}; give two names.")
    if args.pybamm is not None and args.pybamm in (args.json, args.csv):
        raise BatterySegError("--pybamm names the same file as --json or --csv; give another name.")
    outputs = [(args.json, "json"), (args.csv, "csv"), (args.pybamm, "json")]
    check_outputs(outputs, args.overwrite, [args.labels, args.probabilities])
    with ProgressPrinter("stats") as progress:
        progress.status(f"opening {args.labels}")
        volume, phases = open_labels(args)
        config = build_config(args, volume, phases)
        probabilities = open_probabilities(args.probabilities) if args.probabilities else None
        result = analyse(
            volume, config, probabilities=probabilities, on_progress=_Printer(progress)
        )
    shape = " x ".join(map(str, result.shape))
    print(f"{printable(volume.name)}: {shape} voxels, phases {phases.describe()}")
    print(result.format_table())
    write_output(args.json, result.to_json, args.overwrite)
    write_output(args.csv, result.to_csv, args.overwrite)
    if args.pybamm is not None:
        from ..analysis import write_cell_parameters

        write_cell_parameters(result, args.pybamm, args.electrode, overwrite=args.overwrite)
        print(f"wrote {args.pybamm}")
    return 0


def open_probabilities(path: str):
    """Per-phase probabilities (K, Z, Y, X): a Zarr array (``seg.zarr/probabilities`` as
    ``battery-seg segment --probabilities`` writes it) read lazily, or a 4D TIFF."""
    register_input(path)
    check_regular(path, "probabilities")
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
        with tifffile.TiffFile(path) as tif:
            need = tif.series[0].nbytes
        check_memory(need, f"reading the probabilities {path}", "Give them as a Zarr array.")
        return tifffile.imread(path)
    except BatterySegError:
        raise
    except Exception as exc:
        raise BatterySegError(
            f"Cannot read probabilities from {path}: give a Zarr array or a TIFF of shape "
            f"(phases, Z, Y, X) ({exc})."
        ) from None
