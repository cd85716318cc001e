"""Zero-shot per-phase IoU of cathode checkpoints side by side, nothing painted.

Every voxel of the held-out NMC volumes (``nmc-unseen``: ``bench/unseen_imaging.py``;
``nmc-fibsem``: ``bench/unseen_fibsem.py``) and every slice of the real LRCS volumes A and B
(the checkpoint narrowed to one slice of context, as ``nmc-2d`` is made from ``nmc``). Use it to
judge a pretraining stage against the bundled model before replacing it::

    python bench/zero_shot.py src/battery_seg/models/nmc.pt stage2/nmc.pt --threads 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "scripts"))

PHASES = ["pore", "active", "cbd"]


def score(checkpoint: Path, flat: Path) -> dict[str, np.ndarray]:
    from train_default_model import narrow

    from battery_seg.model import load_model
    from battery_seg.training import predict_volume
    from real_strokes import load
    from train_accuracy import iou

    network, card = load_model(checkpoint)
    if list(card.phases.names) != PHASES:
        raise SystemExit(f"{checkpoint} predicts {card.phases.names}, not {PHASES}")
    rows = {}
    for case in ("nmc-unseen", "nmc-fibsem"):
        images, truths, _, _ = load(case)
        predicted = predict_volume(network, card, images[0])
        rows[case] = iou(truths[0], predicted, 3)
    network, card = load_model(narrow(checkpoint, 1, flat))
    for case in ("lrcs-a", "lrcs-b"):  # truth: active 1, cbd 2, pore 3
        images, truths, _, _ = load(case)
        renumber = np.array([0, 3, 1, 2])  # model pore 1, active 2, cbd 3 -> the truth's
        scores = [
            iou(t, renumber[predict_volume(network, card, im)], 3)[[2, 0, 1]]
            for im, t in zip(images, truths, strict=True)
        ]
        rows[case] = np.mean(scores, axis=0)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        for k, checkpoint in enumerate(args.checkpoints):
            for case, s in score(checkpoint, Path(tmp) / f"flat{k}.pt").items():
                cells = "  ".join(f"{n} {v:.3f}" for n, v in zip(PHASES, s, strict=True))
                print(f"{checkpoint}  {case:10}  {cells}  mean {np.mean(s):.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
