"""``battery-seg segment``: segment a volume into phases with a U-Net, block by block."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checks import output_kind
from ..names import BACKENDS
from ._cluster import add_cluster_arguments, cluster_options
from ._options import (
    add_axis_argument,
    add_command,
    add_device_argument,
    add_overwrite_argument,
    add_voxel_size_argument,
)
from ._volume import add_selection_arguments, check_outputs, open_input

EPILOG = """\
examples:
  battery-seg segment scan.tif -o labels.zarr                      # default model, z slices
  battery-seg segment nmc_scan.tif -o labels.tif --model nmc       # a cathode, no painting
  battery-seg segment scan.h5:/exchange/data -o labels.tif --model my_model.pt
  battery-seg segment scan.tif -o labels.zarr --model shared_model.zip   # a bioimage.io package
  battery-seg segment big.zarr -o labels.zarr --triplanar --probabilities --uncertainty entropy
  battery-seg segment big.zarr -o labels.zarr --workers 2 --memory-limit 2GiB --model fast
  battery-seg segment /scratch/big.zarr -o /scratch/labels.zarr --scheduler tcp://10.0.0.5:8786

INPUT is anything 'battery-seg info' opens: a TIFF stack, a folder of TIFF slices, Zarr /
OME-Zarr, or an HDF5 dataset addressed as file.h5:/path/to/dataset. The labels hold the model's
phase values 1..K and the input's voxel size. An OME-Zarr output is written block by block: if a
run stops (Ctrl-C, a crash, kill -9, a lost worker), run the same command again and it
continues from the blocks already written; the output appears at OUTPUT.zarr only when complete.
A second run into the same OUTPUT is refused while the first runs. --overwrite replaces only an
output this tool wrote (or a TIFF file), never an input or a folder it did not write.
On a cluster the workers read INPUT and write OUTPUT themselves (use paths on a filesystem they
share); the model is sent to each worker once."""


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "segment",
        help="segment a tomography volume into phases with a 2D / 2.5D U-Net",
        description="Segment a volume of any size into phases (pore, silicon, CBD, graphite, "
        "...) with a U-Net, in blocks with seamless tiling, on this machine or a dask cluster.",
        epilog=EPILOG,
    )
    add = parser.add_argument
    add("input", metavar="INPUT", help="volume to segment (TIFF, folder, Zarr, file.h5:/dataset)")
    add(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="OUTPUT",
        help="OUTPUT.zarr (OME-Zarr, resumable; for large volumes) or OUTPUT.tif",
    )
    add(
        "--model",
        default=None,
        metavar="MODEL",
        help="model file (.pt) from 'battery-seg train', a bioimage.io package (.zip, folder "
        "or rdf.yaml) from 'battery-seg export', or a bundled model: for Si-graphite anodes "
        "'default' (the default), 'fast' (about 2x faster, CBD a little less accurate) or '2d' "
        "(one slice at a time: single slices and stacks of unrelated images); for cathodes "
        "(pore, active, cbd) 'nmc' or its one-slice 'nmc-2d'",
    )
    add(
        "--context",
        type=int,
        default=None,
        metavar="N",
        help="slices the model sees (read from the model; given, it must match)",
    )
    add_axis_argument(parser, "slicing axis: segment planes perpendicular to it (default z)")
    add(
        "--triplanar",
        action="store_true",
        help="average the phase probabilities of z, y and x passes (3x slower, smoother)",
    )
    add(
        "--probabilities",
        action="store_true",
        help="also store per-phase probabilities (uint8, p*255) in the OME-Zarr output",
    )
    add(
        "--uncertainty",
        choices=("entropy", "margin"),
        default=None,
        help="also store an uncertainty map (uint8, 255 = most uncertain) in the OME-Zarr output",
    )
    add(
        "--tile",
        type=int,
        default=None,
        metavar="N",
        help="in-plane tile size in pixels, a multiple of 2**depth of the model (default: the "
        "fewest tiles of up to 1152 pixels covering a plane; a plane up to 1152 wide is one tile)",
    )
    add(
        "--batch",
        type=int,
        default=None,
        metavar="N",
        help="tiles per network call (default: 4 of 256 x 256 on the CPU; on a GPU, as many as "
        "a quarter of its free memory holds)",
    )
    add(
        "--block",
        type=int,
        nargs=3,
        default=None,
        metavar=("Z", "Y", "X"),
        help="voxels per task and OME-Zarr chunk (default: chosen from the volume)",
    )
    add_device_argument(parser, "the network")
    add(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="how the network runs on the CPU (default auto: OpenVINO when installed and it keeps "
        "the labels, for volumes of 8 Mvoxel or more; else PyTorch)",
    )
    add_voxel_size_argument(parser)
    add_selection_arguments(parser)
    add_overwrite_argument(
        parser,
        "replace an existing output (only one this tool wrote: an OME-Zarr label store or "
        "a TIFF file; never a folder it did not write)",
    )
    add_cluster_arguments(parser, "Segmentation")
    parser.set_defaults(func=run, interrupted=interrupted)


def run(args: argparse.Namespace) -> int:
    from ..inference import SegmentConfig, segment_job
    from ..jobs import run_job
    from ._progress import ProgressPrinter

    config = SegmentConfig(
        model=args.model,
        context=args.context,
        axis=args.axis,
        triplanar=args.triplanar,
        tile=args.tile,
        batch_size=args.batch,
        device=args.device,
        backend=args.backend,
        probabilities=args.probabilities,
        uncertainty=args.uncertainty or "none",
        output=args.output,
        overwrite=args.overwrite,
        block_shape=tuple(args.block) if args.block else None,
        cluster=cluster_options(args),
    )
    check_outputs([(args.output, output_kind(args.output))], args.overwrite, [args.input])
    with ProgressPrinter("segment") as progress:
        progress.status(f"opening {args.input}")
        volume = open_input(args.input, args, voxel_size=args.voxel_size)
        progress.status("loading the model, estimating the intensity range")
        result = run_job(segment_job(volume, config), progress)
    _summary(result, volume)
    for note in result.notes:
        print(f"note: {note}")
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C left: a resumable partial store, or nothing."""
    partial = args.output.with_name(args.output.name + ".partial")
    if args.output.name.lower().endswith(".zarr") and partial.is_dir():
        return (
            f"the blocks already written are kept in {partial}: run the same command again to "
            "continue from them (or delete that folder to start over)."
        )
    return "nothing was written."


def _summary(result, volume) -> None:
    import dask.array as da

    from ..io import open_volume

    labels = open_volume(result.output).data  # our own output, just written
    counts = da.bincount(labels.ravel(), minlength=len(result.phases) + 1).compute()
    size = " x ".join(f"{v:g}" for v in result.voxel_size)
    timing = result.timing
    resumed = int(timing["blocks_resumed"])
    print(
        f"wrote {result.output} (uint8 labels, shape {tuple(labels.shape)}, voxel size {size} "
        f"{result.unit}; model context {result.context}, axis {result.axis}, "
        f"{result.precision}, {result.backend})"
    )
    blocks = int(timing["blocks"])
    print(
        f"{blocks} block{'s' * (blocks != 1)}"
        + (f" ({resumed} resumed)" if resumed else "")
        + f" in {timing['seconds']:.1f} s, {timing['voxels_per_second'] / 1e6:.2f} Mvoxel/s"
    )
    total = max(int(counts.sum()), 1)
    print(f"{'value':>5}  {'phase':<12} {'voxels':>14}  fraction")
    for phase in result.phases:
        n = int(counts[phase.value])
        print(f"{phase.value:>5}  {phase.name:<12} {n:>14,}  {n / total:8.4f}")
    if volume.voxel_size_source == "default":
        print("note: the input has no voxel size in its metadata; pass --voxel-size Z Y X.")
