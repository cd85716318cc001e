"""``battery-seg info PATH``: what a volume holds, read from its metadata and a small sample."""

from __future__ import annotations

import argparse
from typing import Any

from ..checks import printable
from ._options import add_command, add_voxel_size_argument
from ._volume import add_selection_arguments, open_input

_DESCRIPTION = """\
Show the shape, data type, chunks, voxel size and value range of a volume without loading it:
a TIFF stack (ImageJ, OME-TIFF, BigTIFF), a folder of 2D TIFF slices, a Zarr / OME-Zarr store or
an HDF5 dataset. The value range is exact for volumes up to 64 MiB and sampled from a few
slices above that (the output says which)."""

_EPILOG = """\
examples:
  battery-seg info electrode.tif
  battery-seg info slices/                      a folder of 2D TIFF slices, natural order
  battery-seg info scan.h5:/exchange/data       one dataset of an HDF5 file
  battery-seg info image.ome.zarr               OME-Zarr: voxel size and pyramid levels
  battery-seg info stack.tif --voxel-size 0.5 0.325 0.325
  battery-seg info hyperstack.tif --channel 1 --timepoint 0"""

_SOURCES = {
    "metadata": "from the file's metadata",
    "user": "given with --voxel-size",
    "default": "none in the metadata: assumed isotropic; set it with --voxel-size Z Y X",
}


def add_parser(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "info",
        help="show shape, data type, chunks, voxel size and value range of a volume",
        description=_DESCRIPTION,
        epilog=_EPILOG,
    )
    parser.add_argument(
        "path",
        metavar="PATH",
        help="TIFF file, folder of TIFF slices, .zarr store, or FILE.h5[:/path/to/dataset]",
    )
    add_voxel_size_argument(parser)
    add_selection_arguments(parser)
    parser.set_defaults(func=run)


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _number(value: float) -> str:
    return f"{value:.6g}"


def describe(volume: Any) -> list[str]:
    """The lines ``battery-seg info`` prints for ``volume``."""
    data = volume.data
    chunk = tuple(int(c[0]) for c in data.chunks)
    chunk_bytes = int(chunk[0] * chunk[1] * chunk[2]) * data.dtype.itemsize
    lines = [
        ("path", str(volume.path)),
        ("format", volume.metadata.get("format", "")),
        ("kind", volume.kind),
        ("shape", f"{' × '.join(map(str, data.shape))} (Z, Y, X)"),
        ("dtype", str(data.dtype)),
        ("size", f"{_bytes(data.nbytes)} (not loaded)"),
        ("chunks", f"{chunk} × {data.npartitions} ({_bytes(chunk_bytes)} each)"),
        (
            "voxel size",
            f"{' × '.join(map(_number, volume.voxel_size))} {volume.unit} (Z, Y, X), "
            f"{_SOURCES[volume.voxel_size_source]}",
        ),
    ]
    if len(volume.levels) > 1:
        shapes = ", ".join("×".join(map(str, level.shape)) for level in volume.levels)
        lines.append(("pyramid", f"{len(volume.levels)} levels: {shapes}"))
    found = volume.value_range()
    sampled = found.sampled_slices
    how = "exact" if sampled is None else f"sampled from {sampled} slices, not exact"
    if found.nonfinite:  # a range that skips NaN is not the exact range of the data
        how = "of the finite values" if sampled is None else how
        seen = "" if sampled is None else " in the sample"
        how += f"; {found.nonfinite:,} NaN or infinite voxels{seen} left out"
    lines.append(("value range", f"{_number(found.low)} .. {_number(found.high)} ({how})"))
    if volume.phases is not None:
        lines.append(("phases", volume.phases.describe()))
    ours = volume.metadata.get("battery_seg") or {}
    if ours and not ours.get("complete", True):
        lines.append(("status", "partially written (an interrupted or running segmentation)"))
    for key in ("axes", "file_axes", "channel", "timepoint", "voxel_size_note"):
        if key in volume.metadata:
            lines.append((key.replace("_", " "), str(volume.metadata[key])))
    width = max(len(k) for k, _ in lines) + 2
    return [f"{k + ':':<{width}}{printable(v, limit=1000)}" for k, v in lines]


def run(args: argparse.Namespace) -> int:
    volume = open_input(args.path, args, voxel_size=args.voxel_size, allow_partial=True)
    print("\n".join(describe(volume)))
    return 0
