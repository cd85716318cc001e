"""Live segmentation: update times, accuracy against the forests, and "paint next".

``--times``: the displayed slice's update after a stroke (refit from the previous head + predict,
features cached) on 512² and 1024² slices, and the first features of a 1024² slice (phantom
tiled to size, the bundled default model); ``--images 2`` also with two images, as the Train
dock's live mode with two image / strokes pairs (against one, in the same run).
``--accuracy``: from the same strokes as ``bench/real_strokes.py`` (seed 0, ``--efforts``,
default 1 %; on 2D cases live fits the first painted slice, for ``1%x3`` the three painted
slices, each an image of its own), the live head, a random forest on the same network features
(``--no-network-forest`` skips it: slow on volumes), and the filter-feature forest (raw and
per-image normalised); scored like real_strokes (the unpainted slices of LRCS, the unpainted
voxels of the 3D cases). ``--user``: a
simulated user who paints 1 % of the slice "paint next" suggests (where its uncertainty overlay
is bright, or at random), or of a random slice (several seeds), for 5 rounds, on the phantom and
LRCS A (as one stack); mean IoU after each round.

``--stack`` gives live the 2D cases' slices as one stack, normalised with one grey-value
range (as the raw forest sees them), instead of each slice normalised on its own.
``--stroke-seeds 0 1 2 3 4`` repeats ``--accuracy`` with strokes painted by each seed (the live
fit and the forests take the seed too) and prints each method's mean and sd over the seeds and
live minus each forest, paired by seed: one seed's comparison is within that spread.

Usage::

    python bench/bench_live.py --times --accuracy --user
    python bench/bench_live.py --accuracy --filter-forest --no-network-forest \
        --cases lrcs-a lrcs-b --efforts 0.1% 1% 10% 1%x3 --stroke-seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_strokes import load, paint, run_forest
from train_accuracy import iou


def update_times(size: int, reps: int = 3, images: int = 1) -> dict:
    """Seconds: first features of a slice, the first fit, and refit + predict after a stroke.

    With several ``images`` (phantoms of other seeds, each with strokes on its slice 4), as the
    Train dock with that many image / strokes pairs: the refit reads every image's strokes and
    the slice of each is predicted; the stroke is painted on the first."""
    from battery_seg.phantom import make_sample
    from battery_seg.training import LiveConfig, live_fit, simulate_strokes
    from battery_seg.training._live import base_bank

    tiles = (1, size // 256, size // 256)
    volumes, truths, strokes = [], [], []
    for seed in range(images):
        sample = make_sample((8, 256, 256), seed=seed)
        volumes.append(np.tile(sample.image, tiles))
        truths.append(np.tile(sample.labels, tiles))
        strokes.append(simulate_strokes(truths[-1], slices=[4], fraction=0.01, seed=seed))
    bank = base_bank(LiveConfig(init="default"), volumes)
    start = time.perf_counter()
    bank.slice(volumes[0], 4)
    features = time.perf_counter() - start
    for image in volumes[1:]:
        bank.slice(image, 4)
    start = time.perf_counter()
    live = live_fit(volumes, strokes, bank=bank)
    first_fit = time.perf_counter() - start
    updates = []
    for k in range(reps):  # one more stroke each time, as a user paints
        more = simulate_strokes(truths[0], slices=[4], fraction=0.002, seed=100 + k)
        strokes[0] = np.where(strokes[0] > 0, strokes[0], more)
        start = time.perf_counter()
        live = live_fit(volumes, strokes, bank=bank, previous=live)
        for image in volumes:
            live.predict_slice(image, 4)
        updates.append(time.perf_counter() - start)
    return {"features": features, "first_fit": first_fit, "update": float(np.median(updates))}


def network_forest(live, image, strokes, images) -> list[np.ndarray]:
    """A random forest on the live model's own features at the same painted voxels (of the
    painted ``image``, or list of images), predicting every image of ``images``."""
    from sklearn.ensemble import RandomForestClassifier

    x, y = [], []
    pairs = zip(image, strokes, strict=True) if isinstance(image, list) else [(image, strokes)]
    for picture, marks in pairs:
        for index in _painted(marks):
            plane = marks if marks.ndim == 2 else marks[index]
            rows, cols = np.nonzero(plane)
            x.append(live.bank.at(picture, index, rows, cols).numpy())
            y.append(plane[rows, cols])
    forest = RandomForestClassifier(100, n_jobs=1, random_state=0)
    forest.fit(np.concatenate(x), np.concatenate(y))
    predicted = []
    for other in images:
        height, width = other.shape[-2:]
        rows, cols = np.divmod(np.arange(height * width), width)
        slices = [
            forest.predict(live.bank.at(other, k, rows, cols).numpy()).reshape(height, width)
            for k in range(1 if other.ndim == 2 else other.shape[0])
        ]
        predicted.append(slices[0] if other.ndim == 2 else np.stack(slices))
    return predicted


def _painted(strokes) -> list[int]:
    planes = strokes[None] if strokes.ndim == 2 else strokes
    return [k for k in range(len(planes)) if planes[k].any()]


def live_predict(live, image) -> np.ndarray:
    if image.ndim == 2:
        return live.predict_slice(image, 0)[0]
    return np.stack([live.predict_slice(image, k)[0] for k in range(image.shape[0])])


def mean_iou(truths, predicted, painted, n_phases) -> float:
    """As real_strokes scores: the unpainted 2D slices, or the unpainted voxels of a volume."""
    if len(truths) > 1:
        keep = [k for k, p in enumerate(painted) if not p.any()]
        truth = np.stack([truths[k] for k in keep])
        pred = np.stack([predicted[k] for k in keep])
    else:
        untouched = painted[0] == 0
        truth, pred = truths[0][untouched], predicted[0][untouched]
    return float(np.nanmean(iou(truth, pred, n_phases)))


def accuracy(case: str, effort: str, args, seed: int = 0) -> dict:
    """Mean IoU of the live head and the forests from the strokes of ``seed`` (the live fit and
    the forests take that seed too)."""
    from battery_seg.training import LiveConfig, live_fit

    images, truths, names, is_2d = load(case)
    painted = paint(truths, effort, is_2d, seed)
    ids = _painted(np.stack(painted)) if is_2d else [0]
    stack = is_2d and args.stack
    if stack:  # the slices as one stack (one grey-value range), as a user may keep them
        image, strokes = np.stack(images), np.stack(painted)
    elif is_2d:  # the painted images, each its own (several for 1%x3)
        image, strokes = [images[k] for k in ids], [painted[k] for k in ids]
    else:
        image, strokes = images[0], painted[0]
    start = time.perf_counter()
    live = live_fit(image, strokes, LiveConfig(phases=",".join(names), seed=seed))
    row = {"live_fit_s": time.perf_counter() - start, "reads": live.features}
    start = time.perf_counter()
    predicted = (
        list(live_predict(live, image)) if stack else [live_predict(live, im) for im in images]
    )
    row["live"] = mean_iou(truths, predicted, painted, len(names))
    row["live_predict_s"] = time.perf_counter() - start
    if not args.no_network_forest:
        start = time.perf_counter()
        forest = network_forest(live, image, strokes, [image] if stack else images)
        forest = list(forest[0]) if stack else forest
        row["forest_network_s"] = time.perf_counter() - start
        row["forest_network"] = mean_iou(truths, forest, painted, len(names))
    if args.filter_forest:
        forest_args = argparse.Namespace(seed=seed, threads=1)
        for method, normalise in (("forest_filter", False), ("forest_filter_norm", True)):
            predicted, _, _ = run_forest(images, painted, is_2d, forest_args, normalise)
            row[method] = mean_iou(truths, predicted, painted, len(names))
    return row


def simulated_user(case: str, strategy: str, rounds: int = 5, seed: int = 1) -> list[float]:
    """Mean IoU (every voxel not painted) after the first strokes and after each round in which
    1 % of a slice is painted: ``suggest``, the slice "paint next" puts first, painted where the
    uncertainty overlay is bright (its top fifth, widened by 2 pixels), as the dock shows it;
    ``suggest-slice``, the same slice painted at random; ``random``, a random slice painted at
    random."""
    from battery_seg.training import LiveConfig, live_fit, simulate_strokes, suggest_slices

    images, truths, names, is_2d = load(case)
    image = np.stack(images) if is_2d else images[0]  # LRCS A as one stack of 5 slices
    truth = np.stack(truths) if is_2d else truths[0]
    first = 0 if is_2d else image.shape[0] // 2
    strokes = simulate_strokes(truth, slices=[first], fraction=0.01, seed=0)
    config = LiveConfig(phases=",".join(names), init="2d" if is_2d else "auto")
    live = live_fit(image, strokes, config)
    rng = np.random.default_rng(seed)
    scores = [_volume_iou(live, image, truth, strokes, len(names))]
    for round_ in range(rounds):
        if strategy == "random":
            index = int(rng.integers(image.shape[0]))
        else:
            index = suggest_slices(live, image, strokes, count=1)[0].index
        target = truth
        if strategy == "suggest":
            target = np.zeros_like(truth)
            target[index] = np.where(_bright(live, image, index, strokes[index]), truth[index], 0)
        more = simulate_strokes(target, slices=[index], fraction=0.01, seed=10 * seed + round_)
        strokes = np.where(strokes > 0, strokes, more)
        live = live_fit(image, strokes, config, bank=live.bank, previous=live)
        scores.append(_volume_iou(live, image, truth, strokes, len(names)))
    return scores


def _bright(live, image, index: int, painted: np.ndarray) -> np.ndarray:
    """Where the uncertainty overlay of slice ``index`` is in its top fifth (unpainted pixels),
    widened by 2 pixels: where a user looking at the overlay paints."""
    from scipy import ndimage

    _, doubt = live.predict_slice(image, index)
    bright = doubt >= np.quantile(doubt[painted == 0], 0.8)
    return ndimage.binary_dilation(bright, iterations=2) & (painted == 0)


def _volume_iou(live, image, truth, strokes, n_phases) -> float:
    predicted = live_predict(live, image)
    untouched = strokes == 0
    return float(np.nanmean(iou(truth[untouched], predicted[untouched], n_phases)))


def report_accuracy(case: str, effort: str, args) -> None:
    """Print the accuracy of every stroke seed, then their summary."""
    rows = []
    for seed in args.stroke_seeds:
        row = accuracy(case, effort, args, seed)
        reads = row.pop("reads")
        rows.append(row)
        scores = "  ".join(f"{k} {v:.3f}" for k, v in row.items() if not k.endswith("_s"))
        times = "  ".join(f"{k} {v:.1f}" for k, v in row.items() if k.endswith("_s"))
        forests = [v for k, v in row.items() if k.startswith("forest") and k[-2:] != "_s"]
        ratio = f"  live/best forest {row['live'] / max(forests):.3f}" if forests else ""
        print(
            f"{case} {effort} strokes seed {seed}: {scores} (reads {reads}){ratio}  [{times}]",
            flush=True,
        )
    if len(rows) > 1:
        print(seed_summary(case, effort, rows), flush=True)


def seed_summary(case: str, effort: str, rows: list[dict]) -> str:
    """Mean (sd) of every method over the stroke seeds, and live minus each forest, paired by
    seed: the seed-to-seed spread that one seed's comparison hides."""
    methods = [k for k in rows[0] if not k.endswith("_s")]
    cells = []
    for method in methods:
        values = np.array([r[method] for r in rows])
        cells.append(f"{method} {values.mean():.3f} ({values.std(ddof=1):.3f})")
    for method in [m for m in methods if m.startswith("forest")]:
        gap = np.array([r["live"] - r[method] for r in rows])
        ahead = int((gap >= 0).sum())
        cells.append(
            f"live - {method} {gap.mean():+.3f} ({gap.std(ddof=1):.3f}), live ahead "
            f"{ahead}/{len(rows)}"
        )
    return f"{case} {effort}, {len(rows)} stroke seeds, mean (sd): " + "; ".join(cells)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--times", action="store_true")
    parser.add_argument("--accuracy", action="store_true")
    parser.add_argument("--user", action="store_true")
    parser.add_argument("--cases", nargs="+", default=["lrcs-a", "lrcs-b", "phantom"])
    parser.add_argument("--efforts", nargs="+", default=["1%"], help="--accuracy: as real_strokes")
    parser.add_argument("--filter-forest", action="store_true", help="also the filter forests")
    parser.add_argument(
        "--no-network-forest", action="store_true", help="--accuracy: skip the network forest"
    )
    parser.add_argument(
        "--stroke-seeds",
        type=int,
        nargs="+",
        default=[0],
        help="--accuracy: strokes painted with each seed (several: mean, sd, paired gaps)",
    )
    parser.add_argument(
        "--stack",
        action="store_true",
        help="--accuracy: live fits the 2D cases' slices as one stack (one grey-value range)",
    )
    parser.add_argument(
        "--images", type=int, default=1, help="--times: also with this many images, as the dock"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[1, 2, 3], help="random-slice users (--user)"
    )
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if args.times:
        for size in (512, 1024):
            t = update_times(size)
            print(
                f"{size}² slice: first features {t['features']:.2f} s, first fit "
                f"{t['first_fit']:.2f} s, update after a stroke {t['update']:.2f} s "
                f"(target {0.5 if size == 512 else 2.0} s: ratio "
                f"{t['update'] / (0.5 if size == 512 else 2.0):.2f})",
                flush=True,
            )
            if args.images > 1:
                many = update_times(size, images=args.images)
                print(
                    f"{size}² slices of {args.images} images: update after a stroke "
                    f"{many['update']:.2f} s, {many['update'] / t['update']:.2f}x one image's",
                    flush=True,
                )
    if args.accuracy:
        for case in args.cases:
            for effort in args.efforts:
                report_accuracy(case, effort, args)
    if args.user:
        for case in [c for c in args.cases if c in ("phantom", "lrcs-a")] or ["phantom", "lrcs-a"]:
            gains = {}
            for strategy, seeds in (
                ("suggest", [1]),
                ("suggest-slice", [1]),
                ("random", args.seeds),
            ):
                for seed in seeds:
                    scores = simulated_user(case, strategy, seed=seed)
                    gain = (scores[-1] - scores[0]) / (len(scores) - 1)
                    gains.setdefault(strategy, []).append(gain)
                    trail = " ".join(f"{s:.3f}" for s in scores)
                    print(
                        f"{case} {strategy:13} seed {seed}: mean IoU {trail}; gain/round "
                        f"{gain:+.4f}",
                        flush=True,
                    )
            random_gain = float(np.mean(gains["random"]))
            for strategy in ("suggest", "suggest-slice"):
                ratio = (
                    f"ratio {gains[strategy][0] / random_gain:.2f}"
                    if random_gain > 0
                    else "no ratio: random strokes gain nothing here"
                )
                print(
                    f"{case} {strategy}: gain/round {gains[strategy][0]:+.4f} vs random "
                    f"{random_gain:+.4f} (mean of {len(args.seeds)} seeds): {ratio}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
