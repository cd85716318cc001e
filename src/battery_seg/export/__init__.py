"""Share a model: a bioimage.io model package from a battery-seg model (imports torch lazily).

The package (bioimage.io model format 0.5) holds the weights as a PyTorch state dict with the
U-Net's source, TorchScript and ONNX; the context slices as input channels, the phases as output
channels, the training voxel size, the tiling halo, the intensity normalisation, test tensors,
a README on how the model was trained and validated, and battery-seg's own model card, so every
``--model`` / ``--init`` of battery-seg takes the package as well as the ``.pt`` file.

Examples
--------
>>> from battery_seg.export import ExportConfig, export_model
>>> config = ExportConfig("model.pt", "model.zip", authors=["Ada Lovelace"])
>>> export_model(config).path  # doctest: +SKIP
PosixPath('model.zip')
"""

from ._config import DEFAULT_LICENSE, ExportConfig
from ._export import ExportResult, export_job, export_model

__all__ = ["DEFAULT_LICENSE", "ExportConfig", "ExportResult", "export_job", "export_model"]
