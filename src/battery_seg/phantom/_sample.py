"""A ready-made phantom sample: image, ground truth, voxel size and phase set together."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..checks import check_memory, check_voxel_size
from ..phases import PhaseSet
from ._imaging import XCTParams, simulate_xct
from ._structure import AnodeParams, make_anode

__all__ = ["DEFAULT_VOXEL_SIZE", "Sample", "make_sample"]

DEFAULT_VOXEL_SIZE = 0.5  # µm: a typical lab / synchrotron XCT voxel for graphite anodes
_BYTES_PER_VOXEL = 32  # a lower bound of the fields, labels and image (~55 measured)


@dataclass(frozen=True, eq=False)
class Sample:
    """A synthetic tomogram with its ground truth.

    Attributes
    ----------
    image : numpy.ndarray
        uint16 X-ray CT volume (z, y, x).
    labels : numpy.ndarray
        uint8 ground-truth labels of ``phases`` (1 = pore, 2 = silicon, 3 = cbd, 4 = graphite).
    voxel_size : tuple of 3 float
        (dz, dy, dx) in ``unit``.
    unit : str
        Unit of ``voxel_size``.
    phases : PhaseSet
        The ``si-graphite`` phase set.
    """

    image: np.ndarray
    labels: np.ndarray
    voxel_size: tuple[float, float, float]
    unit: str = "µm"
    phases: PhaseSet = field(default_factory=lambda: PhaseSet.parse("si-graphite"))


def make_sample(
    shape: tuple[int, int, int] = (128, 128, 128),
    seed: int = 0,
    *,
    voxel_size: float | tuple[float, float, float] = DEFAULT_VOXEL_SIZE,
    anode: AnodeParams | None = None,
    xct: XCTParams | None = None,
) -> Sample:
    """Synthetic Si–graphite anode and its simulated X-ray CT image.

    Parameters
    ----------
    shape : tuple of 3 int
        Volume shape (z, y, x).
    seed : int
        Random seed of both the microstructure and the imaging (bit-identical per seed).
    voxel_size : float or tuple of 3 float
        Voxel size in µm, isotropic or (dz, dy, dx). Sizes in :class:`AnodeParams` are in voxels,
        so this only sets the physical scale.
    anode, xct : AnodeParams, XCTParams, optional
        Microstructure and imaging parameters (defaults when omitted).

    Returns
    -------
    Sample

    Examples
    --------
    >>> sample = make_sample((16, 32, 32), seed=2)
    >>> sample.image.dtype, sample.labels.dtype, sample.voxel_size
    (dtype('uint16'), dtype('uint8'), (0.5, 0.5, 0.5))
    """
    check_memory(
        _BYTES_PER_VOXEL * math.prod(int(n) for n in shape),
        f"making a synthetic sample of shape {tuple(shape)}",
        "Use a smaller shape.",
    )
    labels = make_anode(shape, seed=seed, params=anode)
    image = simulate_xct(labels, xct, seed=seed)
    return Sample(image=image, labels=labels, voxel_size=check_voxel_size(voxel_size))
