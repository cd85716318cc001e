"""Accuracy of training from painted strokes: U-Net vs a random-forest pixel classifier.

Both models learn from exactly the same painted voxels (simulated strokes, see
:func:`battery_seg.training.simulate_strokes`) and are scored by per-phase IoU against the full
ground truth. The baseline is the ilastik / Weka / convpaint approach: a scikit-learn random
forest on multiscale filter features (Gaussian, gradient magnitude, Laplacian of Gaussian,
Hessian and structure-tensor eigenvalues at sigma 0.7 ... 10).

Cases
-----
phantom
    ``battery_seg.phantom.make_sample`` 128^3; strokes on <= 1 % of the voxels of 3 z-slices;
    IoU over the whole volume. Goals: mean IoU >= 0.90, CBD >= 0.80, <= 5 min on 2 CPU cores.
lrcs-a, lrcs-b
    The two real NMC nano-XCT volumes of ``../shared/data/lrcs_nanoxct`` (labels 0/1/2 =
    active/CBD/pore, used as 1..3); strokes on ~1 % of the first slice; IoU on the other slices.
    Goal: U-Net mean IoU >= random forest + 0.08.

Usage::

    python bench/train_accuracy.py --case all --minutes 5 --seed 0
    python bench/train_accuracy.py --case all --minutes 5 --seed 0 --init default  # fine-tune
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LRCS = (ROOT / ".." / "shared" / "data" / "lrcs_nanoxct").resolve()
LRCS_VOLUMES = {"lrcs-a": (1, 100, 200, 300, 400), "lrcs-b": (103, 360, 510, 738, 929, 1098)}
SIGMAS = (0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
MAX_FOREST_VOXELS = 300_000  # more labelled voxels than this train on a random subset


def filter_features(image: np.ndarray) -> np.ndarray:
    """``(*image.shape, F)`` float32 multiscale features of a 2D slice or a 3D volume."""
    from scipy import ndimage
    from skimage.feature import (
        hessian_matrix,
        hessian_matrix_eigvals,
        structure_tensor,
        structure_tensor_eigenvalues,
    )

    image = image.astype(np.float32)
    features = [image]
    for sigma in SIGMAS:
        features.append(ndimage.gaussian_filter(image, sigma))
        features.append(ndimage.gaussian_gradient_magnitude(image, sigma))
        features.append(ndimage.gaussian_laplace(image, sigma))
        hessian = hessian_matrix(image, sigma, order="rc", use_gaussian_derivatives=True)
        features.extend(hessian_matrix_eigvals(hessian))
        tensor = structure_tensor(image, sigma=sigma, order="rc")
        features.extend(structure_tensor_eigenvalues(tensor))
    return np.stack(features, axis=-1).astype(np.float32)


def random_forest(features: np.ndarray, painted: np.ndarray, seed: int, threads: int):
    """Random forest trained on the painted voxels of ``features``."""
    from sklearn.ensemble import RandomForestClassifier

    mask = painted > 0
    x, y = features[mask], painted[mask]
    if len(y) > MAX_FOREST_VOXELS:  # dense labels (a ceiling run): a random subset
        keep = np.random.default_rng(seed).choice(len(y), MAX_FOREST_VOXELS, replace=False)
        x, y = x[keep], y[keep]
    forest = RandomForestClassifier(n_estimators=100, n_jobs=threads, random_state=seed)
    forest.fit(x, y)
    return forest


def predict_forest(forest, features: np.ndarray) -> np.ndarray:
    flat = features.reshape(-1, features.shape[-1])
    out = np.concatenate(
        [forest.predict(flat[i : i + 500_000]) for i in range(0, len(flat), 500_000)]
    )
    return out.reshape(features.shape[:-1]).astype(np.uint8)


def iou(truth: np.ndarray, predicted: np.ndarray, n_phases: int) -> np.ndarray:
    scores = []
    for value in range(1, n_phases + 1):
        a, b = truth == value, predicted == value
        union = np.logical_or(a, b).sum()
        scores.append(np.logical_and(a, b).sum() / union if union else np.nan)
    return np.array(scores)


def load_case(case: str, seed: int, margin: int = 1):
    """(image (Z, Y, X), truth 1..K, painted, evaluation slice mask, phase names)."""
    from battery_seg.training import simulate_strokes

    if case == "phantom":
        from battery_seg.phantom import make_sample

        sample = make_sample((128, 128, 128), seed=seed)
        painted = simulate_strokes(sample.labels, slices=3, fraction=0.01, margin=margin, seed=seed)
        every = np.ones(128, bool)
        return sample.image, sample.labels, painted, every, sample.phases.names
    import tifffile

    if not LRCS.is_dir():
        raise SystemExit(f"{LRCS} is absent; the lrcs cases need ../shared/data.")
    ids = LRCS_VOLUMES[case]
    image = np.stack([tifffile.imread(LRCS / f"{i}.tif") for i in ids])
    truth = np.stack([tifffile.imread(LRCS / f"{i}_label.tif") for i in ids]) + 1
    painted = np.zeros_like(truth)
    painted[0] = simulate_strokes(truth[0], fraction=0.01, margin=margin, seed=seed)
    evaluated = np.arange(len(ids)) > 0
    return image, truth, painted, evaluated, ("active", "cbd", "pore")


def run_forest(image, painted, case: str, seed: int, threads: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    if case == "phantom":
        features = filter_features(image)
        forest = random_forest(features, painted, seed, threads)
        predicted = predict_forest(forest, features)
    else:  # separate 2D slices: 2D features per slice
        first = filter_features(image[0])
        forest = random_forest(first, painted[0], seed, threads)
        predicted = np.stack([predict_forest(forest, filter_features(s)) for s in image])
    return predicted, time.perf_counter() - start


def run_unet(image, painted, names, case: str, args) -> tuple[np.ndarray, float, object]:
    from battery_seg.training import TrainConfig, predict_volume, train

    slices = case != "phantom"  # lrcs: separate 2D slices, far apart
    if args.init:  # fine-tune (the model's context; other phases: its features, a new head)
        context = None
    else:
        context = 1 if slices else args.context
    config = TrainConfig(
        phases=",".join(names) if slices else "si-graphite",
        context=context,
        init=args.init,
        epochs=None,
        minutes=args.minutes,
        seed=args.seed,
        patience=None,
        base_channels=args.base,
        depth=args.depth,
        patch_size=args.patch,
        batch_size=args.batch,
        learning_rate=args.lr,
        steps_per_epoch=args.steps,
    )
    start = time.perf_counter()

    def show(event):
        if event.data and "epoch" in event.data and args.verbose:
            print(f"  {event.message} [{event.data['seconds']:.0f} s]", flush=True)

    if slices and args.init:  # each slice a volume of its own: no false neighbours
        pairs = [
            (image[i : i + 1], painted[i : i + 1], f"{case}[{i}]")
            for i in range(len(image))
            if painted[i].any()
        ]
    else:
        pairs = [(image, painted, case)]
    result = train(pairs, config, on_progress=show)
    seconds = time.perf_counter() - start
    if slices and args.init:
        predicted = np.concatenate(
            [predict_volume(result.model, result.card, image[i : i + 1]) for i in range(len(image))]
        )
    else:
        predicted = predict_volume(result.model, result.card, image)
    return predicted, seconds, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="all", choices=["all", "phantom", "lrcs-a", "lrcs-b"])
    parser.add_argument("--minutes", type=float, default=5.0, help="U-Net training budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--context", type=int, default=3)
    parser.add_argument("--base", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--lr", type=float, help="default: 3e-3 from scratch, 1e-3 fine-tuning")
    parser.add_argument(
        "--margin",
        type=int,
        default=1,
        help="pixels between simulated strokes and phase boundaries",
    )
    parser.add_argument(
        "--init",
        help="fine-tune this model ('default': the bundled one) instead of training from scratch",
    )
    parser.add_argument("--no-forest", action="store_true", help="skip the baseline")
    parser.add_argument("--verbose", action="store_true", help="print every epoch")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    cases = ["phantom", "lrcs-a", "lrcs-b"] if args.case == "all" else [args.case]
    for case in cases:
        image, truth, painted, evaluated, names = load_case(case, args.seed, args.margin)
        share = (painted > 0).sum() / painted[np.any(painted > 0, axis=(1, 2))].size
        print(
            f"\n== {case}: image {image.shape}, painted voxels {int((painted > 0).sum())} "
            f"({100 * share:.2f} % of the painted slices)",
            flush=True,
        )
        unet, unet_seconds, result = run_unet(image, painted, names, case, args)
        unet_iou = iou(truth[evaluated], unet[evaluated], len(names))
        if not args.no_forest:
            forest, forest_seconds = run_forest(image, painted, case, args.seed, args.threads)
            forest_iou = iou(truth[evaluated], forest[evaluated], len(names))
        else:
            forest_iou, forest_seconds = np.full(len(names), np.nan), float("nan")
        print(f"{'phase':>10} {'U-Net':>7} {'forest':>7}")
        for name, a, b in zip(names, unet_iou, forest_iou, strict=True):
            print(f"{name:>10} {a:7.3f} {b:7.3f}")
        forest_mean = np.nanmean(forest_iou) if not args.no_forest else np.nan
        print(f"{'mean':>10} {np.nanmean(unet_iou):7.3f} {forest_mean:7.3f}")
        print(
            f"{'seconds':>10} {unet_seconds:7.0f} {forest_seconds:7.0f}   (U-Net: training, "
            f"{result.card.provenance['steps']} steps, stopped by {result.stopped_by}, "
            f"from {result.card.provenance['init']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
