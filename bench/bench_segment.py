"""Benchmark of "Segment volume": our chunked path against MONAI's sliding_window_inference.

Speed: the same network on the same volume, one after the other in this process (so machine load
affects both alike; quote the ratio): our ``segment`` (blocks on dask, batch norm folded,
channels-last, float32) against MONAI ``sliding_window_inference`` (``mode="gaussian"``,
``overlap=0.25``, same tile and batch) over the whole stack of 2.5D slices. Also the label
agreement of the two, the effective GFLOP/s (network FLOPs counted with
``torch.utils.flop_counter``) against this machine's float32 matmul peak, and optionally the
labels bfloat16 keeps. Memory: peak RSS of each path in a fresh subprocess per volume size,
reading the input from a Zarr store (ours also writes an OME-Zarr store; MONAI needs the volume,
its slice stack and its output in memory).

Without ``--model`` the network is a *randomly initialised* U-Net of the default architecture:
speed does not depend on the weights, but label agreement does, so quote agreement measured with
a trained model (``--model path.pt``).

    .venv/bin/python bench/bench_segment.py                          # 256^3 speed + RSS 256, 512
    .venv/bin/python bench/bench_segment.py --size 64 --rss-sizes 64 96   # a quick check
    .venv/bin/python bench/bench_segment.py --model src/battery_seg/models/default.pt
    .venv/bin/python bench/bench_segment.py --model ...default.pt --levers --shape 32 512 512 \
        --skip-speed --rss-sizes                                # each CPU lever on its own
    python bench/bench_segment.py --device cuda --rss-sizes --bfloat16 --model ...  # on a GPU
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _network(args):
    from battery_seg.model import ModelCard, UNetConfig, save_model
    from battery_seg.phases import PhaseSet

    if args.model:
        return Path(args.model), "trained model " + args.model
    import torch

    torch.manual_seed(0)
    card = ModelCard(
        PhaseSet.parse("si-graphite"),
        context=args.context,
        architecture=UNetConfig(in_channels=args.context, n_phases=4),
    )
    path = Path(tempfile.mkdtemp()) / "random_default_architecture.pt"
    save_model(path, card.build().eval(), card)
    return path, f"randomly initialised U-Net of the default architecture, context {args.context}"


def _volume(size: int) -> np.ndarray:
    from battery_seg.phantom import make_sample

    return make_sample((size, size, size), seed=0).image


def _monai_labels(volume, model_path, tile, batch, device="cpu"):
    """The classic path: normalise, stack context slices, sliding window over the whole stack."""
    import torch
    from monai.inferers import sliding_window_inference

    from battery_seg.model import estimate_intensity_range, load_model, normalize

    network, card = load_model(model_path, device=device)
    x = normalize(np.asarray(volume), estimate_intensity_range(volume, card.normalization))
    half = card.context // 2
    padded = np.pad(x, ((half, half), (0, 0), (0, 0)), mode="reflect")
    stack = np.stack([padded[c : c + x.shape[0]] for c in range(card.context)], axis=1)
    with torch.inference_mode():
        logits = sliding_window_inference(
            torch.from_numpy(stack),
            (tile, tile),
            batch,
            network,
            overlap=0.25,
            mode="gaussian",
            sw_device=device,
            device=device,
        )
        return (logits.argmax(1) + 1).cpu().numpy().astype(np.uint8)


def _ours(
    volume,
    model_path,
    tile,
    batch,
    precision="float32",
    workers=None,
    output=None,
    device="cpu",
    **options,
):
    from battery_seg.cluster import ClusterOptions
    from battery_seg.inference import SegmentConfig, segment

    config = SegmentConfig(
        model=str(model_path),
        tile=tile,
        batch_size=batch,
        device=device,
        precision=precision,
        cluster=ClusterOptions(workers=workers),
        output=output,
        **options,
    )
    return segment(volume, config)


LEVERS = (
    ("tiles of 256 (x 0.25 overlap), blocks of 8 planes, PyTorch", 256, (8, None, None), "torch"),
    ("+ automatic tiles (one per plane up to 1152), whole-plane blocks", None, None, "torch"),
    ("+ OpenVINO", None, None, "openvino"),
)


def bench_levers(args, model_path) -> None:
    """Each lever on its own, in one process: ours with it against MONAI run once."""
    import torch

    torch.set_num_threads(args.threads)
    shape = tuple(args.shape or (args.size,) * 3)
    volume = _phantom(shape)
    warm = volume[:8]
    _monai_labels(warm, model_path, 256, 4)
    start = time.perf_counter()
    monai = _monai_labels(volume, model_path, 256, 4)
    monai_s = time.perf_counter() - start
    print(f"levers: {shape} phantom, MONAI (tile 256, batch 4) {monai_s:.1f} s")
    for name, tile, blocks, backend in LEVERS:
        block_shape = None if blocks is None else (blocks[0], *shape[1:])
        options = {"backend": backend, "block_shape": block_shape}
        _ours(warm, model_path, tile, None, **options)  # warm-up (and model conversion)
        start = time.perf_counter()
        ours = _ours(volume, model_path, tile, None, **options)
        seconds = time.perf_counter() - start
        agreement = float((ours.labels == monai).mean())
        print(
            f"  {name:66} {seconds:6.1f} s  {monai_s / seconds:5.2f}x MONAI, labels agree "
            f"{100 * agreement:.3f} %"
        )


def _phantom(shape):
    """The synthetic anode; in-plane sizes above 512 tile a 512-wide phantom."""
    from battery_seg.phantom import make_sample

    edge = tuple(min(n, 512) for n in shape)
    image = make_sample(edge, seed=0).image
    reps = [-(-n // e) for n, e in zip(shape, edge, strict=True)]
    return np.tile(image, reps)[: shape[0], : shape[1], : shape[2]]


def _flops_per_tile(model_path, tile) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from battery_seg.model import load_model

    network, card = load_model(model_path)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        network(torch.zeros(1, card.context, tile, tile))
    return float(counter.get_total_flops())


def _tile_pixels_computed(shape, tile, model_path, block_shape=None) -> int:
    """Pixels of all tiles our blocks run (overlaps and tiles recomputed at block borders)."""
    from battery_seg.inference._blocks import default_block_shape, plan_blocks
    from battery_seg.inference._tiling import plan_axis
    from battery_seg.model import load_model

    _, card = load_model(model_path)
    grids = [plan_axis(n, tile, 0.25, card.architecture.multiple) for n in shape[1:]]
    total = 0
    for block in plan_blocks(shape, block_shape or default_block_shape(shape, 0, False)):
        windows = [g.window(s.start, s.stop)[0] for g, s in zip(grids, block.box[1:], strict=True)]
        area = grids[0].tile * grids[1].tile
        total += len(windows[0]) * len(windows[1]) * block.shape[0] * area
    return total


def _matmul_peak_gflops(n: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    import torch

    if device != "cpu":
        n, repeats = 8192, 20
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def _sync(device: str) -> None:
    import torch

    if device != "cpu":
        torch.cuda.synchronize()


def _reset_gpu_peak(device: str) -> None:
    import torch

    if device != "cpu":
        torch.cuda.reset_peak_memory_stats(device)


def _gpu_peak(device: str) -> float:
    """Peak GPU memory allocated since the last reset, GiB (then reset)."""
    import torch

    if device == "cpu":
        return 0.0
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return peak


def bench_speed(args, model_path, description) -> None:
    import torch

    torch.set_num_threads(args.threads)
    device = args.device
    volume = _volume(args.size)
    voxels = volume.size
    where = (
        f"CPU, {args.threads} torch threads"
        if device == "cpu"
        else f"{device} ({torch.cuda.get_device_name(device)})"
    )
    print(
        f"speed: {volume.shape} phantom, tile {args.tile}, batch {args.batch}, overlap 0.25, "
        f"{where}; network: {description}"
    )
    peak = _matmul_peak_gflops(device=device)
    warm = volume[: min(8, args.size)]
    _ours(warm, model_path, args.tile, args.batch, device=device)  # warm-ups
    _monai_labels(warm, model_path, args.tile, args.batch, device)
    if args.bfloat16:
        _ours(warm, model_path, args.tile, args.batch, precision="bfloat16", device=device)
    _reset_gpu_peak(device)
    start = time.perf_counter()
    ours = _ours(volume, model_path, args.tile, args.batch, workers=args.workers, device=device)
    ours_s = time.perf_counter() - start
    ours_gpu = _gpu_peak(device)
    start = time.perf_counter()
    monai = _monai_labels(volume, model_path, args.tile, args.batch, device)
    monai_s = time.perf_counter() - start
    monai_gpu = _gpu_peak(device)
    agreement = float((ours.labels == monai).mean())
    peak = max(peak, _matmul_peak_gflops(device=device))  # before and after: the less disturbed one
    flops = _flops_per_tile(model_path, args.tile)
    per_pixel = flops / args.tile**2  # convolutions: the same per pixel for any tile size
    useful = per_pixel * voxels  # one dense pass, no overlap
    executed = per_pixel * _tile_pixels_computed(volume.shape, args.tile, model_path)
    print(
        f"  ours (battery_seg.segment, {ours.backend}): {voxels / ours_s / 1e6:7.3f} Mvoxel/s "
        f"({ours_s:.1f} s)"
    )
    print(f"  MONAI sliding window:       {voxels / monai_s / 1e6:7.3f} Mvoxel/s ({monai_s:.1f} s)")
    print(
        f"  speed-up: {monai_s / ours_s:.2f}x (goal >= 3x); label agreement with MONAI "
        f"float32: {100 * agreement:.3f} % (goal >= 99.5 %, quote with a trained --model)"
    )
    print(
        f"  network: {per_pixel / 1e3:.1f} kFLOP per voxel per pass; "
        f"effective {useful / ours_s / 1e9:.1f} GFLOP/s useful, {executed / ours_s / 1e9:.1f} "
        f"GFLOP/s executed (tile overlap {executed / useful:.2f}x); float32 matmul peak "
        f"{peak:.1f} GFLOP/s -> {100 * executed / ours_s / 1e9 / peak:.0f} % of peak"
    )
    if device != "cpu":
        print(f"  peak GPU memory: ours {ours_gpu:.2f} GiB, MONAI {monai_gpu:.2f} GiB")
    if args.bfloat16:
        start = time.perf_counter()
        bf16 = _ours(
            volume,
            model_path,
            args.tile,
            args.batch,
            precision="bfloat16",
            workers=args.workers,
            device=device,
        )
        bf16_s = time.perf_counter() - start
        print(
            f"  bfloat16 autocast: {voxels / bf16_s / 1e6:.3f} Mvoxel/s "
            f"({ours_s / bf16_s:.2f}x float32), labels kept "
            f"{100 * float((bf16.labels == ours.labels).mean()):.3f} %"
        )


def _write_input(path: Path, size: int) -> None:
    """A smooth random uint16 volume written slab by slab (never whole in memory)."""
    import zarr
    from scipy.ndimage import gaussian_filter

    array = zarr.create_array(str(path), shape=(size,) * 3, chunks=(32, size, size), dtype="uint16")
    rng = np.random.default_rng(0)
    for z in range(0, size, 32):
        slab = gaussian_filter(rng.random((min(32, size - z), size, size)), 2)
        array[z : z + 32] = (slab * 60000).astype(np.uint16)


def _rss_child(args) -> None:
    """Run one path on a Zarr input in this (fresh) process; print its peak RSS as JSON."""
    import torch

    from battery_seg.io import open_volume

    torch.set_num_threads(args.threads)
    volume = open_volume(args.input)
    start = time.perf_counter()
    if args.rss_child == "ours":
        _ours(
            volume,
            args.model,
            args.tile,
            args.batch,
            workers=args.workers,
            output=Path(args.input).with_name("labels.zarr"),
        )
    else:
        _monai_labels(volume.data.compute(), args.model, args.tile, args.batch)
    print(json.dumps({"peak_rss": _peak_rss(), "seconds": time.perf_counter() - start}))


def _peak_rss() -> int:
    """This process's peak RSS in bytes: VmHWM (ru_maxrss would include the parent's peak,
    which Linux carries over fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bench_rss(args, model_path) -> None:
    print(f"peak RSS (fresh process each, tile {args.tile}, batch {args.batch}; input on disk):")
    for size in args.rss_sizes:
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "input.zarr"
            _write_input(source, size)
            for path in ("ours", "monai"):
                if path == "monai" and args.skip_monai_rss:
                    continue
                command = [
                    sys.executable,
                    __file__,
                    "--rss-child",
                    path,
                    "--input",
                    str(source),
                    "--model",
                    str(model_path),
                    "--tile",
                    str(args.tile),
                    "--batch",
                    str(args.batch),
                    "--threads",
                    str(args.threads),
                ]
                if args.workers:
                    command += ["--workers", str(args.workers)]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode:
                    print(f"  {size}^3 {path}: failed: {done.stderr.strip().splitlines()[-1:]}")
                    continue
                figures = json.loads(done.stdout.strip().splitlines()[-1])
                print(
                    f"  {size}^3 {path:5}: {figures['peak_rss'] / 2**30:6.2f} GiB "
                    f"({figures['seconds']:.0f} s)"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="edge of the speed volume")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--context", type=int, default=3, help="of the random network")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--workers", type=int, default=None, help="dask threads (ours)")
    parser.add_argument("--model", default=None, help="a trained model (for label agreement)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (speed part only)")
    parser.add_argument("--bfloat16", action="store_true", help="also time bfloat16 autocast")
    parser.add_argument("--rss-sizes", type=int, nargs="*", default=[256, 512])
    parser.add_argument("--skip-monai-rss", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument(
        "--levers", action="store_true", help="time each CPU lever on its own against MONAI"
    )
    parser.add_argument("--shape", type=int, nargs=3, default=None, help="levers volume (Z Y X)")
    parser.add_argument("--rss-child", choices=("ours", "monai"), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        _rss_child(args)
        return
    model_path, description = _network(args)
    if args.levers:
        bench_levers(args, model_path)
    if not args.skip_speed:
        bench_speed(args, model_path, description)
    if args.rss_sizes:
        bench_rss(args, model_path)


if __name__ == "__main__":
    main()
