"""Model checkpoints: weights plus everything needed to use them correctly.

A checkpoint is a ``torch.save`` dict of plain types (loadable with ``weights_only=True``)::

    {"format": "battery-seg-model", "format_version": 1,
     "package_version": "0.1.0", "architecture": {...UNetConfig...},
     "phases": {...PhaseSet.to_dict()...}, "context": 3,
     "normalization": {...Normalization...}, "provenance": {...}, "state_dict": {...}}

Writes are atomic (temporary file in the same folder, then ``os.replace``) so an interrupted save
never leaves a truncated model where the last good one was. Wherever a model file is read, a
bioimage.io package from ``battery-seg export`` (zip, folder or ``rdf.yaml``) works too: it
carries the same card in its YAML and the same state dict (see :mod:`._package`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .._bundled import BUNDLED_MODELS, DEFAULT_MODEL
from ..checks import check_output, check_regular, register_input
from ..errors import BatterySegError
from ..phases import PhaseSet
from ._package import is_package, read_package, truncated_zip
from .normalization import Normalization
from .unet import UNet, UNetConfig

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_MODEL",
    "ModelCard",
    "bundled_model_path",
    "card_payload",
    "default_model_path",
    "load_card",
    "load_model",
    "resolve_model_path",
    "save_model",
]

FORMAT = "battery-seg-model"
# 2: live networks (a U-Net with a multi-scale head); 3: a grey-level head blended into the
# output; plain networks still write 1, so that older versions read them
FORMAT_VERSION = 3


@dataclass(frozen=True)
class ModelCard:
    """What a model is for: phases, context, normalisation, architecture and provenance."""

    phases: PhaseSet
    context: int = 1
    architecture: UNetConfig = field(default_factory=UNetConfig)
    normalization: Normalization = field(default_factory=Normalization)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.context < 1 or self.context % 2 == 0:
            raise BatterySegError(
                f"Context must be an odd number of slices (1, 3, 5, 7), got {self.context}."
            )
        if self.architecture.in_channels != self.context:
            raise BatterySegError(
                f"Architecture has {self.architecture.in_channels} input channels but context "
                f"is {self.context}; they must match."
            )
        if self.architecture.n_phases != len(self.phases):
            raise BatterySegError(
                f"Architecture predicts {self.architecture.n_phases} phases but the phase set "
                f"has {len(self.phases)} ({', '.join(self.phases.names)})."
            )

    def build(self) -> UNet:
        """A fresh (untrained) network of this card's architecture."""
        return UNet(self.architecture)


def default_model_path() -> Path:
    """Path of the model shipped with the package (trained on synthetic Si-graphite anodes)."""
    return bundled_model_path(DEFAULT_MODEL)


def bundled_model_path(name: str) -> Path:
    """Path of the bundled model ``name`` (one of :data:`BUNDLED_MODELS`)."""
    if name not in BUNDLED_MODELS:
        raise BatterySegError(
            f"There is no bundled model {name!r}; the bundled models are "
            f"{', '.join(BUNDLED_MODELS)}, or give the path of a .pt file."
        )
    return Path(str(resources.files("battery_seg") / "models" / f"{name}.pt"))


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """The file a model argument names: ``None`` or a :data:`BUNDLED_MODELS` name is the bundled
    file (checked to be installed), anything else a path."""
    if model is None or str(model) in BUNDLED_MODELS:
        name = DEFAULT_MODEL if model is None else str(model)
        path = bundled_model_path(name)
        if not path.is_file():
            raise BatterySegError(
                f"The bundled model {name!r} is not installed ({path} is missing). Reinstall "
                "napari-battery-seg, or train a model with 'battery-seg train' or the Train "
                "widget and give its path."
            )
        return path
    return Path(model)


def _format_version(architecture: UNetConfig) -> int:
    """The oldest format that describes ``architecture``."""
    if architecture.grey_hidden:
        return FORMAT_VERSION
    return 2 if architecture.live_hidden else 1


def card_payload(card: ModelCard) -> dict[str, Any]:
    """The card as the plain types a checkpoint (or a bioimage.io package's config) stores."""
    from .. import __version__

    return {
        "format": FORMAT,
        "format_version": _format_version(card.architecture),
        "package_version": __version__,
        "architecture": card.architecture.to_dict(),
        "phases": card.phases.to_dict(),
        "context": card.context,
        "normalization": card.normalization.to_dict(),
        "provenance": card.provenance,
    }


def save_model(
    path: str | os.PathLike, model: UNet, card: ModelCard, dtype: torch.dtype | None = None
) -> Path:
    """Write ``model`` and its ``card`` to ``path`` atomically.

    ``dtype`` (e.g. ``torch.float16``) stores the floating-point weights at lower precision to
    make the file smaller; they are loaded back into a float32 network.
    """
    path = Path(path)
    payload = {
        **card_payload(card),
        "state_dict": {
            k: v.detach().cpu().to(dtype) if dtype and v.is_floating_point() else v.detach().cpu()
            for k, v in model.state_dict().items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    check_output(path, overwrite=True, kind="model")  # never an input, never another kind
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; a model is a normal file
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_model(
    path: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> tuple[UNet, ModelCard]:
    """Load a checkpoint or bioimage.io package (``None``, ``"default"`` or ``"fast"``: a
    bundled model) in eval mode.

    Raises
    ------
    BatterySegError
        If the file is missing, not a battery-seg model, corrupt or from a newer format.
    """
    path, payload, card = _read(path)
    state = _checked_state(path, card, payload.get("state_dict"))
    model = card.build()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BatterySegError(f"Model file {path} is inconsistent: {exc}") from None
    model.to(device).eval()
    return model, card


def _checked_state(path: Path, card: ModelCard, state: Any) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint, checked against its architecture before any allocation
    (the network is first built on the ``meta`` device, which holds no memory) and for NaN."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BatterySegError(
            f"Model file {path} is damaged: it has no weights (state_dict). Re-export it with "
            "'battery-seg train' or pick another file."
        )
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in card.build().state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or [k for k in found if found[k] != expected[k]]
        raise BatterySegError(
            f"Model file {path} is inconsistent: its weights do not fit its architecture "
            f"({', '.join(wrong[:3])}{', ...' if len(wrong) > 3 else ''}). Re-export it with "
            "'battery-seg train' or pick another file."
        )
    for name, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise BatterySegError(
                f"Model file {path} holds NaN or infinite weights ({name}): it was saved from a "
                "diverged training and would label everything alike. Retrain it (with a lower "
                "learning rate) or pick another model."
            )
    return state


def load_card(path: str | os.PathLike | None = None) -> ModelCard:
    """The :class:`ModelCard` of a checkpoint without building its network (for dialogs that
    only show what a model predicts); the same checks and messages as :func:`load_model`."""
    return _read(path)[2]


def _read(path: str | os.PathLike | None) -> tuple[Path, dict, ModelCard]:
    """The checked payload of a checkpoint file or bioimage.io package and its card."""
    path = resolve_model_path(path)
    register_input(path)  # a model read here is an input: never the output of a training
    check_regular(path, "model")
    if not path.exists():
        raise BatterySegError(
            f"Model file {path} does not exist. Give the path of a .pt file saved by "
            "'battery-seg train' or the Train widget, a bioimage.io package (.zip, folder or "
            "rdf.yaml) from 'battery-seg export', or the name of a bundled model "
            f"({', '.join(BUNDLED_MODELS)})."
        )
    if is_package(path):
        payload = read_package(path)
    elif path.is_dir():
        raise BatterySegError(
            f"{path} is a folder without an rdf.yaml: not a bioimage.io model package. Give a "
            ".pt model file, or a package (.zip, folder or rdf.yaml) from 'battery-seg export'."
        )
    else:
        payload = _load_checkpoint(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BatterySegError(
            f"{path} is a PyTorch file but not a battery-seg model (no '{FORMAT}' header). "
            "Models from other tools must be retrained or fine-tuned with 'battery-seg train'."
        )
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise BatterySegError(
            f"{path} was written by a newer battery-seg ({payload.get('package_version')}); "
            "upgrade napari-battery-seg to load it."
        )
    try:
        card = _card(payload)
    except (BatterySegError, KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = str(exc) if isinstance(exc, BatterySegError) else f"{type(exc).__name__}: {exc}"
        raise BatterySegError(
            f"Model file {path} is damaged or incomplete ({detail}). Re-export it with "
            "'battery-seg train' or pick another file."
        ) from None
    return path, payload, card


def _architecture(values: dict) -> UNetConfig:
    """The network description of a checkpoint, with every number in a sane range."""
    config = UNetConfig(**values)
    limits = {"in_channels": 15, "n_phases": 255, "base_channels": 512, "depth": 8}
    if config.live_hidden:  # a live network: its head's width and the U-Net's own phases
        limits.update(live_hidden=1024, feature_phases=255)
    if config.live_filters:
        limits.update(live_filters=255)
    if config.grey_hidden:
        limits.update(grey_hidden=1024)
        if not 0 < float(config.grey_weight) <= 1:
            raise ValueError(f"architecture grey_weight = {config.grey_weight!r} is not in (0, 1]")
    for name, top in limits.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ValueError(f"architecture {name} = {value!r} is not an integer in 1..{top}")
    if not 0 <= float(config.dropout) < 1:
        raise ValueError(f"architecture dropout = {config.dropout!r} is not in [0, 1)")
    return config


def _load_checkpoint(path: Path) -> Any:
    """``torch.load`` of a checkpoint file, plain types only (never runs code from the file)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "not a usable file"
        if truncated_zip(path):
            raise BatterySegError(
                f"{path} is truncated or damaged: it starts as a zip file but its end (the "
                "table of contents) is missing. Copy, download or export it again."
            ) from None
        if path.suffix.lower() == ".zip":
            raise BatterySegError(
                f"{path} is a zip file without an rdf.yaml: not a bioimage.io model package. "
                "Give a package from 'battery-seg export' or a .pt model file."
            ) from None
        raise BatterySegError(
            f"Could not read model file {path}: it is corrupt or not a PyTorch checkpoint "
            f"({type(exc).__name__}). Re-export it with 'battery-seg train' or pick another file."
        ) from None


def _card(payload: dict) -> ModelCard:
    return ModelCard(
        phases=PhaseSet.from_dict(payload["phases"]),
        context=int(payload["context"]),
        architecture=_architecture(payload["architecture"]),
        normalization=Normalization(**payload["normalization"]),
        provenance=dict(payload.get("provenance") or {}),
    )
