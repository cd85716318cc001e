"""The U-Net, its checkpoints (or bioimage.io packages) and input normalisation (imports torch)."""

from ._package import is_package, model_bytes, model_sha256
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
from .unet import MultiScaleHead, UNet, UNetConfig, UNetProbabilities

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_MODEL",
    "IntensityRange",
    "ModelCard",
    "MultiScaleHead",
    "Normalization",
    "UNet",
    "UNetConfig",
    "UNetProbabilities",
    "bundled_model_path",
    "default_model_path",
    "estimate_intensity_range",
    "is_package",
    "load_card",
    "load_model",
    "model_bytes",
    "model_sha256",
    "normalize",
    "resolve_model_path",
    "save_model",
]
