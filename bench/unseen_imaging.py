"""An imaging model the training never sees: held-out X-ray CT for judging the bundled models.

Written independently of ``battery_seg.phantom`` (and never imported by it or by any training
script), so a gain measured on it is not a gain on the training simulator. It differs from
every imaging model the package trains on in how each effect is made:

- grey levels per phase with a CBD-pore contrast of about one noise sigma, and a brightness of
  its own for every active particle (particles differ in density and state of charge);
- a point-spread function with a long exponential tail (scintillator glow) and a sharper core
  along z than in-plane;
- noise shaped in Fourier space like filtered back-projection noise (power growing with spatial
  frequency, correlated in-plane), not Poisson counts through a reconstruction;
- half-ring arcs (not full rings), a few streaks along random lines through the brightest
  particles, a slow grey-level drift along z and an off-centre cupping;
- stored as 16-bit over a clipped window.

>>> import numpy as np
>>> labels = np.ones((8, 32, 32), np.uint8); labels[:, 8:20, 8:20] = 2
>>> unseen_ct(labels, {"pore": 1, "active": 2, "cbd": 3}).dtype
dtype('uint16')
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _psf_blur(volume: np.ndarray) -> np.ndarray:
    core = ndimage.gaussian_filter(volume, (0.6, 1.1, 1.1))
    tail = ndimage.uniform_filter(ndimage.uniform_filter(volume, (1, 9, 9)), (1, 9, 9))
    return 0.85 * core + 0.15 * tail


def _fbp_like_noise(shape, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(shape).astype(np.float32)
    spectrum = np.fft.rfft2(white)
    ky = np.fft.fftfreq(shape[1])[:, None]
    kx = np.fft.rfftfreq(shape[2])[None, :]
    k = np.sqrt(ky**2 + kx**2)
    ramp = np.sqrt(k) * np.exp(-((k / 0.35) ** 2))  # ramp filter apodised by the detector
    noise = np.fft.irfft2(spectrum * ramp, s=shape[1:]).astype(np.float32)
    noise = ndimage.gaussian_filter1d(noise, 0.7, axis=0)  # slices share detector rows
    return noise / noise.std()


def _particle_brightness(active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    components, count = ndimage.label(active)
    factors = np.concatenate([[0.0], rng.normal(1.0, 0.07, count)]).astype(np.float32)
    return factors[components]


def _arcs_and_streaks(shape, bright: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    _, h, w = shape
    y, x = np.mgrid[:h, :w].astype(np.float32)
    cy, cx = h / 2 + rng.normal(0, 3), w / 2 + rng.normal(0, 3)
    radius, angle = np.hypot(y - cy, x - cx), np.arctan2(y - cy, x - cx)
    extra = np.zeros(shape, np.float32)
    for _ in range(5):  # half-ring arcs of a bad detector column
        r0, a0 = rng.uniform(5, min(h, w) / 2), rng.uniform(-np.pi, np.pi)
        arc = np.exp(-((radius - r0) ** 2) / 1.2) * (np.cos(angle - a0) > 0)
        extra += rng.choice([-1.0, 1.0]) * arc.astype(np.float32)
    for z in range(shape[0]):  # streaks through the brightest voxels
        ys, xs = np.nonzero(bright[z])
        for _ in range(2 if ys.size else 0):
            i = rng.integers(ys.size)
            theta = rng.uniform(0, np.pi)
            distance = np.abs((y - ys[i]) * np.cos(theta) - (x - xs[i]) * np.sin(theta))
            extra[z] += rng.choice([-0.5, 0.5]) * np.exp(-distance / 0.8)
    return extra


def unseen_ct(labels: np.ndarray, values: dict[str, int], seed: int = 0) -> np.ndarray:
    """uint16 tomogram of ``labels``; ``values`` gives the label value of pore, active, cbd."""
    rng = np.random.default_rng([seed, 2026])
    _pore, active, cbd = (labels == values[n] for n in ("pore", "active", "cbd"))
    noise_sigma = 0.045
    grey = np.full(labels.shape, 0.22, np.float32)
    grey[cbd] = 0.22 + 1.0 * noise_sigma  # CBD about one noise sigma above pore
    grey[active] = 0.62 * _particle_brightness(active, rng)[active]
    image = _psf_blur(grey)
    z = np.linspace(-1, 1, labels.shape[0], dtype=np.float32)[:, None, None]
    h, w = labels.shape[1:]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    off = ((yy - 0.4 * h) ** 2 + (xx - 0.6 * w) ** 2) / (0.5 * (h**2 + w**2))
    image *= (1 + 0.03 * z) * (1 - 0.06 * (1 - off))[None]  # drift along z, cupping
    image += 0.02 * _arcs_and_streaks(labels.shape, image > np.percentile(image, 99.5), rng)
    image += noise_sigma * _fbp_like_noise(labels.shape, rng)
    low, high = np.percentile(image, [0.2, 99.9])
    scaled = np.clip((image - low) / (high - low), 0, 1)
    return np.rint(scaled * 60000 + 2000).astype(np.uint16)
