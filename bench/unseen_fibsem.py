"""A FIB-SEM model the training never sees: held-out serial sectioning for judging the models.

Written independently of ``battery_seg.phantom`` (never imported by it or by any training
script), like ``unseen_imaging.py`` for X-ray CT. The package's FIB-SEM model images
back-scattered electrons with fixed grey levels, shine-through from the first wall behind a
pore, smooth curtaining stripes and charging halos over pores. This one makes each effect
another way:

- secondary-electron contrast: every solid edge brighter than its interior (the edge effect),
  CBD mottled by its own nanoporosity around a mean about one noise sigma above the
  epoxy-filled pore, active particles of their own brightness each;
- where the pores are open (not infiltrated) the beam sees an exponentially depth-weighted
  average of the solid behind the face, blurred more the deeper it lies;
- curtains that start at the lower edge of bright particles and run down the milling
  direction (image rows), persisting from slice to slice;
- an interaction volume reaching into the next slice (a one-sided kernel along z);
- scan-line jitter (each row shifted by a fraction of a pixel), a brightness ramp along each
  frame from charging and per-slice flicker, imperfectly registered slices;
- low-dose Poisson counts, stored as 8-bit over a clipped window.

>>> import numpy as np
>>> labels = np.ones((8, 32, 32), np.uint8); labels[:, 8:20, 8:20] = 2
>>> unseen_fibsem(labels, {"pore": 1, "active": 2, "cbd": 3}).dtype
dtype('uint8')
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _edges(solid: np.ndarray) -> np.ndarray:
    """In-plane distance-decaying brightness at solid edges (secondary-electron edge effect)."""
    inside = ndimage.distance_transform_edt(solid, sampling=(1e6, 1.0, 1.0))  # in-plane only
    return np.where(solid, np.exp(-(inside - 0.5) / 1.2), 0).astype(np.float32)


def _behind(grey: np.ndarray, pore: np.ndarray, depth: float) -> np.ndarray:
    """What the beam sees through open pores: the solid behind the face, averaged with weights
    falling exponentially with depth and blurred the more the deeper (two depth bands)."""
    solid = np.where(pore, 0, grey).astype(np.float32)
    weight = (~pore).astype(np.float32)
    decay = np.float32(np.exp(-1.0 / depth))
    near_num, near_den = np.zeros_like(solid), np.zeros_like(solid)
    num, den = np.zeros(grey.shape[1:], np.float32), np.zeros(grey.shape[1:], np.float32)
    for z in range(grey.shape[0] - 1, -1, -1):  # accumulate from the back to the face
        num, den = decay * num + solid[z], decay * den + weight[z]
        near_num[z], near_den[z] = num, den
    near = near_num / np.maximum(near_den, 1e-3)
    far = ndimage.gaussian_filter(near, (0, 2.5, 2.5))
    mix = np.clip(near_den / (near_den.max() or 1), 0, 1)  # little solid close: mostly far
    return (mix * near + (1 - mix) * far).astype(np.float32)


def _curtains(active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stripes running down the rows from the lower edges of particles, slowly changing in z."""
    shape = active.shape
    lower_edge = active & ~np.roll(active, -1, axis=1)
    seeds = lower_edge.astype(np.float32) * rng.choice([-1.0, 1.0], size=(1, 1, shape[2]))
    stripes = np.zeros(shape, np.float32)
    carry = np.zeros((shape[0], shape[2]), np.float32)
    for row in range(shape[1]):  # each stripe decays over about 40 rows
        carry = 0.975 * carry + seeds[:, row, :]
        stripes[:, row, :] = carry
    stripes = ndimage.gaussian_filter(stripes, (4.0, 0.0, 0.7))
    return stripes / (stripes.std() or 1.0)


def _jitter_rows(volume: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each scan line shifted along x by its own fraction of a pixel; each slice misregistered."""
    out = np.empty_like(volume)
    for z in range(volume.shape[0]):
        dy, dx = rng.normal(0, 0.35, 2)
        plane = ndimage.shift(volume[z], (dy, dx), order=1, mode="nearest")
        rows = rng.normal(0, 0.3, volume.shape[1])
        for y, shift in enumerate(rows):
            plane[y] = np.interp(
                np.arange(volume.shape[2]) - shift, np.arange(volume.shape[2]), plane[y]
            )
        out[z] = plane
    return out


def unseen_fibsem(
    labels: np.ndarray, values: dict[str, int], seed: int = 0, infiltrated: bool = True
) -> np.ndarray:
    """uint8 FIB-SEM stack (milling along axis 0) of ``labels``; ``values`` gives the label
    value of pore, active and cbd."""
    rng = np.random.default_rng([seed, 4242])
    pore, active, cbd = (labels == values[n] for n in ("pore", "active", "cbd"))
    noise_sigma = 0.06
    grey = np.full(labels.shape, 0.18, np.float32)
    components, count = ndimage.label(active)
    brightness = np.concatenate([[0], rng.normal(0.66, 0.04, count)]).astype(np.float32)
    grey[active] = brightness[components][active]
    mottle = ndimage.gaussian_filter(rng.standard_normal(labels.shape).astype(np.float32), 0.8)
    mottle /= mottle.std() or 1.0
    grey[cbd] = 0.18 + noise_sigma * (1.0 + 0.6 * mottle[cbd])
    grey += 0.12 * _edges(active) + 0.04 * _edges(cbd)
    if not infiltrated:
        grey = np.where(pore, 0.12 + 0.6 * _behind(grey, pore, 2.5), grey)
    grey += 0.035 * _curtains(active, rng)
    kernel = np.array([0.0, 0.0, 0.75, 0.25], np.float32)  # the face and a little below it
    grey = ndimage.convolve1d(grey, kernel, axis=0, mode="nearest")
    grey = ndimage.gaussian_filter(grey, (0, 0.9, 0.9))
    rows = np.linspace(0, 1, labels.shape[1], dtype=np.float32)[None, :, None]
    flicker = rng.normal(1.0, 0.02, (labels.shape[0], 1, 1)).astype(np.float32)
    grey = grey * flicker * (1 + 0.05 * rows)
    grey = _jitter_rows(grey, rng)
    dose = 0.18 / noise_sigma**2  # Poisson counts whose sigma at the pore grey is noise_sigma
    counts = rng.poisson(np.clip(grey, 0, None) * dose).astype(np.float32) / dose
    low, high = np.percentile(counts, [0.5, 99.8])
    return np.rint(np.clip((counts - low) / (high - low), 0, 1) * 255).astype(np.uint8)
