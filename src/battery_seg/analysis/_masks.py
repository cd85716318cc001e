"""Tortuosity-ready masks: one phase (or a union of phases) as 0/1 uint8, transport axis first.

The output follows TauFactor's conventions: 1 = conducting, 0 = not, transport along axis 0 of
the array. Reducing a mask to its through-connected clusters removes voxels that carry no steady
flux; keeping the front-connected clusters keeps the dead ends that still work in an electrode.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import BatterySegError
from ..phases import PhaseSet
from ._config import axis_index
from ._connectivity import Clusters
from ._fractions import as_dask, encoded_view, unknown_values_message

__all__ = ["encode_labels", "phase_mask", "through_mask", "transport_axis_first"]


def encode_labels(labels, phases: PhaseSet | str | None) -> np.ndarray:
    """Labels in memory as phase indices 1..K (0 = unlabelled), uint8.

    Values outside the phase set raise a :class:`BatterySegError` naming them.
    """
    phases = PhaseSet.parse(phases)
    encoded = np.asarray(encoded_view(labels, phases).compute())
    if (encoded == len(phases) + 1).any():
        raise BatterySegError(unknown_values_message(labels, phases))
    return encoded


def phase_mask(encoded: np.ndarray, phases: PhaseSet, phase: str | Sequence[str]) -> np.ndarray:
    """Boolean mask of one phase name or a union of names, from encoded labels (1..K)."""
    names = (phase,) if isinstance(phase, str) else tuple(phase)
    table = np.zeros(len(phases) + 2, dtype=bool)
    for name in names:
        table[phases.value_of(name)] = True
    return table[encoded]


def transport_axis_first(array: np.ndarray, axis: int) -> np.ndarray:
    """C-contiguous copy of ``array`` with ``axis`` moved to the front (other axes in order)."""
    return np.ascontiguousarray(np.moveaxis(array, axis, 0))


def through_mask(
    labels,
    phase: str | int | Sequence[str],
    axis: str | int = "z",
    front_connected: bool = False,
    *,
    phases: PhaseSet | str | None = None,
    front_face: str = "low",
) -> np.ndarray:
    """0/1 uint8 mask of the clusters of ``phase`` that connect the faces along ``axis``.

    Parameters
    ----------
    labels : numpy, dask or zarr array (Z, Y, X)
        Label volume; loaded into memory (1 byte per voxel plus 4 for the cluster labels).
    phase : str, int or sequence of str
        A phase name (needs ``phases``), a raw label value, or several names for a network.
    axis : {"z", "y", "x"} or int
        Transport axis; it becomes axis 0 of the result (TauFactor's flux direction).
    front_connected : bool
        Keep every cluster touching the front face (dead ends included) instead of only the
        through-connected ones.
    phases : PhaseSet or str, optional
        Phase set that names the values (e.g. ``"pore=0,nmc=85,cbd=170"``).
    front_face : {"low", "high"}
        Which face along ``axis`` is the front (separator side).

    Returns
    -------
    numpy.ndarray of uint8
        1 where the kept clusters are, 0 elsewhere, with the transport axis first.

    Examples
    --------
    >>> labels = np.array([[[1, 2, 1]], [[1, 2, 2]], [[1, 2, 2]]], dtype=np.uint8)  # (3, 1, 3)
    >>> through_mask(labels, "pore", "z", phases="pore,solid")[:, 0, :].tolist()
    [[1, 0, 0], [1, 0, 0], [1, 0, 0]]
    >>> through_mask(labels, "pore", "z", True, phases="pore,solid")[0, 0].tolist()
    [1, 0, 1]
    """
    index = axis_index(axis)
    if isinstance(phase, (int, np.integer)) and not isinstance(phase, bool):
        data = as_dask(labels)
        mask = np.asarray((data == int(phase)).compute())
    else:
        if phases is None:
            raise BatterySegError(
                f"To select phase {phase!r} by name, give the phase set (phases='pore,active,cbd' "
                "or 'pore=0,nmc=85,cbd=170'), or pass the label value as an integer."
            )
        phases = PhaseSet.parse(phases)
        mask = phase_mask(encode_labels(labels, phases), phases, phase)
    if mask.ndim != 3:
        raise BatterySegError(f"Labels must be a 3D volume (Z, Y, X), got shape {mask.shape}.")
    kept = Clusters(mask).keep(index, front_connected=front_connected, front_face=front_face)
    return transport_axis_first(kept.astype(np.uint8), index)
