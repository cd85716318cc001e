"""Whether the slices of a stack belong together: a tomogram, or unrelated images stacked."""

from __future__ import annotations

import numpy as np

__all__ = ["UNRELATED", "correlation_evidence", "slice_correlation", "unrelated_slices"]

# Neighbouring slices of a tomogram correlate 0.65-0.93 (the shared real and imaged volumes, noisy
# phantoms included); slices of unrelated images (far apart in a volume, separate files) about 0.
UNRELATED = 0.2


def slice_correlation(image, pairs: int = 8, crop: int = 256) -> float:
    """Median correlation of the grey levels of neighbouring slices (central crops).

    About 0 for a stack of unrelated images, 0.65-0.93 for the tomograms we know; ``nan`` for
    fewer than two slices or constant slices (nothing to tell). Reads at most ``pairs`` pairs of
    ``crop``-sized windows in one go, so a huge lazy volume costs one small read.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> abs(slice_correlation(rng.normal(size=(6, 32, 32)))) < 0.1
    True
    >>> smooth = np.cumsum(rng.normal(size=(6, 32, 32)), axis=0)  # each slice like the last
    >>> slice_correlation(smooth) > 0.5
    True
    """
    if len(image.shape) != 3 or int(image.shape[0]) < 2:
        return float("nan")
    depth, height, width = (int(n) for n in image.shape)
    top, left = max(height // 2 - crop // 2, 0), max(width // 2 - crop // 2, 0)
    window = (slice(top, top + crop), slice(left, left + crop))
    firsts = np.unique(np.linspace(0, depth - 2, min(pairs, depth - 1)).astype(int))
    planes = np.union1d(firsts, firsts + 1)
    crops = np.asarray(image[(planes, *window)], np.float64)  # one read, lazy volumes included
    row = {int(z): k for k, z in enumerate(planes)}
    found = []
    for z in firsts:
        a, b = crops[row[int(z)]].ravel(), crops[row[int(z) + 1]].ravel()
        if a.std() > 0 and b.std() > 0:
            found.append(np.corrcoef(a, b)[0, 1])
    return float(np.median(found)) if found else float("nan")


def unrelated_slices(image) -> float | None:
    """The neighbouring-slice correlation of ``image`` when it is below :data:`UNRELATED`."""
    r = slice_correlation(image)
    return r if r < UNRELATED else None


def correlation_evidence(r: float) -> str:
    """The figures behind calling slices unrelated, for notes and status lines.

    >>> correlation_evidence(-0.031)
    "(their grey levels correlate -0.03, below 0.2; a tomogram's 0.6-0.9)"
    """
    return f"(their grey levels correlate {r:.2f}, below {UNRELATED}; a tomogram's 0.6-0.9)"
