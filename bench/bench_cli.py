"""Whole-process timing of ``battery-seg segment`` against a plain MONAI script on the same network.

What a user runs, start-up included: ``battery-seg segment IN.tif -o OUT.zarr --model NAME`` as a
fresh process, against a fresh ``python bench/monai_segment.py`` that imports torch and MONAI,
loads the same bundled network, normalises, stacks the context slices and runs
``sliding_window_inference`` (Gaussian, overlap 0.25, tile 256, batch 4). One after the other for
each volume and model, so machine load affects both alike: quote the ratio. Also the label
agreement of the two, the user / system CPU time and peak RSS of each process. ``--startup``
measures how long ``segment`` takes from launch to starting its first block on a 128^3 TIFF.

    .venv/bin/python bench/bench_cli.py                                   # 96 x 512 x 512
    .venv/bin/python bench/bench_cli.py --shape 256 256 256 --shape 32 2048 2048
    .venv/bin/python bench/bench_cli.py --models fast --shape 32 256 256  # a quick check
    .venv/bin/python bench/bench_cli.py --startup --models     # launch -> first block, 128^3
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _phantom(shape: tuple[int, int, int], folder: Path) -> Path:
    """The synthetic anode (imaged, uint16) as a TIFF; big in-plane sizes tile a 512 phantom."""
    from battery_seg.io import write_image
    from battery_seg.phantom import make_sample

    path = folder / ("phantom_" + "x".join(map(str, shape)) + ".tif")
    if path.exists():
        return path
    edge = [min(n, 512) for n in shape]
    image = make_sample(tuple(edge), seed=0).image
    reps = [-(-n // e) for n, e in zip(shape, edge, strict=True)]
    image = np.tile(image, reps)[: shape[0], : shape[1], : shape[2]]
    return write_image(path, image, voxel_size=(0.5, 0.5, 0.5))


def _run(command: list[str]) -> dict:
    """Run ``command``; wall seconds, user / system CPU seconds and peak RSS (GiB) of it."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return {
        "seconds": seconds,
        "user": usage.ru_utime,
        "system": usage.ru_stime,
        "rss": usage.ru_maxrss / 2**20,
        "output": output,
    }


def _backend(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("wrote "):
            return line.split("; ", 1)[-1].rstrip(")")
    return ""


def bench(shape, model: str, folder: Path, extra: list[str]) -> None:
    from battery_seg.io import open_volume

    image = _phantom(shape, folder)
    ours_out, monai_out = folder / f"ours_{model}.zarr", folder / f"monai_{model}.npy"
    command = [str(Path(sys.executable).parent / "battery-seg"), "segment", str(image)]
    ours = _run([*command, "-o", str(ours_out), "--model", model, "--overwrite", *extra])
    monai = _run(
        [sys.executable, str(HERE / "monai_segment.py"), str(image), str(monai_out), model]
    )
    labels = np.asarray(open_volume(ours_out).data)
    agreement = float((labels == np.load(monai_out)).mean())
    voxels = int(np.prod(shape))
    print(f"{'x'.join(map(str, shape))}, model {model}:")
    for name, run in (("battery-seg segment", ours), ("MONAI script", monai)):
        print(
            f"  {name:20} {run['seconds']:7.1f} s  {voxels / run['seconds'] / 1e6:6.2f} Mvoxel/s  "
            f"user {run['user']:6.1f} s  sys {run['system']:5.1f} s  peak RSS {run['rss']:.2f} GiB"
        )
    print(
        f"  speed-up {monai['seconds'] / ours['seconds']:.2f}x; labels agree "
        f"{100 * agreement:.3f} %; {_backend(ours['output'])}"
    )


def startup(folder: Path, repeats: int = 3) -> None:
    """Seconds from launching ``battery-seg segment`` to its first block, on a 128^3 TIFF."""
    image = _phantom((128, 128, 128), folder)
    for _ in range(repeats):
        command = [sys.executable, __file__, "--first-block-child", str(time.time()), "segment"]
        run = _run([*command, str(image), "-o", str(folder / "startup.zarr"), "--overwrite"])
        first = [line for line in run["output"].splitlines() if line.startswith("first block")]
        print(f"128^3 TIFF: {first[0]}; whole run {run['seconds']:.1f} s")


def _first_block_child(launched: float, argv: list[str]) -> int:
    """``battery-seg`` that prints when its first block starts (seconds since ``launched``)."""
    from battery_seg.cli import main
    from battery_seg.inference import _execute

    run_block, started = _execute.run_block, []

    def timed(task):
        if not started:
            started.append(time.time() - launched)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            print(
                f"first block started {started[0]:.2f} s after launch, after "
                f"{usage.ru_utime + usage.ru_stime:.2f} s of CPU time",
                flush=True,
            )
        return run_block(task)

    _execute.run_block = timed
    return main(argv)


def main() -> None:
    if sys.argv[1:2] == ["--first-block-child"]:
        sys.exit(_first_block_child(float(sys.argv[2]), sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, action="append", metavar=("Z", "Y", "X"))
    parser.add_argument("--models", nargs="*", default=["default", "fast"])
    parser.add_argument("--folder", default=None, help="keep phantoms and outputs here")
    parser.add_argument("--segment-args", default="", help="extra arguments for segment")
    parser.add_argument("--startup", action="store_true", help="time launch -> first block")
    args = parser.parse_args()
    shapes = args.shape or [[96, 512, 512]]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.folder or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        if args.startup:
            startup(folder)
        for shape in shapes:
            for model in args.models:
                bench(tuple(shape), model, folder, args.segment_args.split())


if __name__ == "__main__":
    main()
