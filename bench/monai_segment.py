"""The peer of ``battery-seg segment`` in bench/bench_cli.py: a plain MONAI script.

Imports torch and MONAI, loads a bundled network (or a ``.pt`` file), normalises the volume with
its robust percentiles, stacks the context slices as channels and runs MONAI's
``sliding_window_inference`` (Gaussian, overlap 0.25, tile 256, batch 4) over the whole stack;
saves the labels 1..K as ``.npy``.

    python bench/monai_segment.py IN.tif OUT.npy default
"""

import sys

import numpy as np
import tifffile
import torch
from monai.inferers import sliding_window_inference

from battery_seg.model import estimate_intensity_range, load_model, normalize, resolve_model_path


def main(source: str, target: str, model: str) -> None:
    network, card = load_model(resolve_model_path(model))
    volume = tifffile.imread(source)
    x = normalize(volume, estimate_intensity_range(volume, card.normalization))
    half = card.context // 2
    padded = np.pad(x, ((half, half), (0, 0), (0, 0)), mode="reflect")
    stack = np.stack([padded[c : c + x.shape[0]] for c in range(card.context)], axis=1)
    with torch.inference_mode():
        logits = sliding_window_inference(
            torch.from_numpy(stack), (256, 256), 4, network, overlap=0.25, mode="gaussian"
        )
    np.save(target, (logits.argmax(1) + 1).numpy().astype(np.uint8))


if __name__ == "__main__":
    main(*sys.argv[1:4])
