"""``battery-seg compare``: score a segmentation against a reference segmentation."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._options import (
    add_command,
    add_front_face_argument,
    add_overwrite_argument,
    add_phases_argument,
    axis_choices,
    write_output,
)

EPILOG = """\
examples:
  battery-seg compare phases.zarr truth.tif
  battery-seg compare phases.zarr truth.tif --connectivity z --json scores.json
  battery-seg compare seg.tif manual.tif --phases nmc --reference-phases pore=0,active=85,cbd=170

Per phase: IoU (intersection over union) and Dice on the voxels the reference labels (its 0s are
not scored, so painted strokes work as a reference), the volume fractions of both and their
difference, and where each reference phase went (confusion). With --connectivity the
through-connected fractions are compared too and differences are remarked. The JSON holds
{"phases": {NAME: {"iou": ..., "dice": ...}}, "mean_iou": ..., "confusion": {REFERENCE_PHASE:
{SEGMENTED_PHASE or "unlabelled": voxels}}}. Both volumes are read chunk by chunk (connectivity
loads them into memory)."""


def add_parser(subparsers) -> None:
    from ._stats import add_volume_arguments

    parser = add_command(
        subparsers,
        "compare",
        help="per-phase IoU, Dice, confusion and fraction differences against a reference",
        description="Compare a segmentation with a reference label volume of the same shape "
        "(ground truth, a manual or another tool's segmentation).",
        epilog=EPILOG,
    )
    parser.add_argument("labels", metavar="SEGMENTATION", help="label volume to score")
    parser.add_argument("reference", metavar="REFERENCE", help="label volume to score against")
    add_volume_arguments(parser)
    add_phases_argument(
        parser,
        "the reference's phase set when its values differ (default: from its file, else "
        "--phases); phases are matched by name",
        flag="--reference-phases",
    )
    parser.add_argument(
        "--connectivity",
        choices=axis_choices(all_axes=True),
        default=None,
        metavar="{z,y,x,all}",
        help="also compare through-connected fractions along this axis (loads both volumes)",
    )
    add_front_face_argument(parser)
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the scores as JSON")
    add_overwrite_argument(parser, "replace an existing OUT")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import compare_job
    from ..checks import printable
    from ..jobs import run_job
    from ._progress import ProgressPrinter
    from ._stats import open_labels, phases_of
    from ._volume import check_outputs, open_input

    check_outputs([(args.json, "json")], args.overwrite, [args.labels, args.reference])
    with ProgressPrinter("compare") as progress:
        progress.status(f"opening {args.labels} and {args.reference}")
        volume, phases = open_labels(args)
        reference = open_input(args.reference, args, voxel_size=args.voxel_size)
        theirs = phases_of(reference, args.reference_phases, fallback=phases)
        axes = {"all": ("z", "y", "x"), None: ()}.get(args.connectivity, (args.connectivity,))
        job = compare_job(
            volume.data,
            reference.data,
            phases,
            reference_phases=theirs,
            axes=axes,
            front_face=args.front_face,
            names=(
                f"the segmentation {printable(args.labels)}",
                f"the reference {printable(args.reference)}",
            ),
        )
        result = run_job(job, progress)
    shape = " x ".join(map(str, volume.shape))
    print(f"{printable(volume.name)} against {printable(reference.name)}: {shape} voxels")
    print(result.format_text())
    write_output(args.json, result.to_json, args.overwrite)
    return 0
