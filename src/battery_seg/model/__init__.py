"""The U-Net, its checkpoints and input normalisation (imports torch)."""

from .checkpoint import (
    DEFAULT_MODEL,
    ModelCard,
    default_model_path,
    load_card,
    load_model,
    save_model,
)
from .normalization import IntensityRange, Normalization, estimate_intensity_range, normalize
from .unet import UNet, UNetConfig

__all__ = [
    "DEFAULT_MODEL",
    "IntensityRange",
    "ModelCard",
    "Normalization",
    "UNet",
    "UNetConfig",
    "default_model_path",
    "estimate_intensity_range",
    "load_card",
    "load_model",
    "normalize",
    "save_model",
]
