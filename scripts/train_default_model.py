"""Train the bundled models (``src/battery_seg/models/default.pt``, ``fast.pt``) and check them.

The default model is trained with the package's own training code on fully labelled synthetic
Si-graphite anodes (``battery_seg.phantom``) whose microstructure and X-ray CT imaging are widely
randomised (grey levels, CBD contrast, blur, noise, shading, rings, fringes), so it works out of
the box on the bundled sample and is a good starting point for fine-tuning on real data. The
sample that users and tests segment (seed 0) is never in the training set.

Reproduce (six stages, about 5 h 30 min on 2 CPU cores)::

    # 1. from scratch, context 3, a quarter of the volumes with the sample's imaging (50 min)
    .venv/bin/python scripts/train_default_model.py --minutes 50 -o stage1.pt
    # 2. continue on new phantoms, half with the sample's imaging, gentler rate (45 min)
    .venv/bin/python scripts/train_default_model.py --init stage1.pt --seed 100 \
        --default-every 2 --lr 1e-3 --minutes 45 -o stage2.pt
    # 3. deepen to 5 slices of context (zero weights for the new outer slices) (45 min)
    .venv/bin/python scripts/train_default_model.py --init stage2.pt --context 5 --seed 200 \
        --default-every 2 --lr 1e-3 --minutes 45 -o stage3.pt
    # 4. continue on 16 new phantoms (85 min; the best validation came at epoch 63 of 233)
    .venv/bin/python scripts/train_default_model.py --init stage3.pt --context 5 --seed 300 \
        --default-every 2 --lr 1e-3 --volumes 16 --minutes 85 -o stage4.pt
    # 5. widen to 12 base channels (function-preserving) and continue on 16 new phantoms; this
    #    run was stopped after 48 of its 90 minutes, keeping the checkpoint it had saved at its
    #    best validation (epoch 31, ~22 min in)
    .venv/bin/python scripts/train_default_model.py --init stage4.pt --base 12 --context 5 \
        --seed 400 --default-every 2 --lr 1e-3 --volumes 16 --minutes 90 -o stage5.pt
    # 6. continue on 16 new phantoms, keeping the epoch of lowest training loss (55 min)
    .venv/bin/python scripts/train_default_model.py --init stage5.pt --base 12 --context 5 \
        --seed 500 --default-every 2 --lr 7e-4 --volumes 16 --minutes 55 --validation 0 \
        -o src/battery_seg/models/default.pt

The bundled ``fast`` model (``src/battery_seg/models/fast.pt``, 8 base channels, about twice as
fast) continues stage 4 on 48 new phantoms; it ran on one NVIDIA H100 (5.5 min, 2,067 steps of 32
patches; on 2 CPU cores as many patches would take roughly 40 minutes, an estimate)::

    .venv/bin/python scripts/train_default_model.py --init stage4.pt --context 5 --seed 600 \
        --default-every 2 --lr 7e-4 --volumes 48 --batch 32 --minutes 5.5 --validation 0 \
        --threads 7 -o src/battery_seg/models/fast.pt

Stages run by time, so a faster or slower machine sees a different number of epochs.
The script ends by segmenting the default sample with ``battery_seg.inference.segment`` (the
path users run) and printing per-phase IoU against the ground truth.
"""

from __future__ import annotations

import argparse
import itertools
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from battery_seg.inference import SegmentConfig, segment
from battery_seg.model import UNet, load_card, load_model, save_model
from battery_seg.phantom import (
    AnodeParams,
    XCTParams,
    make_anode,
    make_sample,
    random_xct_params,
    simulate_xct,
)
from battery_seg.training import TrainConfig, train


def training_volumes(count: int, shape: tuple[int, int, int], seed: int, default_every: int = 4):
    """Fully labelled phantoms: randomised fractions, particle sizes and imaging.

    Every ``default_every``-th volume uses the default imaging (that of the bundled sample),
    the others wide randomisation.
    """
    rng = np.random.default_rng(seed)
    for i in range(count):
        silicon = rng.uniform(0.03, 0.10)
        cbd = rng.uniform(0.05, 0.12)
        pore = rng.uniform(0.28, 0.42)
        anode = AnodeParams(
            pore_fraction=pore,
            silicon_fraction=silicon,
            cbd_fraction=cbd,
            graphite_fraction=1.0 - pore - silicon - cbd,
            graphite_radius=rng.uniform(9, 16),
        )
        labels = make_anode(shape, seed=seed + 1000 + i, params=anode)
        xct = XCTParams() if i % default_every == 0 else random_xct_params(rng)
        image = simulate_xct(labels, xct, seed=seed + 2000 + i)
        yield image, painted_planes(labels), f"phantom-{i}"


def painted_planes(labels: np.ndarray, z_step: int = 3, yx_step: int = 20) -> np.ndarray:
    """Ground truth on every ``z_step``-th z slice and every ``yx_step``-th y and x slice.

    Training samples planes around painted voxels, so fully labelled planes of all three axes
    (for z slicing and tri-planar use) carry as much as a dense volume at a fraction of the cost.
    """
    painted = np.zeros_like(labels)
    painted[::z_step] = labels[::z_step]
    painted[:, ::yx_step] = labels[:, ::yx_step]
    painted[:, :, ::yx_step] = labels[:, :, ::yx_step]
    return painted


def widen(path: Path, base: int, output: Path) -> Path:
    """Save the model at ``path`` with ``base`` base channels; it predicts exactly the same.

    Each layer keeps its trained channels and gains new ones: their incoming weights are a fresh
    initialisation, their outgoing weights zero, so the wider network computes what the checkpoint
    did and training learns to use the added capacity (a function-preserving widening).
    """
    model, card = load_model(path, device="cpu")
    old = card.architecture
    if base < old.base_channels:
        raise SystemExit(f"--base {base} is narrower than the model's {old.base_channels}")
    architecture = replace(old, base_channels=base)
    wide = UNet(architecture)
    state = wide.state_dict()
    for key, weights in model.state_dict().items():
        target = state[key]
        if weights.shape == target.shape:
            state[key] = weights
            continue
        maps = [
            _channel_map(key, dim, n, m)
            for dim, (n, m) in enumerate(zip(weights.shape, target.shape, strict=True))
        ]
        grown = target.clone()
        if weights.ndim == 4:  # zero the weights that read the new input channels
            inputs = 0 if ".ups." in key else 1  # ConvTranspose2d stores (in, out, kh, kw)
            new = np.setdiff1d(np.arange(target.shape[inputs]), maps[inputs])
            grown.index_fill_(inputs, torch.as_tensor(new), 0.0)
        grown[np.ix_(*maps)] = weights
        state[key] = grown
    wide.load_state_dict(state)
    save_model(output, wide, replace(card, architecture=architecture))
    return output


def narrow(path: Path, context: int, output: Path) -> Path:
    """Save the model at ``path`` seeing ``context`` (fewer) slices, first layer summed inwards.

    On a single slice the context slices are all that slice (mirrored), so a 2D model whose first
    layer sums the checkpoint's weights over its context channels predicts exactly what the
    checkpoint predicts on single slices: the starting point of the bundled 2D model.
    """
    model, card = load_model(path, device="cpu")
    if context >= card.context:
        raise SystemExit(f"--context {context} is not narrower than the model's {card.context}")
    architecture = replace(card.architecture, in_channels=context)
    narrow_model = UNet(architecture)
    state = model.state_dict()
    key = next(k for k, v in state.items() if k.startswith("encoder.stem.") and v.ndim == 4)
    weight = state[key]
    radius, new_radius = card.context // 2, context // 2
    folded = weight.new_zeros((weight.shape[0], context, *weight.shape[2:]))
    for channel in range(card.context):  # each old slice offset onto the nearest kept one
        offset = int(np.clip(channel - radius, -new_radius, new_radius))
        folded[:, offset + new_radius] += weight[:, channel]
    narrow_model.load_state_dict({**state, key: folded})
    save_model(output, narrow_model, replace(card, context=context, architecture=architecture))
    return output


def _channel_map(key: str, dim: int, old: int, new: int) -> np.ndarray:
    """Where the ``old`` channels of a tensor dimension go among ``new``: the same index, except
    the input of a decoder block, which concatenates the upsampled map and the skip halves."""
    if old == new:
        return np.arange(old)
    if dim == 1 and re.fullmatch(r"decoder\.blocks\.\d+\.0\.weight", key):
        half, new_half = old // 2, new // 2
        return np.concatenate([np.arange(half), new_half + np.arange(half)])
    return np.arange(old)


def epoch_printer(seconds: float):
    """A training progress callback that prints an epoch's loss and validation IoU at most
    every ``seconds``."""
    last = [0.0]

    def report(event) -> None:
        if event.data and time.perf_counter() - last[0] > seconds:
            last[0] = time.perf_counter()
            ious = " ".join(f"{k} {v:.3f}" for k, v in event.data["val_iou"].items())
            val = f"  val {ious}" if ious else ""  # nothing held back: no validation
            print(f"epoch {event.data['epoch']}: loss {event.data['loss']:.4f}{val}", flush=True)

    return report


def iou_per_phase(truth: np.ndarray, predicted: np.ndarray, names) -> dict[str, float]:
    scores = {}
    for value, name in enumerate(names, start=1):
        t, p = truth == value, predicted == value
        scores[name] = float((t & p).sum() / max((t | p).sum(), 1))
    return scores


def check(model_path: Path, shape=(128, 128, 128)) -> None:
    """Segment held-out samples through the user's path and print per-phase IoU."""
    card = load_card(model_path)
    cases = {
        "default sample (seed 0)": make_sample(shape, seed=0),
        "seed 7, random imaging": make_sample(
            shape, seed=7, xct=random_xct_params(np.random.default_rng(7))
        ),
    }
    for (title, sample), triplanar in itertools.product(cases.items(), (False, True)):
        start = time.perf_counter()
        result = segment(sample.image, SegmentConfig(model=model_path, triplanar=triplanar))
        seconds = time.perf_counter() - start
        scores = iou_per_phase(sample.labels, np.asarray(result.labels), card.phases.names)
        cells = "  ".join(f"{k} {v:.3f}" for k, v in scores.items())
        mode = "tri-planar" if triplanar else "z slices"
        print(
            f"{title:26s} {mode:10s} IoU: {cells}  mean {np.mean(list(scores.values())):.3f}  "
            f"({seconds:.1f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("default_model.pt"))
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--volumes", type=int, default=12)
    parser.add_argument("--shape", type=int, nargs=3, default=(48, 160, 160))
    parser.add_argument("--context", type=int, default=3)
    parser.add_argument(
        "--base",
        type=int,
        default=None,
        help="U-Net base channels (from scratch: 8; with --init: the model's, and a wider value "
        "widens it)",
    )
    parser.add_argument("--depth", type=int, default=4, help="U-Net depth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--default-every",
        type=int,
        default=4,
        help="every N-th training volume uses the sample's default imaging (others: random)",
    )
    parser.add_argument(
        "--init",
        type=Path,
        default=None,
        help="continue training this model instead of from scratch (a --context deeper than "
        "the model's widens its first layer, a shallower one sums it inwards; a --base wider "
        "than the model's adds channels)",
    )
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate")
    parser.add_argument(
        "--validation",
        type=float,
        default=0.03,
        help="fraction of the labelled voxels held back to pick the best epoch; 0 keeps the "
        "epoch of lowest training loss (at the end of the learning-rate decay, typically the "
        "last: a small validation set is noisier than what a late stage still gains)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="patches per optimiser step")
    parser.add_argument("--device", default="auto", help="torch device (auto: CUDA if present)")
    parser.add_argument("--check-only", action="store_true", help="only evaluate --output")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.check_only:
        if args.init is not None and args.base is not None:
            card = load_card(args.init)
            if args.base != card.architecture.base_channels:
                tmp = Path(tempfile.mkdtemp()) / "widened.pt"
                args.init = widen(args.init, args.base, tmp)
        if args.init is not None and args.context < load_card(args.init).context:
            args.init = narrow(args.init, args.context, Path(tempfile.mkdtemp()) / "narrow.pt")
        pairs = list(
            training_volumes(args.volumes, tuple(args.shape), args.seed, args.default_every)
        )
        config = TrainConfig(
            phases="si-graphite",
            context=args.context,
            init=args.init,
            base_channels=args.base or 8,
            depth=args.depth,
            learning_rate=args.lr,
            # fully labelled planes: nothing to retain from the start model
            retain_weight=0.0,
            epochs=10_000,
            minutes=args.minutes,
            steps_per_epoch=100,
            patch_size=128,
            batch_size=args.batch,
            device=args.device,
            validation_fraction=args.validation,
            patience=None,
            seed=args.seed,
            output=args.output,
            overwrite=True,
        )
        result = train(pairs, config, on_progress=epoch_printer(30))
        model, card = result.model, result.card
        card.provenance["purpose"] = (
            f"battery-seg bundled model {args.output.stem!r}: synthetic Si-graphite anodes, "
            "randomised imaging; reproduce with scripts/train_default_model.py"
        )
        # float16 weights: half the size; the labels are checked below with the saved file
        save_model(args.output, model, card, dtype=torch.float16)
        print(
            f"saved {args.output} ({args.output.stat().st_size / 2**20:.1f} MiB), "
            f"best validation IoU {result.best_val_iou}"
        )
    check(args.output)


if __name__ == "__main__":
    main()
