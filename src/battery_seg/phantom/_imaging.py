"""A simple X-ray CT imaging model: phase labels to a reconstructed uint16 volume.

Steps, in the order physics applies them: phase grey levels (CBD as the mean of a fine
nanoporous texture), optional propagation phase-contrast fringes, detector/reconstruction blur
(Gaussian PSF), smooth shading (beam-hardening cupping and intensity drift), optional ring
artefacts, then noise (Gaussian plus photon-like, growing with intensity). Grey levels and noise
are given as fractions of the uint16 full scale.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage

from ..errors import BatterySegError
from ._artefacts import ring_pattern, shading_field
from ._fields import smooth_noise
from ._structure import CBD, GRAPHITE, PORE, SILICON, check_seed

__all__ = ["XCTParams", "random_xct_params", "simulate_xct"]

_FULL_SCALE = 65535


@dataclass(frozen=True)
class XCTParams:
    """Parameters of the X-ray CT imaging model; grey values are fractions of uint16 full scale.

    Parameters
    ----------
    pore_grey, cbd_grey, graphite_grey, silicon_grey : float
        Mean grey level of each phase in [0, 1]. Realistic order: pore < cbd < graphite <
        silicon, with CBD close to pore (here a third of the pore -> graphite gap; the CBD texture
        and the blur make the pair overlap in grey level).
    cbd_texture : float
        Standard deviation of the fine random texture inside CBD (its nanoporosity at this
        resolution); the CBD mean stays ``cbd_grey``.
    cbd_texture_scale : float
        Correlation length of that texture in voxels.
    blur_sigma : float
        Gaussian point-spread function sigma in voxels.
    noise_sigma : float
        Standard deviation of additive Gaussian noise.
    photon_noise : float
        Photon-like noise: adds a standard deviation of ``photon_noise * sqrt(grey)``.
    shading : float
        Amplitude of the smooth low-frequency intensity variation (multiplicative drift).
    cupping : float
        Beam-hardening cupping: relative darkening of the centre of each slice.
    rings : float
        Amplitude of ring artefacts (concentric around the rotation axis, the z axis through the
        centre of each xy slice); 0 turns them off.
    ring_count : int
        Number of rings when ``rings > 0``.
    fringes : float
        Strength of phase-contrast edge fringes (dark/bright overshoot at interfaces, a
        Laplacian-of-Gaussian term); 0 turns them off.
    fringe_sigma : float
        Width in voxels of the fringes.

    Examples
    --------
    >>> XCTParams(rings=0.02, fringes=0.3).rings
    0.02
    """

    pore_grey: float = 0.20
    cbd_grey: float = 0.30
    graphite_grey: float = 0.50
    silicon_grey: float = 0.78
    cbd_texture: float = 0.04
    cbd_texture_scale: float = 0.8
    blur_sigma: float = 0.45
    noise_sigma: float = 0.015
    photon_noise: float = 0.01
    shading: float = 0.04
    cupping: float = 0.03
    rings: float = 0.0
    ring_count: int = 6
    fringes: float = 0.0
    fringe_sigma: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value) or value < 0:
                raise BatterySegError(
                    f"XCTParams.{f.name} = {value!r} is invalid: it must be a finite number >= 0."
                )
        for name in ("pore_grey", "cbd_grey", "graphite_grey", "silicon_grey"):
            if getattr(self, name) > 1:
                raise BatterySegError(
                    f"XCTParams.{name} = {getattr(self, name)} is outside [0, 1]; grey levels are "
                    "fractions of the uint16 full scale (e.g. 0.5 -> 32768)."
                )
        if self.shading >= 1 or self.cupping >= 1:
            raise BatterySegError("XCTParams.shading and .cupping must be below 1 (relative).")

    def grey_of(self, phase: int) -> float:
        """Mean grey level (fraction of full scale) of a ``si-graphite`` label value."""
        return {
            PORE: self.pore_grey,
            SILICON: self.silicon_grey,
            CBD: self.cbd_grey,
            GRAPHITE: self.graphite_grey,
        }[phase]


def simulate_xct(
    labels: np.ndarray, params: XCTParams | None = None, *, seed: int = 0
) -> np.ndarray:
    """Simulated reconstructed X-ray CT volume of a phase label volume.

    Parameters
    ----------
    labels : numpy.ndarray
        3-D labels of the ``si-graphite`` phase set (1 = pore, 2 = silicon, 3 = cbd,
        4 = graphite), e.g. from :func:`make_anode`.
    params : XCTParams, optional
        Imaging parameters; defaults to ``XCTParams()``.
    seed : int
        Random seed of the noise, texture and artefacts (bit-identical output per seed).

    Returns
    -------
    numpy.ndarray
        uint16 image of the same shape.

    Examples
    --------
    >>> from battery_seg.phantom import make_anode
    >>> image = simulate_xct(make_anode((16, 32, 32)), XCTParams(rings=0.02), seed=3)
    >>> image.dtype, image.shape
    (dtype('uint16'), (16, 32, 32))
    """
    params = params if params is not None else XCTParams()
    labels = _check_labels(labels)
    rng_texture, rng_artefacts, rng_noise = (
        np.random.default_rng(s) for s in np.random.SeedSequence([check_seed(seed), 7]).spawn(3)
    )
    lut = np.zeros(GRAPHITE + 1, dtype=np.float32)
    for phase in (PORE, SILICON, CBD, GRAPHITE):
        lut[phase] = params.grey_of(phase)
    grey = lut[labels]
    if params.cbd_texture > 0:
        cbd = labels == CBD
        texture = smooth_noise(labels.shape, params.cbd_texture_scale, rng_texture)
        grey[cbd] += np.float32(params.cbd_texture) * texture[cbd]
    image = ndimage.gaussian_filter(grey, params.blur_sigma) if params.blur_sigma > 0 else grey
    if params.fringes > 0:
        # Propagation phase contrast adds -s * sigma^2 * Laplacian(phase map), seen through the
        # same PSF: one Laplacian-of-Gaussian of the combined width.
        width = float(np.hypot(params.fringe_sigma, params.blur_sigma))
        log = ndimage.gaussian_laplace(grey, width)
        image -= np.float32(params.fringes * params.fringe_sigma**2) * log
    if params.shading > 0 or params.cupping > 0:
        image *= shading_field(labels.shape, params.shading, params.cupping, rng_artefacts)
    if params.rings > 0 and params.ring_count > 0:
        image += ring_pattern(labels.shape, params.rings, int(params.ring_count), rng_artefacts)
    image = _add_noise(image, params, rng_noise)
    return np.clip(np.rint(image * _FULL_SCALE), 0, _FULL_SCALE).astype(np.uint16)


def random_xct_params(rng: np.random.Generator) -> XCTParams:
    """Widely randomised but realistic imaging parameters (for training-data augmentation).

    Grey levels keep the order pore < cbd < graphite < silicon with CBD in the lower 12–40 % of
    the pore -> graphite gap; blur, noise, shading, rings and fringes vary over the range seen
    across lab and synchrotron scanners.

    Examples
    --------
    >>> params = random_xct_params(np.random.default_rng(1))
    >>> params.pore_grey < params.cbd_grey < params.graphite_grey < params.silicon_grey
    True
    """
    pore = rng.uniform(0.06, 0.35)
    gap = rng.uniform(0.15, 0.40)
    graphite = pore + gap
    silicon = min(0.97, graphite + gap * rng.uniform(0.5, 1.2))
    contrast = gap * rng.uniform(0.12, 0.40)
    return XCTParams(
        pore_grey=pore,
        cbd_grey=pore + contrast,
        graphite_grey=graphite,
        silicon_grey=silicon,
        cbd_texture=contrast * rng.uniform(0.3, 1.0),
        cbd_texture_scale=rng.uniform(0.4, 1.0),
        blur_sigma=rng.uniform(0.4, 1.5),
        noise_sigma=gap * rng.uniform(0.02, 0.15),
        photon_noise=rng.uniform(0.0, 0.03),
        shading=rng.uniform(0.0, 0.10),
        cupping=rng.uniform(0.0, 0.08),
        rings=gap * rng.uniform(0.02, 0.10) if rng.random() < 0.4 else 0.0,
        ring_count=int(rng.integers(2, 12)),
        fringes=rng.uniform(0.1, 0.6) if rng.random() < 0.4 else 0.0,
        fringe_sigma=rng.uniform(0.6, 1.5),
    )


def _add_noise(image: np.ndarray, params: XCTParams, rng: np.random.Generator) -> np.ndarray:
    if params.noise_sigma <= 0 and params.photon_noise <= 0:
        return image
    sigma = np.float32(params.noise_sigma)
    if params.photon_noise > 0:
        variance = params.noise_sigma**2 + params.photon_noise**2 * np.maximum(image, 0)
        sigma = np.sqrt(variance, dtype=np.float32)
    return image + sigma * rng.standard_normal(image.shape, dtype=np.float32)


def _check_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise BatterySegError(
            f"simulate_xct needs a 3-D label volume (z, y, x), got shape {labels.shape}."
        )
    if labels.dtype.kind not in "ui":
        raise BatterySegError(f"simulate_xct needs integer labels, got dtype {labels.dtype}.")
    if labels.size and (labels.min() < PORE or labels.max() > GRAPHITE):
        raise BatterySegError(
            f"simulate_xct needs si-graphite labels 1..4 (1 = pore, 2 = silicon, 3 = cbd, "
            f"4 = graphite); got values {int(labels.min())}..{int(labels.max())}. Fill "
            "unlabelled (0) voxels first, e.g. labels[labels == 0] = 1."
        )
    return labels
