"""napari-battery-seg: phase segmentation and microstructure analysis of battery tomography.

The package is importable without torch or Qt; heavy modules load on first use.
"""

from __future__ import annotations

from .errors import BatterySegError
from .phases import PhaseSet

__version__ = "0.1.0"
__all__ = ["BatterySegError", "PhaseSet", "__version__"]
