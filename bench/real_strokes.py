"""Training from painted strokes on real data: the default recipe against its peers.

What a user gets from ``battery-seg train`` with no flags (the default recipe), against a U-Net
from scratch, the bundled default model fine-tuned the plain way (``--init default``), and a
random forest on multiscale filter features (the ilastik / Weka approach), all from exactly the
same simulated strokes (:func:`battery_seg.training.simulate_strokes`), scored by per-phase IoU
against the full manual / true labels of voxels no stroke touched. ``forest-norm`` is the same
forest on each image scaled by its own 0.5 / 99.5 percentiles, as the U-Nets see it (on the 2D
LRCS slices that is a per-slice normalisation the raw forest does not get; on a single volume it
changes nothing). ``untrained`` scores the
bundled model for the case's phases as it is, with no painting at all (``nmc`` / ``nmc-2d`` for
the cathode cases, ``default`` for the anode phantom): zero-shot, and where fine-tuning starts.

Cases
-----
lrcs-a, lrcs-b
    The two real NMC nano-XCT volumes of ``../shared/data/lrcs_nanoxct`` (separate 2D slices far
    apart, labels active / CBD / pore). Strokes on the first slice (or the first three); scored
    on the other slices. Each slice is an image of its own (2D).
nmc3d
    The shared 256³ NMC electrode geometry (``nmc_electrode_polaron_256.tiff``) imaged with the
    phantom's X-ray model (CBD close to pore in grey level, blur, noise, shading; seed 11).
    Strokes on z-slices; scored on the whole volume, with the pore volume fraction and (``--tau``)
    the pore tortuosity factor along z against the truth's.
nmc-unseen
    The same shared NMC geometry imaged by ``bench/unseen_imaging.py``, an X-ray model written
    apart from the package's and never trained on (CBD one noise sigma above pore, a PSF with a
    long tail, FBP-like noise texture, arcs, streaks, drift): the held-out test of imaging the
    bundled models never saw. Strokes and scores as for nmc3d.
nmc-fibsem, nmc-fibsem-open
    The same geometry as a FIB-SEM stack (milling along z) from ``bench/unseen_fibsem.py``, a
    serial-sectioning model written apart from the package's (secondary-electron edge contrast,
    mottled CBD one noise sigma above pore, curtains from particle edges, scan-line jitter,
    misregistered slices, low-dose counts, 8-bit): pores epoxy-filled, or open
    (``-open``: the solid behind the face shines through them). Strokes and scores as for nmc3d.
phantom
    ``battery_seg.phantom.make_sample`` 128³ with randomised, unseen imaging (seed 7).

Efforts (share of the painted slices' pixels): ``0.1%``, ``1%``, ``10%`` of one slice, ``1%x3``
(1 % of three slices), ``slice`` (one whole slice labelled). ``half`` is no painting effort but a
ceiling: every voxel of the first half of the volume (3D cases) or of the slices (2D) labelled,
scored on the other half: what a method reaches with all the labels it could be given.

``--stack`` gives the U-Nets the LRCS slices as one stacked image, as a user who keeps them in
one file has them (one intensity range for all; ``init auto`` must see that the slices are
unrelated); such rows are named ``lrcs-a-stack`` / ``lrcs-b-stack``.

Each run appends one JSON line to ``--results`` (default ``bench/real_strokes.jsonl``); ``--table``
prints the table of a results file. Usage::

    python bench/real_strokes.py --cases lrcs-a lrcs-b --methods default forest --efforts 1%
    python bench/real_strokes.py --cases nmc3d --methods default forest --efforts 1%x3 --tau
    python bench/real_strokes.py --cases nmc-unseen --methods untrained default forest \
        --efforts 1%x3 --tau
    python bench/real_strokes.py --cases phantom --methods untrained default --efforts 1%x3
    python bench/real_strokes.py --table
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_accuracy import LRCS, LRCS_VOLUMES, filter_features, iou, predict_forest, random_forest

ROOT = Path(__file__).resolve().parents[1]
NMC = (ROOT / ".." / "shared" / "data" / "nmc_electrode_polaron_256.tiff").resolve()
METHODS = ("default", "scratch", "finetune", "forest", "forest-norm", "untrained")
EFFORTS = {
    "0.1%": (0.001, 1),
    "1%": (0.01, 1),
    "10%": (0.1, 1),
    "1%x3": (0.01, 3),
    "slice": (1, 1),
    "half": (1, None),  # a ceiling: the first half fully labelled
}


def load(case: str):
    """(images: list of 2D slices or one 3D volume, truth like them, phase names, 2D?)."""
    import tifffile

    if case.startswith("lrcs"):
        if not LRCS.is_dir():
            raise SystemExit(f"{LRCS} is absent; the lrcs cases need ../shared/data.")
        ids = LRCS_VOLUMES[case]
        images = [tifffile.imread(LRCS / f"{i}.tif") for i in ids]
        truths = [tifffile.imread(LRCS / f"{i}_label.tif").astype(np.uint8) + 1 for i in ids]
        return images, truths, ("active", "cbd", "pore"), True
    if case in ("nmc3d", "nmc-unseen", "nmc-fibsem", "nmc-fibsem-open"):
        from battery_seg.phantom import XCTParams, simulate_xct

        if not NMC.is_file():
            raise SystemExit(f"{NMC} is absent; the {case} case needs ../shared/data.")
        raw = tifffile.imread(NMC)
        truth = np.zeros(raw.shape, np.uint8)
        truth[raw == 0], truth[raw == 85], truth[raw == 170] = 1, 2, 3  # pore, active, cbd
        if case == "nmc-unseen":
            from unseen_imaging import unseen_ct

            image = unseen_ct(truth, {"pore": 1, "active": 2, "cbd": 3}, seed=11)
            return [image], [truth], ("pore", "active", "cbd"), False
        if case.startswith("nmc-fibsem"):
            from unseen_fibsem import unseen_fibsem

            infiltrated = case == "nmc-fibsem"
            image = unseen_fibsem(truth, {"pore": 1, "active": 2, "cbd": 3}, 11, infiltrated)
            return [image], [truth], ("pore", "active", "cbd"), False
        # image the geometry as the phantom images an anode: pore 1, graphite 4, CBD 3
        signal = np.choose(truth - 1, [1, 4, 3]).astype(np.uint8)
        image = simulate_xct(signal, XCTParams(), seed=11)
        return [image], [truth], ("pore", "active", "cbd"), False
    if case == "phantom":
        from battery_seg.phantom import make_sample, random_xct_params

        sample = make_sample(
            (128, 128, 128), seed=7, xct=random_xct_params(np.random.default_rng(7))
        )
        return [sample.image], [sample.labels], tuple(sample.phases.names), False
    raise SystemExit(f"unknown case {case}")


def paint(truths, effort: str, is_2d: bool, seed: int):
    """Strokes like the truth(s): list of painted arrays (0 = unpainted)."""
    from battery_seg.training import simulate_strokes

    fraction, slices = EFFORTS[effort]
    if slices is None:  # the first half of the slices / of the volume, every voxel
        if is_2d:
            half = (len(truths) + 1) // 2
            return [t.copy() if k < half else np.zeros_like(t) for k, t in enumerate(truths)]
        painted = np.zeros_like(truths[0])
        painted[: len(painted) // 2] = truths[0][: len(painted) // 2]
        return [painted]
    if is_2d:
        painted = [np.zeros_like(t) for t in truths]
        for k in range(slices):
            if fraction >= 1:
                painted[k] = truths[k].copy()
            else:
                painted[k] = simulate_strokes(truths[k], fraction=fraction, margin=1, seed=seed + k)
        return painted
    truth = truths[0]
    if fraction >= 1:
        painted = np.zeros_like(truth)
        painted[truth.shape[0] // 2] = truth[truth.shape[0] // 2]
        return [painted]
    return [simulate_strokes(truth, slices=slices, fraction=fraction, margin=1, seed=seed)]


def run_unet(method, images, painted, names, is_2d, args):
    from battery_seg.training import TrainConfig, predict_volume, train

    init = {"default": "auto", "scratch": "scratch", "finetune": "default"}[method]
    settings = {
        "phases": ",".join(names),
        "init": init,
        "epochs": args.steps // 25,
        "patience": None,
        "seed": args.seed,
    }
    config = TrainConfig(**{**settings, **json.loads(args.cfg)})  # --cfg may set init too
    if is_2d and args.stack:  # the slices as one file, the way a user may have them
        pairs = [(np.stack(images), np.stack(painted), "stack")]
    elif is_2d:
        pairs = [
            (im, p, f"slice {k}")
            for k, (im, p) in enumerate(zip(images, painted, strict=True))
            if p.any()
        ]
    else:
        pairs = [(images[0], painted[0], "volume")]
    start = time.perf_counter()
    result = train(pairs, config)
    seconds = time.perf_counter() - start
    if is_2d and args.stack:
        predicted = list(predict_volume(result.model, result.card, np.stack(images)))
    else:
        predicted = [predict_volume(result.model, result.card, im) for im in images]
    return predicted, seconds, result.card.provenance


def run_untrained(images, names, is_2d, args):
    """The bundled model for the case's phases as it is, no training (zero-shot): its labels
    renumbered to the case's phase order by name."""
    from battery_seg._bundled import bundled_for
    from battery_seg.model import load_model
    from battery_seg.training import predict_volume

    name = bundled_for(names, flat=is_2d)
    network, card = load_model(name)
    if {n.lower() for n in card.phases.names} != {n.lower() for n in names}:
        raise SystemExit(f"untrained: model {name} predicts {card.phases.names}, not {names}")
    order = [0] + [1 + [n.lower() for n in names].index(n.lower()) for n in card.phases.names]
    start = time.perf_counter()
    predicted = [np.asarray(order)[predict_volume(network, card, im)] for im in images]
    return predicted, time.perf_counter() - start, {"init": f"{name}, not trained"}


def run_forest(images, painted, is_2d, args, normalise=False):
    start = time.perf_counter()
    if normalise:  # each image by its own percentiles, as the U-Nets' input
        images = [scaled(im) for im in images]
    if is_2d:
        painted_ids = [k for k, p in enumerate(painted) if p.any()]
        features = [filter_features(images[k]) for k in painted_ids]
        stacked = np.concatenate([f.reshape(-1, f.shape[-1]) for f in features])
        strokes = np.concatenate([painted[k].ravel() for k in painted_ids])
        forest = random_forest(stacked[:, None, :], strokes[:, None], args.seed, args.threads)
        predicted = [predict_forest(forest, filter_features(im)) for im in images]
    else:
        features = filter_features(images[0])
        forest = random_forest(features, painted[0], args.seed, args.threads)
        predicted = [predict_forest(forest, features)]
    return predicted, time.perf_counter() - start, {}


def scaled(image: np.ndarray) -> np.ndarray:
    """``image`` normalised exactly as the bundled models' input is."""
    from battery_seg.model.normalization import estimate_intensity_range, normalize

    return normalize(image, estimate_intensity_range(image))


def tortuosity(mask: np.ndarray) -> float:
    from battery_seg.analysis import tortuosity as solve

    return float(solve(mask, "z", force=True).tortuosity)  # a busy machine over-estimates


def score(case, method, effort, images, truths, painted, predicted, names, seconds, extra, args):
    is_2d = len(truths) > 1
    if is_2d:  # the slices nobody painted
        keep = [k for k, p in enumerate(painted) if not p.any()]
        truth = np.stack([truths[k] for k in keep])
        pred = np.stack([predicted[k] for k in keep])
    else:  # every voxel not painted
        untouched = painted[0] == 0
        truth, pred = truths[0][untouched], predicted[0][untouched]
    scores = iou(truth, pred, len(names))
    row = {
        "case": case
        + ("-stack" if args.stack and is_2d and not method.startswith("forest") else ""),
        "method": method + (f"+{args.tag}" if args.tag and not method.startswith("forest") else ""),
        "effort": effort,
        "seed": args.seed,
        "steps": None if method.startswith("forest") or method == "untrained" else args.steps,
        "painted_voxels": int(sum((p > 0).sum() for p in painted)),
        "mean_iou": round(float(np.nanmean(scores)), 4),
        "iou": {n: round(float(s), 4) for n, s in zip(names, scores, strict=True)},
        "seconds": round(seconds, 1),
        "init": extra.get("init"),
        "start_model": extra.get("start_model"),
    }
    if "pore" in names:
        k = names.index("pore") + 1
        row["pore_fraction"] = round(float((pred == k).mean()), 4)
        row["pore_fraction_truth"] = round(float((truth == k).mean()), 4)
        if args.tau and not is_2d:
            row["pore_tau"] = round(tortuosity(predicted[0] == k), 3)
            row["pore_tau_truth"] = round(tortuosity(truths[0] == k), 3)
    return row


def table(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    header = f"{'case':10} {'effort':6} {'method':12} {'mean IoU':>8} {'CBD IoU':>8} {'time s':>7}"
    print(header + "  other")
    order = {m: i for i, m in enumerate(METHODS)}
    for r in sorted(rows, key=lambda r: (r["case"], r["effort"], order[r["method"].split("+")[0]])):
        other = ""
        if "pore_fraction" in r:
            other += (
                f"pore fraction {r['pore_fraction']:.3f} (truth {r['pore_fraction_truth']:.3f})"
            )
        if "pore_tau" in r:
            other += f", pore tau {r['pore_tau']:.2f} (truth {r['pore_tau_truth']:.2f})"
        print(
            f"{r['case']:10} {r['effort']:6} {r['method']:12} {r['mean_iou']:8.3f} "
            f"{r['iou'].get('cbd', float('nan')):8.3f} {r['seconds']:7.0f}  {other}"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["lrcs-a", "lrcs-b"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS[:4]), choices=METHODS)
    parser.add_argument("--efforts", nargs="+", default=["1%"], choices=list(EFFORTS))
    parser.add_argument("--steps", type=int, default=600, help="optimiser steps (25 per epoch)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tau", action="store_true", help="pore tortuosity (3D cases)")
    parser.add_argument(
        "--stack",
        action="store_true",
        help="U-Nets get the LRCS slices as one stacked image (one file, one intensity range), "
        "not as separate images",
    )
    parser.add_argument("--cfg", default="{}", help="TrainConfig overrides (JSON) for U-Nets")
    parser.add_argument("--tag", default="", help="names the overrides in the results")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "real_strokes.jsonl")
    parser.add_argument("--table", action="store_true", help="print the results file and stop")
    args = parser.parse_args(argv)
    if args.table:
        table(args.results)
        return 0

    import torch

    torch.set_num_threads(args.threads)
    for case in args.cases:
        images, truths, names, is_2d = load(case)
        for effort in args.efforts:
            painted = paint(truths, effort, is_2d, args.seed)
            for method in args.methods:
                if method.startswith("forest"):
                    normalise = method == "forest-norm"
                    predicted, seconds, extra = run_forest(images, painted, is_2d, args, normalise)
                elif method == "untrained":
                    predicted, seconds, extra = run_untrained(images, names, is_2d, args)
                else:
                    predicted, seconds, extra = run_unet(
                        method, images, painted, names, is_2d, args
                    )
                row = score(
                    case,
                    method,
                    effort,
                    images,
                    truths,
                    painted,
                    predicted,
                    names,
                    seconds,
                    extra,
                    args,
                )
                print(json.dumps(row), flush=True)
                with args.results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
