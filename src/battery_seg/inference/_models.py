"""Resolve the model a job uses: a checkpoint file, the bundled default, or one in memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._bundled import BUNDLED_MODELS, DEFAULT_MODEL
from ..errors import BatterySegError
from ._config import SegmentConfig
from ._predictor import InMemoryModel, ModelFile

__all__ = ["PreparedModel", "prepare_model"]


@dataclass
class PreparedModel:
    """The model of a job: how tasks find it, its card, and the network loaded here."""

    source: ModelFile | InMemoryModel
    card: Any
    network: Any
    name: str
    sha256: str


def prepare_model(config: SegmentConfig) -> PreparedModel:
    """Load and check the model of ``config`` (raises BatterySegError for a bad file)."""
    model = config.model
    if isinstance(model, InMemoryModel):
        if config.cluster.distributed:
            raise BatterySegError(
                "A model that exists only in memory cannot be sent to dask.distributed workers; "
                "save it with battery_seg.model.save_model and pass its path."
            )
        _check_phases(config, model.card, "the model in memory")
        return PreparedModel(model, model.card, model.network, "in memory", model.sha256)
    from ..model import load_model, resolve_model_path

    path = resolve_model_path(model)
    network, card = load_model(path)
    source = ModelFile.from_path(path)
    bundled = model is None or str(model) in BUNDLED_MODELS
    name = f"'{model or DEFAULT_MODEL}' (bundled)" if bundled else str(path)
    _check_phases(config, card, name)
    return PreparedModel(source, card, network, name, source.sha256)


def _check_phases(config: SegmentConfig, card: Any, name: str) -> None:
    if config.phases is None:
        return
    from ..phases import PhaseSet

    wanted = PhaseSet.parse(config.phases)
    if wanted.names != card.phases.names:
        raise BatterySegError(
            f"The model {name} predicts the phases {card.phases.describe()}, not "
            f"{wanted.describe()}. Pick a model trained for these phases, or leave the phases "
            "empty to use the model's own."
        )
