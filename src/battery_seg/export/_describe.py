"""The bioimage.io model description (format 0.5, built with ``bioimageio.spec``).

One input ``raw`` (batch, channel = the context slices, y, x) and one output ``probabilities``
(batch, channel = the phases, y, x, with the tiling halo); preprocessing ``scale_range`` with the
model's percentiles; weights as a PyTorch state dict (architecture source: the package's own
``unet.py``), TorchScript and ONNX, the last two converted from the first. The battery-seg model
card travels in ``config.battery_seg``, which is what battery-seg reads back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BatterySegError

if TYPE_CHECKING:
    from ..model import ModelCard

__all__ = ["Files", "describe", "import_spec"]

TAGS = [
    "x-ray-microscopy",
    "electron-microscopy",
    "2d",
    "pytorch",
    "unet",
    "semantic-segmentation",
    "napari",
    "battery",
    "electrode",
    "tomography",
    "materials-science",
]
CITE = [
    (
        "U-Net: Convolutional Networks for Biomedical Image Segmentation",
        "10.1007/978-3-319-24574-4_28",
    )
]


MIN_SPEC = "0.5.14"
"""The first bioimageio.spec whose serialisers work with pydantic 2.14 (what napari 0.9 gets);
bioimageio.core 0.11 still pins 0.5.12, so the test set-up upgrades it (scripts/setup.sh)."""


@dataclass(frozen=True)
class Files:
    """The files of a package, written before it is described (absolute paths)."""

    weights: Path
    architecture: Path
    torchscript: Path
    onnx: Path
    opset: int
    test_input: Path
    test_output: Path
    sample_input: Path
    sample_output: Path
    readme: Path
    cover: Path


def import_spec() -> Any:
    """``bioimageio.spec.model.v0_5`` when the export's dependencies are installed, or a message
    that says what to install."""
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    from packaging.version import Version

    try:
        found = version("bioimageio.spec")
    except PackageNotFoundError:
        found = None
    exporters = all(find_spec(name) is not None for name in ("onnx", "onnxscript"))
    if found is None or Version(found) < Version(MIN_SPEC) or not exporters:
        raise BatterySegError(
            f"Exporting for bioimage.io needs bioimageio.spec >= {MIN_SPEC} (found "
            f"{found or 'none'}; older ones fail with pydantic 2.14), onnx and onnxscript: "
            "pip install 'napari-battery-seg[bioimageio]'."
        )
    from bioimageio.spec.model import v0_5

    return v0_5


def describe(
    card: ModelCard,
    files: Files,
    *,
    name: str,
    description: str,
    authors: list[str],
    license: str,
    voxel_size: tuple[float, float, float] | None,
    halo: int,
    min_tile: int,
    config: dict,
) -> Any:
    """The ``ModelDescr`` of a package (validated by ``bioimageio.spec`` as it is built)."""
    import torch

    v = import_spec()
    torch_version = v.Version(torch.__version__.split("+")[0])
    state_dict = v.PytorchStateDictWeightsDescr(
        source=files.weights,
        architecture=v.ArchitectureFromFileDescr(
            source=files.architecture,
            callable=v.Identifier("UNetProbabilities"),
            kwargs=card.architecture.to_dict(),
        ),
        pytorch_version=torch_version,
    )
    return v.ModelDescr(
        name=name,
        description=description,
        authors=[v.Author(name=author) for author in authors],
        cite=[v.CiteEntry(text=text, doi=v.Doi(doi)) for text, doi in CITE],
        license=v.LicenseId(license),
        tags=TAGS,
        documentation=v.FileDescr(source=files.readme),
        covers=[v.FileDescr(source=files.cover)],
        inputs=[_input(v, card, files, voxel_size, min_tile)],
        outputs=[_output(v, card, files, voxel_size, halo)],
        weights=v.WeightsDescr(
            pytorch_state_dict=state_dict,
            torchscript=v.TorchscriptWeightsDescr(
                source=files.torchscript,
                pytorch_version=torch_version,
                parent="pytorch_state_dict",
            ),
            onnx=v.OnnxWeightsDescr(
                source=files.onnx, opset_version=files.opset, parent="pytorch_state_dict"
            ),
        ),
        config={"battery_seg": config},
    )


def _space(voxel_size: tuple | None, index: int) -> dict:
    """Scale and unit of a space axis: the training voxel size when it is known, as a whole
    number of nanometres (picometres below 0.1 µm; rounding changes it by < 0.5 %). bioimage.io
    sizes an output axis as ``size * scale / scale``, exact in floating point only for whole
    numbers (0.4 µm tiles of 48 pixels would be 48.00000000000001 pixels)."""
    if voxel_size is None:
        return {}
    micrometres = float(voxel_size[index])
    unit, per_um = ("nanometer", 1e3) if micrometres >= 0.1 else ("picometer", 1e6)
    return {"unit": unit, "scale": float(max(1, round(micrometres * per_um)))}


def _input(v: Any, card: ModelCard, files: Files, voxel_size: Any, min_tile: int) -> Any:
    reach = card.context // 2
    channels = [f"slice{k:+d}" if k else "slice" for k in range(-reach, reach + 1)]
    norm = card.normalization
    space = {"size": v.ParameterizedSize(min=min_tile, step=card.architecture.multiple)}
    return v.InputTensorDescr(
        id=v.TensorId("raw"),
        description="grey values; channels: neighbouring slices, the one to segment in the middle",
        axes=[
            v.BatchAxis(),
            v.ChannelAxis(channel_names=channels),
            *(
                v.SpaceInputAxis(id=v.AxisId(a), **space, **_space(voxel_size, i))
                for a, i in (("y", 1), ("x", 2))
            ),
        ],
        test_tensor=v.FileDescr(source=files.test_input),
        sample_tensor=v.FileDescr(source=files.sample_input),
        data=v.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=[
            v.EnsureDtypeDescr(kwargs=v.EnsureDtypeKwargs(dtype="float32")),
            v.ScaleRangeDescr(
                kwargs=v.ScaleRangeKwargs(
                    axes=[v.AxisId("channel"), v.AxisId("y"), v.AxisId("x")],
                    min_percentile=norm.low_percentile,
                    max_percentile=norm.high_percentile,
                )
            ),
        ],
    )


def _output(v: Any, card: ModelCard, files: Files, voxel_size: Any, halo: int) -> Any:
    return v.OutputTensorDescr(
        id=v.TensorId("probabilities"),
        description="per-phase probabilities (softmax); phase label = argmax + 1",
        axes=[
            v.BatchAxis(),
            v.ChannelAxis(channel_names=list(card.phases.names)),
            *(
                v.SpaceOutputAxisWithHalo(
                    id=v.AxisId(a),
                    size=v.SizeReference(tensor_id=v.TensorId("raw"), axis_id=v.AxisId(a)),
                    halo=halo,
                    **_space(voxel_size, i),
                )
                for a, i in (("y", 1), ("x", 2))
            ),
        ],
        test_tensor=v.FileDescr(source=files.test_output),
        sample_tensor=v.FileDescr(source=files.sample_output),
        data=v.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
    )
