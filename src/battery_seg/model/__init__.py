"""The U-Net, its checkpoints and input normalisation (imports torch)."""

from .checkpoint import (
    BUNDLED_MODELS,
    DEFAULT_MODEL,
    ModelCard,
    bundled_model_path,
    default_model_path,
    load_card,
    load_model,
    resolve_model_path,
    save_model,
)
from .normalization import IntensityRange, Normalization, estimate_intensity_range, normalize
from .unet import UNet, UNetConfig

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_MODEL",
    "IntensityRange",
    "ModelCard",
    "Normalization",
    "UNet",
    "UNetConfig",
    "bundled_model_path",
    "default_model_path",
    "estimate_intensity_range",
    "load_card",
    "load_model",
    "normalize",
    "resolve_model_path",
    "save_model",
]
