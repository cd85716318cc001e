"""Train the bundled cathode models (``src/battery_seg/models/nmc.pt`` and ``nmc-2d.pt``).

Phases pore / active / cbd. The training data are cathodes the package generates
(:func:`battery_seg.phantom.make_cathode`: cracked, calendered NMC secondary particles and LFP
agglomerates, CBD bridges and films) imaged by three models the package implements, all widely
randomised: physics-based CT (:func:`~battery_seg.phantom.simulate_ct`: attenuation from
composition and energy, parallel-beam projections, photon noise, detector blur, rings, phase
contrast, filtered back-projection), FIB-SEM serial sectioning
(:func:`~battery_seg.phantom.simulate_fibsem`) and the grey-level model of the anode models
(:func:`~battery_seg.phantom.simulate_xct`). A share of the pairs are single slices (2D images),
so the network also reads one slice repeated as its context. Nothing from ``../shared/data`` or
from other repositories is trained on: the real data stay held out for evaluation.

Training starts from the bundled ``default`` anode model's features (a new output layer for the
cathode phases) and runs by time; each stage can start from the last one's output (``--init``),
so a run may be split across sittings. ``nmc-2d.pt`` is ``nmc.pt`` narrowed to one slice of
context (exact on single slices). Generated pairs are cached in ``--cache`` (resumable).

Which weights a stage keeps: with ``--holdout N`` (the default, 6), every ``--every`` epochs
the averaged weights segment N whole generated cathodes that no training pair comes from (seeds
of their own, each imaging model in turn: physics CT, FIB-SEM, grey levels), and the weights
with the best mean IoU over them are saved to ``--output``; the last weights always go to
``<output>.last.pt`` too, so a stage can be continued from where it stopped. ``--holdout 0``
keeps the old choice, the training's own validation on 3 % of the labelled planes, which
varies by more than a stage changes.

Reproduce (on 2 CPU cores; the bundled file came from this one stage, 75 min on a machine shared
with other work: 45 epochs of 100 steps of 8 patches, the best validation at epoch 18, chosen
by the 3 % of planes, ``--holdout 0``)::

    .venv/bin/python scripts/train_cathode_model.py --minutes 75 --volumes 22 --slices 30 \\
        --seed 0 --holdout 0 -o src/battery_seg/models/nmc.pt

To continue it (a later sitting, new pairs): ``--init src/battery_seg/models/nmc.pt --seed 1``.
Generating the 52 pairs takes about 15 min on 2 cores (the CT projections and reconstructions);
``--data-only`` makes them without training.

The script ends by segmenting two held-out generated cathodes (physics CT, seeds never trained
on) with ``battery_seg.inference.segment`` and printing per-phase IoU.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_default_model import epoch_printer, iou_per_phase, narrow, painted_planes

from battery_seg.inference import SegmentConfig, segment
from battery_seg.jobs import run_job
from battery_seg.model import load_model, save_model
from battery_seg.phantom import (
    make_cathode,
    phase_materials,
    random_cathode_params,
    random_ct_params,
    random_fibsem_params,
    random_xct_params,
    simulate_ct,
    simulate_fibsem,
    simulate_xct,
)
from battery_seg.training import TrainConfig, predict_volume, train_job

PHASES = ("pore", "active", "cbd")
MATERIALS = phase_materials(PHASES)  # label value -> material


def image_cathode(
    labels: np.ndarray, seed: int, kind: str, draw: float | None = None
) -> tuple[np.ndarray, str]:
    """One of the three imaging models, chosen at random (or by ``draw`` in [0, 1)): (image,
    what imaged it). Thin volumes (single-slice pairs) rotate about z: about y would cost a
    sinogram per row."""
    rng = np.random.default_rng(seed)
    active = "lfp" if kind == "lfp" else str(rng.choice(["nmc111", "nmc622", "nmc811"]))
    draw = rng.random() if draw is None else draw
    if draw < 0.65:
        params = random_ct_params(rng, active=active)
        if labels.shape[0] < 16:
            params = replace(params, rotation_axis=0)
        return simulate_ct(labels, MATERIALS, params, seed=seed), "ct"
    if draw < 0.8:
        params = random_fibsem_params(rng, active=active)
        return simulate_fibsem(labels, MATERIALS, params, seed=seed), "fibsem"
    # the anode models' grey levels: pore -> pore, cbd -> cbd, active -> graphite or silicon
    signal = np.choose(labels - 1, [1, 4 if rng.random() < 0.5 else 2, 3]).astype(np.uint8)
    return simulate_xct(signal, random_xct_params(rng), seed=seed), "xct"


def make_pair(index: int, seed: int, shape, single: bool, cache: Path):
    """A generated (image, painted, name) pair, read from ``cache`` when it was made before."""
    name = f"{'slice' if single else 'volume'}-{seed}-{index}"
    path = cache / f"{name}.npz"
    if path.is_file():
        data = np.load(path)
        return data["image"], data["painted"], name
    rng = np.random.default_rng([seed, index, int(single)])
    kind = "lfp" if rng.random() < 0.25 else "nmc"
    volume_shape = (8, 224, 224) if single else tuple(shape)
    labels = make_cathode(
        volume_shape, seed=seed * 1000 + index, params=random_cathode_params(rng, kind)
    )
    image, how = image_cathode(labels, seed * 1000 + index, kind)
    if single:
        image, painted = image[4:5], labels[4:5]
    else:
        painted = painted_planes(labels)
    tmp = path.with_suffix(".partial.npz")
    np.savez_compressed(tmp, image=image, painted=painted)
    tmp.replace(path)
    print(f"made {name} ({kind}, {how})", flush=True)
    return image, painted, name


HOLDOUT_SEED = 80_000  # held-out volumes: seeds 80000.., never a training pair's (seed*1000+i)


def held_out_volume(k: int, shape, cache: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Held-out volume ``k``: (image, labels, what it shows), cached in ``cache``."""
    seed = HOLDOUT_SEED + k
    path = cache / f"holdout-{seed}-{'x'.join(map(str, shape))}.npz"
    if path.is_file():
        data = np.load(path)
        return data["image"], data["labels"], str(data["name"])
    rng = np.random.default_rng(seed)
    kind = "lfp" if k % 4 == 3 else "nmc"
    labels = make_cathode(shape, seed=seed, params=random_cathode_params(rng, kind))
    image, how = image_cathode(labels, seed, kind, draw=(0.3, 0.7, 0.9)[k % 3])
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.npz")
    np.savez_compressed(tmp, image=image, labels=labels, name=f"{kind} {how}")
    tmp.replace(path)
    return image, labels, f"{kind} {how}"


class HeldOut:
    """Whole generated cathodes no training pair comes from, imaged by each imaging model in
    turn; called after every epoch (``train_job``'s ``preview``), it segments them every
    ``every`` epochs and keeps the weights with the best mean IoU (saved to ``best``), and
    saves the last weights to ``last``."""

    def __init__(self, count: int, every: int, shape, best: Path, last: Path, cache: Path):
        self.every, self.best_path, self.last_path = every, best, last
        self.volumes = [held_out_volume(k, tuple(shape), cache) for k in range(count)]
        self.epoch, self.best, self.best_state, self.scores = 0, -1.0, None, []

    def __call__(self, model, card) -> float | None:
        self.epoch += 1
        save_model(self.last_path, model, card, dtype=torch.float16)
        if self.epoch % self.every:
            return None
        means = []
        for image, labels, _ in self.volumes:
            predicted = predict_volume(model, card, image)
            means.append(np.mean(list(iou_per_phase(labels, predicted, PHASES).values())))
        score = float(np.mean(means))
        self.scores.append((self.epoch, score))
        cells = " ".join(f"{m:.3f}" for m in means)
        improved = score > self.best
        print(
            f"epoch {self.epoch}: held-out mean IoU {score:.4f} ({cells})"
            f"{'  best' if improved else ''}",
            flush=True,
        )
        if improved:
            self.best, self.best_state = score, copy.deepcopy(model.state_dict())
            save_model(self.best_path, model, card, dtype=torch.float16)
        return score


def check(model_path: Path, shape=(48, 160, 160)) -> None:
    """Zero-shot IoU on held-out generated cathodes (seeds the training never uses)."""
    for seed, kind in ((90_001, "nmc"), (90_002, "lfp")):
        rng = np.random.default_rng(seed)
        labels = make_cathode(shape, seed=seed, params=random_cathode_params(rng, kind))
        image = simulate_ct(labels, MATERIALS, random_ct_params(rng), seed=seed)
        start = time.perf_counter()
        predicted = np.asarray(segment(image, SegmentConfig(model=model_path)).labels)
        scores = iou_per_phase(labels, predicted, PHASES)
        cells = "  ".join(f"{k} {v:.3f}" for k, v in scores.items())
        print(
            f"held-out {kind} (physics CT, seed {seed}): {cells}  mean "
            f"{np.mean(list(scores.values())):.3f} ({time.perf_counter() - start:.1f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("nmc.pt"))
    parser.add_argument("--minutes", type=float, default=55.0)
    parser.add_argument("--volumes", type=int, default=20)
    parser.add_argument("--slices", type=int, default=24, help="single-slice (2D) pairs")
    parser.add_argument("--shape", type=int, nargs=3, default=(40, 160, 160))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", default="default", help="start model (default: 'default')")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("cathode_cache"))
    parser.add_argument(
        "--holdout",
        type=int,
        default=6,
        help="held-out generated volumes that choose the "
        "weights (0: the training's validation on 3 %% of the planes)",
    )
    parser.add_argument("--every", type=int, default=2, help="epochs between held-out checks")
    parser.add_argument("--holdout-shape", type=int, nargs=3, default=(32, 160, 160))
    parser.add_argument("--data-only", action="store_true", help="only generate the pairs")
    parser.add_argument("--check-only", action="store_true", help="only evaluate --output")
    args = parser.parse_args()
    first, count = args.seed * 1000, max(args.volumes, args.slices)  # the pairs' cathode seeds
    if args.holdout and first < HOLDOUT_SEED + args.holdout and HOLDOUT_SEED < first + count:
        raise SystemExit(
            f"--seed {args.seed} generates training cathodes with the seeds of the held-out "
            f"volumes ({HOLDOUT_SEED}-{HOLDOUT_SEED + args.holdout - 1}): choose another --seed."
        )
    torch.set_num_threads(args.threads)
    if not args.check_only:
        args.cache.mkdir(parents=True, exist_ok=True)
        jobs = [(i, False) for i in range(args.volumes)] + [(i, True) for i in range(args.slices)]
        with ProcessPoolExecutor(args.threads) as pool:  # generation is per-slice NumPy work
            pairs = list(
                pool.map(
                    make_pair,
                    *zip(
                        *[
                            (i, args.seed, tuple(args.shape), single, args.cache)
                            for i, single in jobs
                        ],
                        strict=True,
                    ),
                )
            )
        if args.data_only:
            return
        config = TrainConfig(
            phases="nmc",
            context=5,
            init=args.init,
            learning_rate=args.lr,
            retain_weight=0.0,  # fully labelled planes: nothing to retain from the start model
            epochs=10_000,
            minutes=args.minutes,
            steps_per_epoch=100,
            patch_size=128,
            batch_size=8,
            validation_fraction=0.0 if args.holdout else 0.03,
            patience=None,
            seed=args.seed,
            output=None if args.holdout else args.output,
            overwrite=True,
        )
        held = None
        if args.holdout:
            last = args.output.with_name(f"{args.output.stem}.last.pt")
            held = HeldOut(
                args.holdout, args.every, args.holdout_shape, args.output, last, args.cache
            )
        job = train_job(pairs, config, preview=held)
        result = run_job(job, epoch_printer(60))
        card = result.card
        if held is not None and held.best_state is not None:
            result.model.load_state_dict(held.best_state)
            card.provenance["held_out_iou"] = {
                "volumes": [name for _, _, name in held.volumes],
                "by_epoch": held.scores,
                "best": held.best,
            }
        card.provenance["purpose"] = (
            f"battery-seg bundled model {args.output.stem!r}: generated NMC / LFP cathodes imaged "
            "by physics-based CT, FIB-SEM and grey-level models; reproduce with "
            "scripts/train_cathode_model.py"
        )
        save_model(args.output, result.model, card, dtype=torch.float16)
        flat = args.output.with_name(f"{args.output.stem}-2d.pt")
        narrowed = narrow(args.output, 1, flat.with_name(f"{flat.stem}.narrowed.pt"))
        model, card = load_model(narrowed, device="cpu")
        narrowed.unlink()  # saved again below, with its purpose (an input is never overwritten)
        card.provenance["purpose"] = (
            f"battery-seg bundled model {flat.stem!r}: the {args.output.stem} model narrowed to "
            "one slice of context (exact on single slices); reproduce with "
            "scripts/train_cathode_model.py"
        )
        save_model(flat, model, card, dtype=torch.float16)
        chosen = f"held-out mean IoU {held.best:.4f}" if held else f"{result.best_val_iou}"
        print(f"saved {args.output} and {flat}, best validation: {chosen}")
    check(args.output)


if __name__ == "__main__":
    main()
