"""The network alone on the CPU: PyTorch float32, OpenVINO float32 and int8 (NNCF) side by side.

Answers two questions of the CPU throughput work with figures from one run on this machine:

* Does int8 post-training quantisation (NNCF, calibrated on tiles of *another* phantom than the
  one measured) pay, and how many labels does it keep? It is adopted only where it is clearly
  faster and keeps >= 99.5 % of the float32 labels.
* How fast can a whole ``segment`` run be at best? The network alone, on whole 2.5D slices
  with nothing else (no reading, blending, writing or start-up), sets the ceiling of any ratio
  against MONAI measured by ``bench/bench_cli.py``.

Each backend runs the same tiles, one after the other (machine load affects all alike: quote the
ratios). Needs ``pip install nncf`` for the int8 row (skipped with a note otherwise).

    .venv/bin/python bench/bench_quantise.py                      # default and fast, 2 threads
    .venv/bin/python bench/bench_quantise.py --models fast --threads 1 --size 256
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np


def _stacks(card, seed: int, size: int, slices: int) -> np.ndarray:
    """Normalised ``(N, context, size, size)`` stacks of a phantom, as inference feeds them."""
    from battery_seg.model import estimate_intensity_range, normalize
    from battery_seg.phantom import make_sample
    from battery_seg.training._samples import mirror_index

    image = make_sample((slices, size, size), seed=seed).image
    data = normalize(image, estimate_intensity_range(image, card.normalization))
    radius = card.context // 2
    around = np.arange(slices)[:, None] + np.arange(-radius, radius + 1)[None]
    return np.ascontiguousarray(data[mirror_index(around, slices)], dtype=np.float32)


def _time(call, tiles: np.ndarray, args) -> tuple[float, np.ndarray]:
    """Best-of-``args.repeats`` seconds for all tiles in batches, and the labels."""
    batch = args.batch
    call(tiles[:batch])  # warm-up (first-call set-up is not throughput)
    best, labels = np.inf, None
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = [call(tiles[i : i + batch]) for i in range(0, len(tiles), batch)]
        best = min(best, time.perf_counter() - start)
        labels = np.concatenate(out).argmax(1)
    return best, labels


def measure(name: str, args) -> None:
    import openvino as ov
    import torch

    from battery_seg.inference._backends import OpenVINOPredictor, _converted, cpu_settings
    from battery_seg.inference._predictor import Predictor, fuse_batchnorm
    from battery_seg.model import load_model

    torch.set_num_threads(args.threads)
    network, card = load_model(name)
    tiles = _stacks(card, seed=3, size=args.size, slices=args.slices)
    voxels = tiles.shape[0] * args.size * args.size
    fused = fuse_batchnorm(network.eval())  # as segment converts it for OpenVINO
    rows = {
        "torch float32": _time(Predictor(network, "cpu", "float32"), tiles, args),
        "openvino float32": _time(
            OpenVINOPredictor(fused, card.context, None, args.threads), tiles, args
        ),
    }
    note = ""
    if importlib.util.find_spec("nncf") is None:
        note = "int8: skipped (pip install nncf)"
    else:
        import nncf

        calibration = _stacks(card, seed=11, size=args.size, slices=args.slices)  # not measured
        start = time.perf_counter()
        quantised = nncf.quantize(
            _converted(fused, card.context, None),
            nncf.Dataset([calibration[i : i + 1] for i in range(len(calibration))]),
            subset_size=len(calibration),
            preset=nncf.QuantizationPreset.MIXED,
        )
        note = f"int8 quantisation took {time.perf_counter() - start:.1f} s"
        compiled = ov.Core().compile_model(quantised, "CPU", cpu_settings(args.threads))
        request = compiled.create_infer_request()
        rows["openvino int8"] = _time(lambda x: request.infer({0: x})[0].copy(), tiles, args)
    reference = rows["torch float32"][1]
    base = rows["openvino float32"][0]
    print(
        f"\n{name} model, {tiles.shape[0]} slices of {args.size}^2 (context {card.context}), "
        f"{args.threads} thread(s), batch {args.batch}"
    )
    print(f"{'backend':18} {'Mvoxel/s':>9} {'vs OV f32':>9} {'labels = torch f32':>19}")
    for label, (seconds, labels) in rows.items():
        agree = 100 * float((labels == reference).mean())
        print(f"{label:18} {voxels / seconds / 1e6:9.2f} {base / seconds:8.2f}x {agree:18.3f} %")
    print(note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default", "fast"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=256, help="in-plane tile size")
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    for name in args.models:
        measure(name, args)


if __name__ == "__main__":
    main()
