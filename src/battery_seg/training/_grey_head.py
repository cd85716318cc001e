"""A grey-level head for models fine-tuned from a start model that does not know the imaging.

When the start model labels the strokes poorly (the real LRCS nano-XCT slices from the anode
``2d`` model: 64-66 % of the strokes right), the fine-tuned U-Net draws the pore / CBD boundary
where its features put it: on LRCS volume B it gave 3-12 points of pore near the pores' edges,
whose grey values blur towards CBD's, to CBD, and stayed behind a random forest on filter
features on all five stroke seeds. A small classifier on classic filter features (the live
head's, :class:`~battery_seg.model.unet.FilterFeatures`), fitted to the same strokes in a few
seconds, draws that boundary from the grey levels and misses the context the U-Net sees; the
model keeps both and blends their probabilities (:class:`~battery_seg.model.unet.GreyHead`,
``TrainConfig.grey_weight``). Measured on LRCS volume B, 1 % strokes, five seeds: 0.586 mean IoU
against the U-Net's 0.551, the forest's 0.581 and the filter classifier's own 0.571 (see
docs/training.md).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..jobs import Job, Progress
from ..model import ModelCard, UNet
from ..model.unet import FilterFeatures, filter_count
from ._config import LiveConfig
from ._live_head import FittedHead, feature_scale, fit_head
from ._samples import Crop

__all__ = ["fit_grey_head", "with_grey_head", "without_grey_head"]

_MAX_POINTS = 50_000  # stroke pixels the classifier is fitted on (a random subset beyond that)
_BACKGROUND = 4096  # random pixels per crop that set the feature scale
FITTING = "fitting a grey-level classifier to the strokes"


def fit_grey_head(crops: list[Crop], n_phases: int, seed: int) -> Job[FittedHead]:
    """Fit the classifier to every painted pixel of ``crops`` (training and held-back strokes:
    the U-Net has been validated by now), on the filter features of the crops as the network
    reads them (normalised); a job that yields while it fits (at the end of a training job,
    whose progress is in thousandths)."""
    rng = np.random.default_rng(seed)
    filters = FilterFeatures()
    strokes, labels, background = [], [], []
    with torch.no_grad():
        for crop in crops:
            painted = np.maximum(crop.train, crop.val)
            rows, cols = np.nonzero(painted)
            if rows.size == 0:
                continue
            image = torch.from_numpy(np.ascontiguousarray(crop.image[None], np.float32))
            maps = filters(image)[0].permute(1, 2, 0)  # (H, W, F)
            strokes.append(maps[rows, cols])
            labels.append(torch.from_numpy(painted[rows, cols].astype(np.int64) - 1))
            anywhere = rng.integers(0, painted.shape, size=(_BACKGROUND, 2)).T
            background.append(maps[anywhere[0], anywhere[1]])
    x, y = torch.cat(strokes), torch.cat(labels)
    if len(x) > _MAX_POINTS:
        keep = torch.from_numpy(rng.choice(len(x), _MAX_POINTS, replace=False))
        x, y = x[keep], y[keep]
    scale = feature_scale(torch.cat(background), [filter_count()], logits_last=False)
    fitting = fit_head(x, y, n_phases, LiveConfig(seed=seed), scale)
    while True:  # the training's progress is complete: say what runs, keep the bar full
        try:
            next(fitting)
        except StopIteration as done:
            return done.value
        yield Progress(1000, 1000, FITTING)


def with_grey_head(
    model: UNet, card: ModelCard, head: FittedHead, weight: float
) -> tuple[UNet, ModelCard]:
    """``model`` with ``head`` blended into its output at ``weight`` (the standardisation
    folded into the head's first layer, so the saved network reads its normalised input)."""
    architecture = replace(
        model.config, grey_hidden=head.first.out_features, grey_weight=float(weight)
    )
    state = dict(model.state_dict())
    first_weight, first_bias = head.raw_first()
    state["grey.first.weight"] = first_weight.detach()[:, :, None, None]
    state["grey.first.bias"] = first_bias.detach()
    state["grey.out.weight"] = head.second.weight.detach()[:, :, None, None]
    state["grey.out.bias"] = head.second.bias.detach()
    return _rebuilt(model, card, architecture, state)


def without_grey_head(model: UNet, card: ModelCard) -> tuple[UNet, ModelCard]:
    """The U-Net of a model without its grey-level head (as it is when it has none): what
    fine-tuning and live fitting start from, since the head is fitted again to the new strokes."""
    if not model.config.grey_hidden:
        return model, card
    architecture = replace(model.config, grey_hidden=0, grey_weight=0.0)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("grey.")}
    return _rebuilt(model, card, architecture, state)


def _rebuilt(model: UNet, card: ModelCard, architecture, state: dict) -> tuple[UNet, ModelCard]:
    """A network of ``architecture`` holding ``state``, on ``model``'s device and in its mode."""
    network = UNet(architecture)
    network.load_state_dict(state)
    network.to(next(model.parameters()).device).train(model.training)
    return network, replace(card, architecture=architecture)
