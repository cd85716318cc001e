"""``battery-seg sample``: write the synthetic Si-graphite anode (image + ground truth)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_command, add_overwrite_argument, add_seed_argument

EPILOG = """\
examples:
  battery-seg sample -o sample                 # 128^3 image.tif + labels.tif
  battery-seg sample -o big --shape 64 256 256 --seed 3

labels.tif holds the ground truth with the si-graphite preset values:
  1=pore, 2=silicon, 3=cbd, 4=graphite
Both files carry the voxel size (ImageJ spacing and TIFF resolution)."""


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "sample",
        help="write a synthetic Si-graphite anode XCT volume and its ground-truth labels",
        description="Generate a seeded synthetic Si-graphite anode (graphite platelets, silicon "
        "particles, carbon-binder domain, pore) and its simulated X-ray CT image.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder to write image.tif and labels.tif into (created if needed)",
    )
    parser.add_argument(
        "--shape",
        nargs=3,
        type=int,
        default=(128, 128, 128),
        metavar=("Z", "Y", "X"),
        help="volume shape in voxels (default 128 128 128)",
    )
    add_seed_argument(parser)
    add_overwrite_argument(parser, "replace image.tif / labels.tif if they already exist")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checks import check_output
    from ..errors import BatterySegError
    from ..io import write_image, write_labels
    from ..phantom import make_sample

    if min(args.shape) < 8:
        raise BatterySegError(f"--shape {args.shape} is too small; use at least 8 voxels per axis.")
    out: Path = args.output
    if out.exists() and not out.is_dir():
        raise BatterySegError(f"{out} exists and is not a folder; give a folder for -o.")
    if out.is_dir():  # refuse existing files before the sample is made
        for name in ("image.tif", "labels.tif"):
            check_output(out / name, overwrite=args.overwrite, kind="tiff")
    sample = make_sample(tuple(args.shape), seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    image = write_image(
        out / "image.tif",
        sample.image,
        voxel_size=sample.voxel_size,
        unit=sample.unit,
        overwrite=args.overwrite,
    )
    labels = write_labels(
        out / "labels.tif",
        sample.labels,
        phases=sample.phases,
        voxel_size=sample.voxel_size,
        unit=sample.unit,
        overwrite=args.overwrite,
    )
    print(
        f"wrote {image} ({sample.image.dtype}, shape {sample.image.shape}, "
        f"voxel size {' x '.join(f'{v:g}' for v in sample.voxel_size)} {sample.unit})"
    )
    print(f"wrote {labels} (ground truth: {sample.phases.describe()})")
    return 0
