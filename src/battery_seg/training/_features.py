"""The live classifier's feature bank: a trained U-Net's own activations, one slice at a time.

For a slice (axis 0, with its context neighbours, normalised as inference normalises the whole
image) the bank keeps the decoder's output at every scale, at that scale's resolution, and the
U-Net's logits (:meth:`~battery_seg.model.UNet.features`). Keeping the coarse scales coarse is
what makes the cache small (about 1.7 MB per 128² slice of the default model, 110 MB per
1024² slice) and a live update cheap: :class:`~battery_seg.model.MultiScaleHead` upsamples its
projections, never the features. Slices are computed when first asked for and kept in a
least-recently-used cache bounded in bytes; an image's entries go when the image is
garbage-collected.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.nn import functional

from ..model import IntensityRange, ModelCard, UNet, estimate_intensity_range, normalize
from ..model.unet import FilterFeatures, filter_count
from ._samples import mirror_index

__all__ = ["FeatureBank", "SliceFeatures"]


class SliceFeatures(NamedTuple):
    """The features of one slice: ``scales`` (coarsest first, each ``(1, C, h, w)``), the
    ``filters`` (:class:`~battery_seg.model.unet.FilterFeatures`; ``None`` until asked for) and
    ``logits`` ``(1, K, H', W')`` of the slice padded to ``(H', W')``; ``shape`` is ``(H, W)``."""

    scales: list[torch.Tensor]
    filters: torch.Tensor | None
    logits: torch.Tensor
    shape: tuple[int, int]

    @property
    def maps(self) -> list[torch.Tensor]:
        """Every block in the order of :attr:`FeatureBank.feature_groups` (with filters)."""
        return [*self.scales, self.filters, self.logits]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.maps if t is not None)


class FeatureBank:
    """Features of a base network (a plain, trained U-Net) on the slices of images, cached.

    Parameters
    ----------
    network, card
        The base U-Net and its card (:func:`~battery_seg.model.load_model`).
    max_bytes
        Cache size; the least recently used slices go first. A slice is always kept while used.
    name
        The base network's name or file (for the live model's provenance).
    """

    def __init__(
        self, network: UNet, card: ModelCard, max_bytes: int = 1 << 30, name: str = ""
    ) -> None:
        self.network, self.card, self.name = network.eval(), card, name
        self.max_bytes = int(max_bytes)
        self._cache: OrderedDict[tuple[int, int], SliceFeatures] = OrderedDict()
        self._intensity: dict[int, IntensityRange] = {}
        self._filters = FilterFeatures()

    @property
    def feature_groups(self) -> list[int]:
        """Channels per pixel in blocks: the decoder's every scale (coarsest first), the filter
        features, the logits."""
        architecture = self.card.architecture
        return [*architecture.decoder_widths, filter_count(), architecture.n_phases]

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self._cache.values())

    def cached(self, image: Any, index: int) -> bool:
        return (id(image), int(index)) in self._cache

    def intensity(self, image: Any) -> IntensityRange:
        """The image's grey-value range, estimated once, as :func:`~battery_seg.inference.segment`
        estimates it (so the live view and "Apply to volume" see the same input)."""
        key = id(image)
        if key not in self._intensity:
            self._intensity[key] = estimate_intensity_range(image, self.card.normalization)
            weakref.finalize(image, self.forget, key)
        return self._intensity[key]

    def forget(self, key: int) -> None:
        """Drop everything about the image whose ``id`` is ``key``."""
        self._intensity.pop(key, None)
        for cached in [k for k in self._cache if k[0] == key]:
            del self._cache[cached]

    def slice(self, image: Any, index: int, filters: bool = False) -> SliceFeatures:
        """The features of slice ``index`` (axis 0; a 2D image has slice 0 only), with the
        filter features when ``filters`` (computed the first time they are asked for: a head on
        the network's features never needs them)."""
        key = (id(image), int(index))
        features = self._cache.get(key)
        if features is not None:
            self._cache.move_to_end(key)
        if features is None or (filters and features.filters is None):
            x, shape = self._input(image, int(index))
            with torch.inference_mode():
                if features is None:
                    scales, logits = self.network.features(x)
                    features = SliceFeatures(
                        [s.float() for s in scales], None, logits.float(), shape
                    )
                if filters and features.filters is None:
                    features = features._replace(filters=self._filters.to(x.device)(x).float())
        self._cache[key] = features
        while self.nbytes > self.max_bytes and len(self._cache) > 1:
            self._cache.popitem(last=False)
        return features

    def _input(self, image: Any, index: int) -> tuple[torch.Tensor, tuple[int, int]]:
        """The network's input for slice ``index`` (normalised, padded, on its device) and the
        slice's own ``(H, W)``."""
        volume = image[None] if image.ndim == 2 else image
        radius = self.card.context // 2
        around = mirror_index(np.arange(index - radius, index + radius + 1), volume.shape[0])
        planes = np.stack([np.asarray(volume[int(i)]) for i in around])
        x = torch.from_numpy(normalize(planes, self.intensity(image)))[None]
        height, width = planes.shape[-2:]
        multiple = self.card.architecture.multiple
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h or pad_w:
            mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "replicate"
            x = functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        device = next(self.network.parameters()).device
        return x.to(device), (height, width)

    def at(
        self, image: Any, index: int, rows: np.ndarray, cols: np.ndarray, filters: bool = True
    ) -> torch.Tensor:
        """``(P, n_features)`` features of the pixels ``(rows, cols)`` of slice ``index``:
        exactly what :class:`~battery_seg.model.MultiScaleHead` sees there (bilinear, as
        ``interpolate`` upsamples); the filter features' columns are zeros unless ``filters``
        (then they are computed for the slice, once)."""
        features = self.slice(image, index, filters=filters)
        size = features.logits.shape[-2:]
        rows_t = torch.as_tensor(rows, dtype=torch.long, device=features.logits.device)
        cols_t = torch.as_tensor(cols, dtype=torch.long, device=features.logits.device)
        # pixel centres in grid_sample's [-1, 1] coordinates (align_corners=False)
        grid = torch.stack(
            [(2 * cols_t.float() + 1) / size[1] - 1, (2 * rows_t.float() + 1) / size[0] - 1],
            dim=-1,
        )[None, None]
        columns = []
        for scale in features.maps:
            if scale is None:  # filters not asked for
                columns.append(torch.zeros(len(rows_t), filter_count(), device=rows_t.device))
            elif scale.shape[-2:] == size:
                columns.append(scale[0][:, rows_t, cols_t].T)
            else:
                sampled = functional.grid_sample(
                    scale, grid, mode="bilinear", padding_mode="border", align_corners=False
                )
                columns.append(sampled[0, :, 0].T)
        return torch.cat(columns, dim=1)  # (P, F)
