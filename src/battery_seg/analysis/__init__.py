"""Phase analysis: volume fractions, profiles, surface areas, connectivity, tortuosity.

Everything battery researchers publish about a segmented electrode, from a label volume (numpy,
dask or zarr, values of a :class:`~battery_seg.phases.PhaseSet`, 0 = unlabelled):

* :func:`volume_fractions` and :func:`volume_fraction_profiles` count chunk by chunk through dask,
  so volumes larger than memory work.
* :func:`surface_areas` (2x2x2 configurations corrected by smoothed normals) streams through
  slabs.
* :func:`through_mask` and :func:`tortuosity` (TauFactor) need the mask in memory; the time and
  memory of a solve are estimated first (:func:`estimate_tortuosity`).
* :func:`size_distribution` (local thickness), :func:`particles` (watershed),
  :func:`representativity` (ImageRep), :func:`multiphase_tortuosity` (porous CBD, electronic)
  need the mask in memory; :func:`surface_coverage` comes from the streamed surface areas;
  :func:`cell_parameters` turns a result into PyBaMM parameters and a BPX fragment.
* :func:`compare` scores a segmentation against a reference (per-phase IoU and Dice, confusion,
  fraction and connectivity differences), chunk by chunk.
* :func:`analyse` / :func:`analyse_job` run everything an :class:`AnalysisConfig` asks for and
  return an :class:`AnalysisResult` (``to_dict``, ``to_json``, ``to_csv``, ``format_table``).

Importing this package loads neither torch nor Qt; TauFactor (torch) loads on the first solve.

Examples
--------
>>> import numpy as np
>>> from battery_seg.analysis import AnalysisConfig, analyse
>>> labels = np.ones((8, 8, 8), dtype=np.uint8)
>>> labels[:, :, 4:] = 2
>>> config = AnalysisConfig("pore,solid", voxel_size=(0.5, 0.5, 0.5), voxel_size_source="user")
>>> analyse(labels, config).to_dict()["phases"]["pore"]["through_fraction"]
{'z': 1.0}
"""

from __future__ import annotations

from ._cellmodel import cell_parameters, write_cell_parameters
from ._compare import Comparison, compare, compare_job
from ._config import AXES, AnalysisConfig, Network, SolverOptions, default_networks
from ._connectivity import Clusters, Connectivity
from ._coverage import active_area_density, surface_coverage
from ._estimate import TortuosityEstimate, estimate_tortuosity
from ._export import save_mask
from ._fractions import PhaseCounts, count_phases_job, volume_fraction_profiles, volume_fractions
from ._masks import encode_labels, through_mask
from ._metrics import Metrics
from ._particles import ParticleStats, particles
from ._report import analyse, analyse_job
from ._representativity import Representativity, representativity
from ._result import CSV_COLUMNS, AnalysisResult, convention_text
from ._sizes import SizeDistribution, size_distribution
from ._surface import SurfaceAreas, surface_areas, surface_areas_job
from ._tortuosity import TortuosityResult, tortuosity, tortuosity_job
from ._transport import MultiphaseResult, multiphase_tortuosity

__all__ = [
    "AXES",
    "CSV_COLUMNS",
    "AnalysisConfig",
    "AnalysisResult",
    "Clusters",
    "Comparison",
    "Connectivity",
    "Metrics",
    "MultiphaseResult",
    "Network",
    "ParticleStats",
    "PhaseCounts",
    "Representativity",
    "SizeDistribution",
    "SolverOptions",
    "SurfaceAreas",
    "TortuosityEstimate",
    "TortuosityResult",
    "active_area_density",
    "analyse",
    "analyse_job",
    "cell_parameters",
    "compare",
    "compare_job",
    "convention_text",
    "count_phases_job",
    "default_networks",
    "encode_labels",
    "estimate_tortuosity",
    "multiphase_tortuosity",
    "particles",
    "representativity",
    "save_mask",
    "size_distribution",
    "surface_areas",
    "surface_areas_job",
    "surface_coverage",
    "through_mask",
    "tortuosity",
    "tortuosity_job",
    "volume_fraction_profiles",
    "volume_fractions",
    "write_cell_parameters",
]
