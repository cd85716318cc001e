"""Physics-based X-ray CT: labels to attenuation, projections, photon noise, reconstruction.

A tomogram is made the way a scanner makes one, so that its noise and artefacts have the
structure of real reconstructions rather than of Gaussian noise on grey levels:

1. each phase becomes a material (:mod:`._materials`): its attenuation at the beam energy follows
   from composition and density; CBD is carbon black + PVDF with sub-resolution porosity filled by
   what fills the pores (air, or epoxy in FIB-SEM-prepared or embedded samples);
2. every slice across the rotation axis is a parallel-beam sinogram (scikit-image ``radon``) of
   a cylindrical sample (the field of view continued by mirroring, as a pillar or a larger
   electrode continues beyond it);
3. beam hardening, propagation phase contrast (edge fringes from the Laplacian of the projected
   density), Poisson photon noise at the chosen dose, scintillator blur (which correlates the
   noise across detector pixels), electronic read noise, residual pixel gains after flat-field
   correction (ring artefacts), beam-intensity drift and photon starvation;
4. filtered back-projection (scikit-image ``iradon``, one of its filters), a rotation-centre
   error, and storage as 8- or 16-bit grey values over a window of the histogram.

The angle-correlated streaks, rings, noise texture and contrast this produces depend on the
dose, the energy and the materials, not on grey levels set by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage

from ..errors import BatterySegError
from ._fields import smooth_noise
from ._materials import MATERIALS, linear_attenuation

__all__ = ["CTParams", "random_ct_params", "simulate_ct"]

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")
ACTIVE = ("nmc111", "nmc622", "nmc811", "lfp", "graphite", "silicon")
#: What each phase of a preset is made of (``"cbd"``: the porous binder, ``"pore"``: the fill).
MATERIAL_OF_PHASE = {
    "pore": "pore",
    "cbd": "cbd",
    "active": "active",
    "nmc": "active",
    "graphite": "graphite",
    "silicon": "silicon",
}


@dataclass(frozen=True)
class CTParams:
    """Scan and sample parameters of :func:`simulate_ct`.

    Parameters
    ----------
    energy_kev : float
        Effective photon energy (monochromatic equivalent), 5–80 keV.
    active_material : str
        Material of the ``active`` phase (a key of ``MATERIALS``).
    pore_fill : str
        ``"air"`` or ``"epoxy"``: what fills the pores and the CBD's own porosity.
    cbd_porosity : float
        Sub-resolution porosity of the CBD, in [0, 0.9].
    cbd_carbon_share : float
        Volume share of carbon black in the CBD's solid (the rest PVDF), in [0, 1].
    transmission : float
        Beam transmission through the sample's diameter (sets the physical scale), in (0, 1).
    photons : float
        Incident photons per detector pixel and projection (the dose).
    angles : float
        Projections as a multiple of ``pi / 2 * width`` (1 is fully sampled).
    detector_blur : float
        Gaussian sigma (pixels) of the scintillator and detector point-spread function.
    read_noise : float
        Electronic noise in photon equivalents.
    gain_error : float
        Relative residual per-pixel gain after flat-field correction (ring artefacts).
    drift : float
        Relative beam-intensity drift over the scan that flat-fielding leaves.
    phase_contrast : float
        Strength (pixels²) of propagation phase contrast; 0 for absorption only.
    beam_hardening : float
        Relative loss of attenuation along the longest path, in [0, 0.5).
    centre_offset : float
        Error of the rotation centre in pixels.
    filter : str
        Reconstruction filter, one of ``FILTERS``.
    bits : int
        8 or 16: how the reconstruction is stored.
    rotation_axis : int
        Volume axis the sample rotates about (0 = z, 1 = y).
    """

    energy_kev: float = 20.0
    active_material: str = "nmc622"
    pore_fill: str = "air"
    cbd_porosity: float = 0.5
    cbd_carbon_share: float = 0.4
    transmission: float = 0.3
    photons: float = 5000.0
    angles: float = 1.0
    detector_blur: float = 0.6
    read_noise: float = 2.0
    gain_error: float = 0.003
    drift: float = 0.005
    phase_contrast: float = 0.0
    beam_hardening: float = 0.0
    centre_offset: float = 0.0
    filter: str = "ramp"
    bits: int = 16
    rotation_axis: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not np.isfinite(value):
                raise BatterySegError(f"CTParams.{f.name} = {value!r} must be a finite number.")
        checks = {
            "energy_kev": 5 <= self.energy_kev <= 80,
            "active_material": self.active_material in MATERIALS,
            "pore_fill": self.pore_fill in ("air", "epoxy"),
            "cbd_porosity": 0 <= self.cbd_porosity <= 0.9,
            "cbd_carbon_share": 0 <= self.cbd_carbon_share <= 1,
            "transmission": 0 < self.transmission < 1,
            "photons": self.photons >= 1,
            "angles": 0.05 <= self.angles <= 4,
            "beam_hardening": 0 <= self.beam_hardening < 0.5,
            "filter": self.filter in FILTERS,
            "bits": self.bits in (8, 16),
            "rotation_axis": self.rotation_axis in (0, 1),
        }
        for name in ("detector_blur", "read_noise", "gain_error", "drift", "phase_contrast"):
            checks[name] = getattr(self, name) >= 0
        for name, ok in checks.items():
            if not ok:
                raise BatterySegError(
                    f"CTParams.{name} = {getattr(self, name)!r} is out of range; see "
                    "help(battery_seg.phantom.CTParams) for each parameter's range."
                )


def random_ct_params(rng: np.random.Generator, *, active: str | None = None) -> CTParams:
    """Widely randomised scans: lab, synchrotron and nano-CT energies, doses and artefacts.

    >>> params = random_ct_params(np.random.default_rng(0), active="nmc811")
    >>> params.active_material
    'nmc811'
    """
    energy = float(np.exp(rng.uniform(np.log(5.4), np.log(60.0))))
    return CTParams(
        energy_kev=energy,
        active_material=active or str(rng.choice(ACTIVE[:4])),
        pore_fill="epoxy" if rng.random() < 0.35 else "air",
        cbd_porosity=rng.uniform(0.25, 0.75),
        cbd_carbon_share=rng.uniform(0.2, 0.7),
        transmission=float(np.exp(rng.uniform(np.log(0.04), np.log(0.8)))),
        photons=float(np.exp(rng.uniform(np.log(150), np.log(30000)))),
        angles=rng.uniform(0.35, 1.6),
        detector_blur=rng.uniform(0.3, 1.6),
        read_noise=rng.uniform(0.0, 6.0),
        gain_error=rng.uniform(0.0, 0.02) if rng.random() < 0.7 else 0.0,
        drift=rng.uniform(0.0, 0.02),
        phase_contrast=rng.uniform(0.2, 3.0) if rng.random() < 0.4 else 0.0,
        beam_hardening=rng.uniform(0.0, 0.25) if energy > 12 else 0.0,
        centre_offset=rng.normal(0.0, 0.25),
        filter=str(rng.choice(FILTERS)),
        bits=8 if rng.random() < 0.3 else 16,
        rotation_axis=0 if rng.random() < 0.7 else 1,
    )


def attenuation_map(
    labels: np.ndarray, materials: dict[int, str], params: CTParams, rng: np.random.Generator
) -> np.ndarray:
    """Linear attenuation (1/cm) of every voxel: each label value's material at the energy.

    ``materials`` maps a label value to ``"pore"``, ``"cbd"``, ``"active"`` or a material name.
    """
    energy = params.energy_kev
    fill = linear_attenuation(params.pore_fill, energy)
    binder = params.cbd_carbon_share * linear_attenuation("carbon_black", energy) + (
        1 - params.cbd_carbon_share
    ) * linear_attenuation("pvdf", energy)
    mu = np.zeros(labels.shape, np.float32)
    for value, material in materials.items():
        where = labels == value
        if not where.any():
            continue
        if material == "pore":
            mu[where] = fill
        elif material == "cbd":
            # porosity varies within the CBD (denser and looser regions of the binder)
            local = params.cbd_porosity + 0.12 * smooth_noise(labels.shape, 1.5, rng)[where]
            porosity = np.clip(local, 0.0, 0.95)
            mu[where] = (1 - porosity) * binder + porosity * fill
        else:
            name = params.active_material if material == "active" else material
            grains = 1 + 0.02 * smooth_noise(labels.shape, 1.2, rng)[where]  # polycrystal
            mu[where] = linear_attenuation(name, energy) * grains
    return mu


def simulate_ct(
    labels: np.ndarray,
    materials: dict[int, str],
    params: CTParams | None = None,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Reconstructed CT volume (uint16, or uint8 for ``bits=8``) of a label volume.

    Parameters
    ----------
    labels : numpy.ndarray
        3-D integer labels.
    materials : dict
        Label value -> ``"pore"``, ``"cbd"``, ``"active"`` or a material of ``MATERIALS``; see
        :func:`phase_materials` for a phase set's.
    params : CTParams, optional
    seed : int

    Examples
    --------
    >>> from battery_seg.phantom import make_cathode
    >>> labels = make_cathode((8, 48, 48), seed=0)
    >>> image = simulate_ct(labels, {1: "pore", 2: "active", 3: "cbd"}, seed=0)
    >>> image.shape, image.dtype
    ((8, 48, 48), dtype('uint16'))
    """
    from skimage.transform import iradon, radon

    params = params if params is not None else CTParams()
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise BatterySegError(f"simulate_ct needs a 3-D label volume, got shape {labels.shape}.")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 11]))
    mu = attenuation_map(labels, materials, params, rng)
    if params.rotation_axis == 1:
        mu = mu.transpose(1, 0, 2)
    _, height, width = mu.shape
    diameter = int(np.ceil(np.hypot(height, width))) + 3
    diameter += 1 - diameter % 2
    # physical scale: the mean path through the sample attenuates to the wanted transmission
    scale = -np.log(params.transmission) / max(float(mu.mean()) * diameter, 1e-12)
    mu *= np.float32(scale)
    count = int(np.clip(params.angles * np.pi / 2 * diameter, 24, 1440))
    theta = np.linspace(0.0, 180.0, count, endpoint=False)
    disc = _disc(diameter)
    sinograms = np.stack(
        [radon(_cylinder(plane, diameter) * disc, theta, circle=True) for plane in mu]
    ).astype(np.float32)  # (slices, detector pixels, angles)
    measured = _detect(sinograms, params, rng)
    if params.centre_offset:
        measured = ndimage.shift(measured, (0, params.centre_offset, 0), order=1, mode="nearest")
    top, left = (diameter - height) // 2, (diameter - width) // 2
    recon = np.stack(
        [
            iradon(s, theta, circle=True, filter_name=params.filter)[
                top : top + height, left : left + width
            ]
            for s in measured
        ]
    ).astype(np.float32)
    if params.rotation_axis == 1:
        recon = recon.transpose(1, 0, 2)
    return _store(recon, params.bits, rng)


def phase_materials(names) -> dict[int, str]:
    """Label value (1..K) -> material of each phase name (``pore``, ``cbd``, ``active``, ...)."""
    unknown = [n for n in names if n not in MATERIAL_OF_PHASE]
    if unknown:
        raise BatterySegError(
            f"simulate_ct knows no material for phase(s) {unknown}; known phases: "
            f"{', '.join(MATERIAL_OF_PHASE)}."
        )
    return {value: MATERIAL_OF_PHASE[n] for value, n in enumerate(names, start=1)}


def _detect(sinograms: np.ndarray, params: CTParams, rng: np.random.Generator) -> np.ndarray:
    """Line integrals -> measured, flat-field-corrected line integrals (noise and artefacts)."""
    path = sinograms
    if params.beam_hardening > 0:
        longest = max(float(path.max()), 1e-6)
        path = path * (1 - params.beam_hardening * path / longest)
    intensity = np.exp(-path)
    if params.phase_contrast > 0:
        # the Laplacian of the projected density over the detector plane (slices x pixels);
        # density follows attenuation in a sample of one dominant material (Paganin)
        curvature = ndimage.correlate1d(sinograms, [1.0, -2.0, 1.0], axis=0) + (
            ndimage.correlate1d(sinograms, [1.0, -2.0, 1.0], axis=1)
        )
        intensity = intensity * np.clip(1 + params.phase_contrast * curvature, 0.05, None)
    slices, pixels, angles = sinograms.shape
    profile = 1 + 0.1 * _smooth_1d(pixels, rng)  # beam profile across the detector
    drift = 1 + params.drift * _smooth_1d(angles, rng)  # beam intensity over the scan
    expected = params.photons * intensity * profile[None, :, None] * drift[None, None, :]
    counts = rng.poisson(expected).astype(np.float32)
    if params.detector_blur > 0:
        counts = ndimage.gaussian_filter(counts, (params.detector_blur, params.detector_blur, 0))
    if params.read_noise > 0:
        counts += np.float32(params.read_noise) * rng.standard_normal(counts.shape, np.float32)
    gains = 1 + params.gain_error * rng.standard_normal((slices, pixels, 1)).astype(np.float32)
    flat = params.photons * profile[None, :, None] * gains
    ratio = np.maximum(counts / flat, 0.25 / params.photons)  # photon starvation floor
    return -np.log(ratio)


def _smooth_1d(length: int, rng: np.random.Generator) -> np.ndarray:
    t = np.linspace(0, 1, length)
    wave = sum(rng.normal(0, 1 / k) * np.cos(np.pi * k * t + rng.uniform(0, 6.3)) for k in (1, 2))
    peak = float(np.abs(wave).max()) or 1.0
    return (wave / peak).astype(np.float32)


def _disc(diameter: int) -> np.ndarray:
    r = np.arange(diameter) - (diameter - 1) / 2
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= ((diameter - 1) / 2) ** 2).astype(np.float32)


def _cylinder(plane: np.ndarray, diameter: int) -> np.ndarray:
    """The slice in the middle of a ``diameter`` square, continued outwards by mirroring."""
    height, width = plane.shape
    top, left = (diameter - height) // 2, (diameter - width) // 2
    pads = ((top, diameter - height - top), (left, diameter - width - left))
    return np.pad(plane, pads, mode="symmetric")


def _store(recon: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Grey values over a window of the histogram, as a scanner's export writes them."""
    low, high = np.percentile(recon, [rng.uniform(0.0, 1.0), rng.uniform(99.0, 100.0)])
    span = max(float(high - low), 1e-6)
    low -= span * rng.uniform(0.0, 0.15)
    high += span * rng.uniform(0.0, 0.15)
    top = 255 if bits == 8 else 65535
    scaled = np.clip((recon - low) / (high - low), 0, 1) * top
    return np.rint(scaled).astype(np.uint8 if bits == 8 else np.uint16)
