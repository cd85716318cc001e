"""``battery-seg export``: a model as a bioimage.io model package, to share or publish."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_command, add_overwrite_argument, add_voxel_size_argument

EPILOG = """\
examples:
  battery-seg export model.pt -o model.zip --author "Ada Lovelace" --license MIT
  battery-seg export default -o battery-seg-default.zip
  battery-seg export model.pt -o model.zip --author "A. Author" --sample image.tif

The package (bioimage.io model format 0.5) holds the weights as a PyTorch state dict with the
U-Net's source, TorchScript and ONNX; the context slices as input channels, the phases as output
channels, the training voxel size, the tiling halo, the intensity normalisation, test tensors
and a README on how the model was trained and validated. Every battery-seg command that takes a
model (segment --model, train --init, the docks) takes the package too. Check it with
'bioimageio test MODEL.zip' (pip install bioimageio.core) and publish it by uploading the zip at
https://bioimage.io (Upload)."""


def add_parser(subparsers) -> None:
    from ..export import DEFAULT_LICENSE

    parser = add_command(
        subparsers,
        "export",
        help="export a model as a bioimage.io model package (.zip) to share or publish",
        description="Write a model (a .pt file from 'battery-seg train' or a bundled model) as a "
        "bioimage.io model package that battery-seg, bioimage.io tools, ilastik and deepImageJ "
        "can run.",
        epilog=EPILOG,
    )
    add = parser.add_argument
    add("model", metavar="MODEL", help="model file (.pt), a package, or 'default' / 'fast'")
    add("-o", "--output", required=True, type=Path, metavar="MODEL.zip", help="package to write")
    add(
        "--author",
        action="append",
        default=[],
        metavar="NAME",
        help="an author of the model (repeat for several; required except for bundled models)",
    )
    add(
        "--license",
        default=DEFAULT_LICENSE,
        metavar="SPDX",
        help=f"licence as an SPDX identifier, e.g. {DEFAULT_LICENSE} (default), MIT, BSD-3-Clause",
    )
    add("--name", help="name on bioimage.io (default: from the model file and its phases)")
    add("--description", help="one or two sentences on what the model segments")
    add_voxel_size_argument(
        parser, "voxel size (µm) of the training data, for models whose file does not record it"
    )
    add(
        "--sample",
        metavar="IMAGE",
        help="volume to cut the test input and cover image from (default: the synthetic sample)",
    )
    add_overwrite_argument(parser, "replace an existing MODEL.zip")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export import ExportConfig, export_job
    from ..jobs import run_job
    from ._progress import ProgressPrinter

    sample = None
    if args.sample:
        from ..io import open_volume

        sample = open_volume(args.sample).data
    config = ExportConfig(
        model=args.model,
        output=args.output,
        name=args.name,
        authors=args.author,
        license=args.license,
        description=args.description,
        voxel_size=args.voxel_size,
        sample=sample,
        overwrite=args.overwrite,
    )
    result = run_job(export_job(config), ProgressPrinter("export"))
    size = " × ".join(f"{v:g}" for v in result.voxel_size) + " µm" if result.voxel_size else "?"
    print(
        f"wrote {result.path} ({result.path.stat().st_size / 2**20:.1f} MiB): "
        f"'{result.name}', phases {', '.join(result.phases)}, voxel size {size}; "
        f"check it with 'bioimageio test {result.path}'"
    )
    return 0
