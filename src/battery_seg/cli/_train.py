"""``battery-seg train``: train (or fine-tune) a U-Net from painted label files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import BatterySegError
from ._options import (
    add_command,
    add_device_argument,
    add_overwrite_argument,
    add_phases_argument,
    add_seed_argument,
)
from ._volume import add_selection_arguments, check_outputs, open_input

EPILOG = """\
examples:
  battery-seg train image.tif strokes.tif -o model.pt --phases si-graphite --minutes 5
  battery-seg train scan.tif strokes.tif -o mine.pt --phases nmc --minutes 5  # from the nmc model
  battery-seg train slice.tif strokes.tif -o mine.pt --phases nmc --minutes 5  # 2D: the 2d model
  battery-seg train a.tif a_strokes.tif b.zarr b_strokes.zarr -o model.pt --epochs 30
  battery-seg train image.tif more_strokes.tif -o model2.pt --init model.pt --minutes 2
  battery-seg train scan.tif labels.tif -o model.pt --phases active=0,cbd=1,pore=2
  battery-seg train image.tif strokes.tif -o live.pt --quick     # seconds: the live classifier

Painted labels: 0 = unpainted, 1..K = the phases in --phases order. With NAME=VALUE pairs the
file's values are mapped to the phases; 0 stays 'unpainted' unless a phase is given value 0 (then
every voxel must be labelled). The best model is saved on every improvement, so an interrupted
run leaves the last good model. The first epoch always completes (a --minutes budget shorter than
that is reported), and a run whose loss becomes NaN saves nothing.

--quick fits only a small head on the start model's own features at the painted voxels of
every pair (the Train dock's Live mode): seconds instead of minutes, a little less accurate than
training; the file is a model like any other (segment, --init, export)."""


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "train",
        help="train or fine-tune a segmentation model from painted labels",
        description="Train a U-Net from sparse painted strokes (image / labels file pairs), "
        "validating on held-back strokes; prints loss and per-phase validation IoU each epoch.",
        epilog=EPILOG,
    )
    parser.add_argument(
        "volumes",
        nargs="+",
        type=Path,
        metavar="IMAGE LABELS",
        help="image and painted-labels files, in pairs",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="MODEL.pt",
        help="model file to write (the best model, saved on every improvement)",
    )
    add_phases_argument(
        parser,
        "si-graphite, nmc, names (a,b,c) or NAME=VALUE pairs "
        "(default: the labels file's phases, the --init model's, or si-graphite)",
    )
    parser.add_argument(
        "--context",
        type=int,
        choices=(1, 3, 5, 7),
        help="neighbouring slices the network sees (default: the --init model's, 3 from "
        "scratch; more than the model's deepens it)",
    )
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--epochs", type=int, help="number of epochs (default 40)")
    stop.add_argument("--minutes", type=float, help="training time budget instead of epochs")
    parser.add_argument(
        "--init",
        metavar="MODEL",
        default="auto",
        help="where training starts: 'auto' (default: the bundled model that suits the data: "
        "'2d' for 2D images, stacks of unrelated slices and --context 1 or 3; else 'nmc' for a "
        "cathode's phases pore, active, cbd and 'default' for others), a bundled model "
        "('default', 'fast', '2d', 'nmc', 'nmc-2d'), a model file (.pt, or a bioimage.io "
        "package from 'battery-seg export'), or 'scratch' for a new network; with other "
        "--phases than the model's, its "
        "features are kept and a new output layer starts from its rows",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fit only the live classifier on the start model's features (seconds)",
    )
    parser.add_argument(
        "--steps", type=int, default=25, help="optimiser steps per epoch (default 25)"
    )
    parser.add_argument("--patch", type=int, default=96, help="patch size (default 96)")
    parser.add_argument("--batch", type=int, default=8, help="patches per step (default 8)")
    add_seed_argument(parser)
    parser.add_argument(
        "--lr",
        type=float,
        help="peak learning rate (default 3e-3 from scratch, 1e-3 when fine-tuning)",
    )
    parser.add_argument(
        "--validation",
        type=float,
        default=0.2,
        metavar="FRACTION",
        help="fraction of strokes held back for validation (default 0.2)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=12,
        help="stop after this many epochs without improvement (default 12)",
    )
    parser.add_argument(
        "--train-missing-phases",
        action="store_true",
        help="train even if a phase has no painted voxel (the others only)",
    )
    parser.add_argument(
        "--no-match-fractions",
        dest="match_fractions",
        action="store_false",
        help="keep the phase fractions the strokes give; by default, when the start model labels "
        "the strokes well, the trained model's fractions are matched to the start model's "
        "(equal strokes of every phase make a network over-predict the rare phases)",
    )
    parser.add_argument(
        "--no-grey-levels",
        action="store_true",
        help="leave out the grey-level classifier; by default, when the start model does not "
        "know the imaging (it labels the strokes poorly) or training starts from scratch, a "
        "classifier of filter features fitted to the same strokes is blended into the model, "
        "which draws the boundaries of look-alike phases (pore, CBD) from the grey values",
    )
    add_device_argument(parser, "training")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    add_selection_arguments(parser)
    add_overwrite_argument(
        parser, "replace an existing MODEL.pt (a model file only; never an input)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training import TrainConfig

    if len(args.volumes) % 2:
        raise BatterySegError(
            f"Give images and labels in pairs (IMAGE LABELS [IMAGE LABELS ...]); got "
            f"{len(args.volumes)} files."
        )
    init = Path(args.init) if args.init and Path(args.init).exists() else None
    check_outputs([(args.output, "model")], args.overwrite, [*args.volumes, init])
    if args.threads is not None and args.threads < 1:
        raise BatterySegError(f"--threads must be at least 1, got {args.threads}.")
    pairs, file_phases = _open_pairs(args.volumes, args)
    if args.quick:
        return _quick(pairs, _phases(args.phases, file_phases), args)
    epochs = args.epochs if args.minutes is None else None
    config = TrainConfig(
        phases=_phases(args.phases, file_phases),
        context=args.context,
        epochs=TrainConfig.epochs if epochs is None and args.minutes is None else epochs,
        minutes=args.minutes,
        steps_per_epoch=args.steps,
        init=args.init,
        patch_size=args.patch,
        batch_size=args.batch,
        seed=args.seed,
        learning_rate=args.lr,
        validation_fraction=args.validation,
        patience=args.patience,
        train_missing_phases=args.train_missing_phases,
        match_fractions=args.match_fractions,
        grey_weight=0.0 if args.no_grey_levels else TrainConfig.grey_weight,
        device=args.device,
        output=args.output,
        overwrite=args.overwrite,
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return _train(pairs, config)


def _open_pairs(paths: list[Path], args: argparse.Namespace):
    """Training pairs from the files and the phase set a labels file names (if any)."""
    from ..io._common import MICROMETRE
    from ..training import TrainingPair

    pairs, file_phases = [], None
    for image_path, labels_path in zip(paths[::2], paths[1::2], strict=True):
        image, labels = open_input(image_path, args), _open_labels(labels_path, args)
        name = f"labels '{labels_path}' on image '{image_path}'"
        known = image.unit == MICROMETRE  # the resolution the model learns, when the file says
        pairs.append(
            TrainingPair(image.data, labels.data, name, image.voxel_size if known else None)
        )
        if labels.phases is not None:
            if file_phases is not None and labels.phases.names != file_phases.names:
                raise BatterySegError(
                    f"{labels_path} names the phases {labels.phases.describe()} but another "
                    f"labels file names {file_phases.describe()}; all labels must use one phase "
                    "set."
                )
            file_phases = labels.phases
    return pairs, file_phases


def _open_labels(path: Path, args: argparse.Namespace):
    """A labels file: as it is, or with --axes / --channel / --timepoint where it needs them."""
    from ..io import open_volume
    from ..io._common import ChannelChoiceError

    try:
        return open_volume(path)
    except ChannelChoiceError as exc:
        if args.axes is not None:
            return open_volume(path, axes=args.axes)
        picks = {"channel": args.channel, "timepoint": args.timepoint}
        return open_volume(path, **{k: v for k, v in picks.items() if k in exc.choices})


def _phases(spec, file_phases):
    """--phases, else the labels files' phase set, else None (the init model's / default)."""
    from ..phases import PhaseSet

    if spec is None:
        return file_phases
    asked = PhaseSet.parse(spec)
    if file_phases is not None and [n.lower() for n in asked.names] != [
        n.lower() for n in file_phases.names
    ]:
        raise BatterySegError(
            f"The labels files name their phases {file_phases.describe()} but --phases is "
            f"{asked.describe()}; leave --phases out to use the files' phases."
        )
    return asked


def _quick(pairs, phases, args: argparse.Namespace) -> int:
    """``--quick``: the live classifier of the pairs, saved to ``--output``."""
    import time

    from ..checks import output_lock
    from ..jobs import run_job
    from ..training import LiveConfig, live_job
    from ._progress import ProgressPrinter

    config = LiveConfig(
        phases=phases, init=args.init, seed=args.seed, output=args.output, overwrite=args.overwrite
    )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with output_lock(config.output), ProgressPrinter("train") as progress:
        images, strokes = [p.image for p in pairs], [p.labels for p in pairs]
        names = [p.name for p in pairs]
        live = run_job(live_job(images, strokes, config, names=names), progress)
    base = live.card.provenance["live"]["base_model"]
    print(
        f"saved {config.output}: live classifier on the features of {base} "
        f"from {live.painted_voxels} painted voxels in {time.perf_counter() - started:.1f} s"
    )
    return 0


def _train(pairs, config) -> int:
    from ..checks import output_lock
    from ..training import train_job

    with output_lock(config.output):
        return _run_training(train_job(pairs, config), config)


def _run_training(job, config) -> int:
    from ._progress import ProgressPrinter

    last_saved = None
    try:
        with ProgressPrinter("train") as progress:
            progress.status("reading the painted labels")
            while True:
                try:
                    event = next(job)
                except StopIteration as stop:
                    result = stop.value
                    break
                if event.data and "notes" in event.data:
                    for note in event.data["notes"]:
                        progress.write(f"battery-seg train: note: {note}", file=sys.stderr)
                elif event.data:
                    last_saved = event.data["epoch"] if event.data["best"] else last_saved
                    progress.write(_epoch_line(event.data))
                progress(event)
    except KeyboardInterrupt:
        where = (
            f"the best model so far (epoch {last_saved}) is in {config.output}"
            if last_saved
            else "no model was saved yet"
        )
        print(f"battery-seg train: interrupted; {where}.", file=sys.stderr)
        return 130
    from ..training._train import describe_iou

    notes = result.card.provenance.get("validation_notes", {})
    scores = describe_iou(result.best_val_iou, notes, digits=3) or "-"
    first = result.history[0]["seconds"] if result.history else 0.0
    if config.minutes is not None and first > 60 * config.minutes:
        print(
            f"battery-seg train: note: the time budget of {config.minutes:g} min was shorter "
            f"than the first epoch, which was finished anyway ({first:.0f} s) so that the model "
            "is trained and validated; give more --minutes for a useful model.",
            file=sys.stderr,
        )
    print(
        f"saved {result.model_path}: best epoch {result.best_epoch} of "
        f"{len(result.history)} ({result.stopped_by}); validation IoU {scores}"
    )
    return 0


def _epoch_line(data: dict) -> str:
    from ..training._train import describe_iou

    scores = describe_iou(data["val_iou"], data.get("val_notes", {}), digits=3) or "-"
    best = "  * saved (best)" if data["best"] else ""
    return (
        f"epoch {data['epoch']:3d}  loss {data['loss']:.4f}  val IoU {scores}  "
        f"[{data['seconds']:.0f} s]{best}"
    )
