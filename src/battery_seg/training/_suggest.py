"""Where to paint next: the slices a live model is least sure about."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..jobs import Job, Progress, run_job

if TYPE_CHECKING:
    from ._live import LiveModel

__all__ = ["Suggestion", "candidate_slices", "suggest_job", "suggest_slices"]


class Suggestion(NamedTuple):
    """A slice, its mean predicted uncertainty over the voxels not painted (0..1), and whether
    strokes are painted on it already."""

    index: int
    uncertainty: float
    painted: bool = False


def candidate_slices(depth: int, count: int = 12) -> list[int]:
    """``count`` evenly spaced slices of ``depth`` (all of them when there are fewer).

    Examples
    --------
    >>> candidate_slices(100, 4), candidate_slices(3)
    ([12, 37, 62, 87], [0, 1, 2])
    """
    if depth <= count:
        return list(range(depth))
    return [int(i) for i in (np.arange(count) + 0.5) * depth / count]


def suggest_job(
    model: LiveModel,
    image: Any,
    strokes: Any = None,
    *,
    count: int = 5,
    candidates: list[int] | int = 12,
) -> Job[list[Suggestion]]:
    """Rank candidate slices (axis 0) by the live model's mean uncertainty, yielding after each
    slice; return the ``count`` first: slices with no strokes yet before painted ones, each
    group most uncertain first."""
    depth = 1 if image.ndim == 2 else image.shape[0]
    indices = candidate_slices(depth, candidates) if isinstance(candidates, int) else candidates
    scores = []
    for i, index in enumerate(indices):
        yield Progress(i, len(indices), f"uncertainty of slice {index}")
        _, doubt = model.predict_slice(image, index)
        painted = np.zeros(doubt.shape, bool)
        if strokes is not None:
            painted = np.asarray(strokes if strokes.ndim == 2 else strokes[index]) > 0
            doubt = doubt[~painted] if (~painted).any() else np.zeros(1)
        scores.append(Suggestion(int(index), float(doubt.mean()), bool(painted.any())))
    return sorted(scores, key=lambda s: (s.painted, -s.uncertainty))[:count]


def suggest_slices(model: LiveModel, image: Any, strokes: Any = None, **kwargs) -> list[Suggestion]:
    """The slices where painting helps the live ``model`` most: those whose predicted
    uncertainty (normalised entropy, see :func:`~battery_seg.training.uncertainty`), averaged
    over the voxels not yet painted, is highest, slices with no strokes yet first (a slice
    already painted stays uncertain where strokes keep off, its boundaries; a new slice teaches
    more). Only candidate slices are scored (12 evenly spaced ones by default, or the given
    indices): each costs its features once.

    Examples
    --------
    >>> from battery_seg.phantom import make_sample
    >>> from battery_seg.training import LiveConfig, live_fit, simulate_strokes
    >>> sample = make_sample((8, 64, 64), seed=0)
    >>> strokes = simulate_strokes(sample.labels, slices=[4], fraction=0.05)
    >>> live = live_fit(sample.image, strokes, LiveConfig(steps=20))
    >>> [s.index for s in suggest_slices(live, sample.image, strokes, count=2)]  # doctest: +SKIP
    [0, 7]
    """
    return run_job(suggest_job(model, image, strokes, **kwargs))
