"""The export job: a battery-seg model in, a bioimage.io model package (zip) out."""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BatterySegError
from ..jobs import Job, Progress, run_job
from ._config import ExportConfig, check_license
from ._readme import readme
from ._tensors import halo, min_tile

__all__ = ["ExportResult", "export_job", "export_model"]

_STEPS = 5


@dataclass(frozen=True)
class ExportResult:
    """The package written: its path, name on bioimage.io, phases and training voxel size."""

    path: Path
    name: str
    phases: tuple[str, ...]
    voxel_size: tuple[float, float, float] | None


def export_model(config: ExportConfig) -> ExportResult:
    """Write the bioimage.io package of ``config.model`` to ``config.output`` (blocking).

    Examples
    --------
    >>> export_model(ExportConfig("default", "default.zip"))  # doctest: +SKIP
    ExportResult(path=PosixPath('default.zip'), name='battery-seg default (...)', ...)
    """
    return run_job(export_job(config))


def export_job(config: ExportConfig) -> Job[ExportResult]:
    """Export as a job: yields :class:`~battery_seg.jobs.Progress`, returns :class:`ExportResult`.

    The package is assembled in a temporary folder, zipped next to the output under a hidden
    name and renamed into place, so a cancelled or failed export leaves nothing behind.
    """
    yield Progress(0, _STEPS, "Checking the settings and loading the model")
    check_license(config.license)
    from ..model import load_model, resolve_model_path

    source = resolve_model_path(config.model)
    output = Path(config.output).resolve()
    if source.resolve() == output or output in source.resolve().parents:
        raise BatterySegError(f"Refusing to export {source} onto itself; choose another output.")
    network, card = load_model(source)
    name = config.name or _default_name(config.model, card)
    description = config.description or _default_description(card)
    voxel_size = trained_voxel_size(card, config)
    with tempfile.TemporaryDirectory(prefix="battery-seg-export-") as folder:
        readme_text = readme(card, name, description, voxel_size, halo(card), min_tile(card))
        files = yield from _write_files(Path(folder), network, card, _sample(config), readme_text)
        yield Progress(4, _STEPS, "Describing and packaging for bioimage.io")
        _package(files, card, config, name=name, description=description, voxel_size=voxel_size)
    yield Progress(_STEPS, _STEPS, f"Wrote {output.name}")
    return ExportResult(Path(config.output), name, card.phases.names, voxel_size)


def trained_voxel_size(card: Any, config: ExportConfig) -> tuple[float, float, float] | None:
    """The voxel size (µm) of the model's training data: given, recorded by training (when all
    its volumes agree), the synthetic sample's for a bundled model, else unknown (None)."""
    if config.voxel_size is not None:
        return tuple(config.voxel_size)
    sizes = {tuple(d["voxel_size"]) for d in card.provenance.get("data", []) if d.get("voxel_size")}
    if len(sizes) == 1:
        return tuple(float(v) for v in sizes.pop())
    if config.is_bundled:  # trained on synthetic anodes only (scripts/train_default_model.py)
        from ..phantom._sample import DEFAULT_VOXEL_SIZE

        return (float(DEFAULT_VOXEL_SIZE),) * 3
    return None


def _write_files(root: Path, network: Any, card: Any, sample: Any, readme_text: str) -> Job[Any]:
    """Write weights, architecture, test tensors, cover, README, TorchScript and ONNX."""
    import tifffile
    import torch

    from ..model import UNetProbabilities, unet
    from ..model.onnx import ONNX_OPSET, export_onnx
    from . import _tensors
    from ._describe import Files

    yield Progress(1, _STEPS, "Writing the weights and test tensors")
    package_net = UNetProbabilities(**card.architecture.to_dict()).eval()
    package_net.load_state_dict(network.state_dict())
    state = network.state_dict()  # float32, even when the checkpoint stores float16
    torch.save({k: v.detach().cpu() for k, v in state.items()}, root / "weights.pt")
    shutil.copyfile(unet.__file__, root / "unet.py")
    tile = _tensors.test_tile(sample, card)
    expected = _tensors.expected_output(package_net, tile, card)
    for role, tensor in (("input", tile), ("output", expected)):
        np.save(root / f"test_{role}.npy", tensor)
        tifffile.imwrite(root / f"sample_{role}.tif", tensor[0], photometric="minisblack")
    _tensors.write_cover(tile, expected, card, root / "cover.png")
    (root / "README.md").write_text(readme_text, encoding="utf-8")
    yield Progress(2, _STEPS, "Tracing the TorchScript weights")
    _tensors.save_torchscript(
        package_net, _tensors.normalise_tile(tile, card), root / "weights_torchscript.pt"
    )
    yield Progress(3, _STEPS, "Converting to ONNX (takes a while)")
    export_onnx(package_net, root / "weights.onnx", input_name="raw", output_name="probabilities")
    return Files(
        weights=root / "weights.pt",
        architecture=root / "unet.py",
        torchscript=root / "weights_torchscript.pt",
        onnx=root / "weights.onnx",
        opset=ONNX_OPSET,
        test_input=root / "test_input.npy",
        test_output=root / "test_output.npy",
        sample_input=root / "sample_input.tif",
        sample_output=root / "sample_output.tif",
        readme=root / "README.md",
        cover=root / "cover.png",
    )


def _package(files: Any, card: Any, config: ExportConfig, **text: Any) -> None:
    """Describe the files and zip them into ``config.output`` atomically."""
    from ..io._atomic import remove, replace_path, temp_sibling
    from ..model.checkpoint import card_payload
    from ._describe import describe, import_spec

    import_spec()
    from bioimageio.spec import save_bioimageio_package
    from pydantic import ValidationError

    payload = card_payload(card)
    try:
        descr = describe(
            card,
            files,
            authors=config.author_names,
            license=config.license,
            halo=halo(card),
            min_tile=min_tile(card),
            config={**payload, "voxel_size": text["voxel_size"]},
            **text,
        )
    except ValidationError as exc:
        raise BatterySegError(_rejected(exc)) from None
    output = Path(config.output)
    partial = Path(f"{temp_sibling(output, 'partial')}.zip")
    try:
        save_bioimageio_package(descr, output_path=partial)
        replace_path(partial, output)
    finally:
        remove(partial)


def _rejected(exc: Any) -> str:
    """One line on what bioimage.io's specification rejects."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"bioimage.io's model format rejects the description ({where}: {first.get('msg')})."


def _sample(config: ExportConfig) -> Any:
    if config.sample is not None:
        return config.sample
    from ..phantom import make_sample

    return make_sample((16, 128, 128), seed=0).image


def _default_name(model: Any, card: Any) -> str:
    stem = re.sub(r"[^A-Za-z0-9_+\- ()]+", "-", Path(str(model)).stem).strip("-") or "model"
    return f"battery-seg {stem} ({'-'.join(card.phases.names)})"[:128]


def _default_description(card: Any) -> str:
    kind = "2D" if card.context == 1 else f"2.5D ({card.context} slices)"
    return (
        f"Segments X-ray or FIB-SEM tomography of battery electrodes slice by slice into the "
        f"phases {', '.join(card.phases.names)}: a {kind} U-Net trained with napari-battery-seg."
    )
