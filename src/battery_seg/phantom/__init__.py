"""Synthetic Si–graphite anode phantom with ground truth, and an X-ray CT imaging model.

The phantom is the project's test bed and napari sample data: a calendered anode of flattened
graphite platelets (aligned in-plane, short axis along z), small silicon particles mostly on
graphite surfaces, carbon-binder domain (CBD) as bridges in particle necks and film patches, and
pore. :func:`simulate_xct` turns its labels into a uint16 tomogram where CBD is close to pore in
grey level and differs mainly in texture.

Examples
--------
>>> import numpy as np
>>> from battery_seg.phantom import make_anode, simulate_xct, XCTParams
>>> labels = make_anode((32, 64, 64), seed=0)          # 1 pore, 2 silicon, 3 cbd, 4 graphite
>>> image = simulate_xct(labels, XCTParams(), seed=0)  # uint16, same shape
>>> sample = make_sample((32, 64, 64), seed=0)         # both, with voxel size and phase set
>>> sample.phases.names
('pore', 'silicon', 'cbd', 'graphite')
"""

from ._cathode import CathodeParams, make_cathode, random_cathode_params
from ._ct import CTParams, phase_materials, random_ct_params, simulate_ct
from ._fibsem import FIBSEMParams, random_fibsem_params, simulate_fibsem
from ._imaging import XCTParams, random_xct_params, simulate_xct
from ._sample import Sample, make_sample
from ._structure import AnodeParams, make_anode

__all__ = [
    "AnodeParams",
    "CTParams",
    "CathodeParams",
    "FIBSEMParams",
    "Sample",
    "XCTParams",
    "make_anode",
    "make_cathode",
    "make_sample",
    "phase_materials",
    "random_cathode_params",
    "random_ct_params",
    "random_fibsem_params",
    "random_xct_params",
    "simulate_ct",
    "simulate_fibsem",
    "simulate_xct",
]
