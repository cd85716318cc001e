"""``battery-seg masks``: a tortuosity-ready 0/1 mask of one phase as TIFF, transport axis first."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ._options import (
    add_axis_argument,
    add_command,
    add_front_face_argument,
    add_overwrite_argument,
)

_BYTES_PER_VOXEL = 5  # labels, mask and cluster ids in memory (see the epilog)

EPILOG = """\
examples:
  battery-seg masks labels.zarr --phase pore --axis z -o pore_z.tif
  battery-seg masks electrode.tiff --phases pore=0,nmc=85,cbd=170 --phase pore --axis y \\
      --front-connected -o pore_y_front.tif
  battery-seg masks labels.zarr --phase graphite+silicon+cbd --axis z -o solid_z.tif

The mask is uint8 with 1 = the kept clusters of the phase and 0 elsewhere, in TauFactor's
conventions: the transport axis is moved to axis 0 of the array (the other two keep their order)
and only face-connected (6-neighbour) clusters touching both faces of that axis are kept
(--front-connected: every cluster touching the front face). The voxel size is written in the
same axis order. The labels are loaded into memory (5 bytes per voxel)."""


def add_parser(subparsers) -> None:
    from ._stats import add_volume_arguments

    parser = add_command(
        subparsers,
        "masks",
        help="write a tortuosity-ready 0/1 mask of a phase (transport axis first) as TIFF",
        description="Reduce one phase (or a union 'a+b') to its through-connected clusters "
        "along an axis and write it as a 0/1 uint8 TIFF for TauFactor, PoreSpy and co.",
        epilog=EPILOG,
    )
    parser.add_argument("labels", help="label volume: TIFF, Zarr/OME-Zarr or file.h5:/dataset")
    add_volume_arguments(parser)
    parser.add_argument(
        "--phase",
        required=True,
        metavar="NAME[+NAME...]",
        help="phase name, or several joined by + for a network",
    )
    add_axis_argument(parser, "transport axis (becomes axis 0 of the mask; default z)")
    parser.add_argument(
        "--front-connected",
        action="store_true",
        help="keep every cluster touching the front face (dead ends included)",
    )
    add_front_face_argument(parser)
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUT.tif", help="mask TIFF to write"
    )
    add_overwrite_argument(parser, "replace OUT.tif if it exists (a TIFF file only)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis import save_mask, through_mask
    from ..analysis._config import axis_index
    from ..checks import check_memory, printable
    from ..errors import BatterySegError
    from ._stats import open_labels
    from ._volume import check_outputs

    if args.output.suffix.lower() not in (".tif", ".tiff"):
        raise BatterySegError(f"Write the mask as a TIFF: {args.output} should end in .tif.")
    check_outputs([(args.output, "tiff")], args.overwrite, [args.labels])
    volume, phases = open_labels(args)
    check_memory(
        _BYTES_PER_VOXEL * math.prod(volume.shape),
        f"the mask of {'x'.join(map(str, volume.shape))} labels",
        "Crop the labels to a smaller volume first.",
    )
    names = [n.strip() for n in args.phase.split("+")]
    if not all(names) or len(set(names)) != len(names):
        raise BatterySegError(
            f"--phase {printable(repr(args.phase), 60)} has an empty or repeated name; give a "
            f"phase or several joined by + (phases: {', '.join(phases.names)}), e.g. --phase pore."
        )
    for name in names:
        phases.value_of(name)  # unknown names: error listing the phases
    mask = through_mask(
        volume.data,
        names if len(names) > 1 else names[0],
        args.axis,
        args.front_connected,
        phases=phases,
        front_face=args.front_face,
    )
    index = axis_index(args.axis)
    sizes = volume.voxel_size
    ordered = (sizes[index], *[s for i, s in enumerate(sizes) if i != index])
    unit = "pixel" if volume.voxel_size_source == "default" else volume.unit
    save_mask(args.output, mask, ordered, unit=unit, overwrite=args.overwrite)
    kept = int(mask.sum())
    total = int(mask.size)
    kind = "front-connected" if args.front_connected else "through-connected"
    print(
        f"wrote {args.output}: {kind} {args.phase} along {args.axis}, shape {mask.shape} "
        f"(transport axis first), {kept} of {total} voxels ({kept / total:.4f}) set to 1"
    )
    if volume.voxel_size_source == "default":
        print("no voxel size in the metadata: assumed isotropic 1 voxel")
    return 0
