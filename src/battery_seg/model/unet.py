"""The 2D / 2.5D U-Net: encoder-decoder with skip connections, batch norm and dropout.

The network sees ``context`` neighbouring slices as input channels (1 = slice by slice, 3/5/7 =
2.5D) and predicts the centre slice: one logit map per phase. Probabilities are
``softmax(logits, dim=1)`` everywhere in the package (training loss, inference, ensembling).

A *live* network (``live_hidden > 0``, from :func:`battery_seg.training.live_fit`) keeps a trained
U-Net whole and reads its phases from a :class:`MultiScaleHead` on the decoder's activations of
every scale and the U-Net's own logits (``feature_phases`` of them) instead, or on classic filter
features of its input (``live_filters``, :class:`FilterFeatures`).

A network with a *grey-level head* (``grey_hidden > 0``, added by training when the start model
does not know the imaging) blends the U-Net's phase probabilities with those of a per-pixel MLP
on the filter features of its input (:class:`GreyHead`): its logits are
``(1 - w) log_softmax(unet) + w log_softmax(grey)`` with ``w = grey_weight``, the normalised
geometric mean of the two, so softmax, argmax and uncertainty downstream need nothing new.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional

__all__ = [
    "FILTER_SIGMAS",
    "FilterFeatures",
    "GreyHead",
    "MultiScaleHead",
    "UNet",
    "UNetConfig",
    "UNetProbabilities",
    "filter_count",
    "filter_sigmas",
]


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a :class:`UNet` (stored in checkpoints)."""

    in_channels: int = 1
    n_phases: int = 4
    base_channels: int = 16
    depth: int = 4
    dropout: float = 0.1
    live_hidden: int = 0  # > 0: a MultiScaleHead of this width predicts the phases
    feature_phases: int = 0  # the wrapped U-Net's own logits (features of the live head)
    live_filters: int = 0  # > 0: the live head also reads this many FilterFeatures channels
    grey_hidden: int = 0  # > 0: a GreyHead of this width is blended into the output
    grey_weight: float = 0.0  # its weight in the blend (0..1)

    @property
    def decoder_widths(self) -> list[int]:
        """Channels of the decoder's output at every scale, coarsest first."""
        return [self.base_channels * 2**i for i in range(self.depth)][::-1]

    @property
    def feature_widths(self) -> list[int]:
        """Channels of every feature map a live head reads before the logits: the decoder's
        scales, then the filter features (full resolution) when it has them."""
        return [*self.decoder_widths, *([self.live_filters] if self.live_filters else [])]

    @property
    def multiple(self) -> int:
        """Height and width of an input tile must be a multiple of this."""
        return 2**self.depth

    @property
    def receptive_radius(self) -> int:
        """Half-width (pixels) of the receptive field: the xy halo that makes tiling exact-ish."""
        radius, stride = 0, 1
        for _ in range(self.depth):
            radius += 2 * stride  # two 3x3 convolutions at this scale
            stride *= 2
        radius += 2 * stride  # bottleneck
        for _ in range(self.depth):
            stride //= 2
            radius += 2 * stride
        return radius

    @property
    def smallest_tile(self) -> int:
        """Smallest in-plane tile that keeps the accuracy: two thirds of the receptive radius,
        rounded up to :attr:`multiple` (64 for depth 4). Smaller tiles cut the network's view:
        the bundled model's CBD IoU on the sample falls from 0.89 (tiles of 64 and more) to
        0.875 at 48, 0.85 at 32 and 0.48 at 16."""
        return -(-2 * self.receptive_radius // (3 * self.multiple)) * self.multiple

    def to_dict(self) -> dict:
        """The fields; those of the live and grey-level heads only for a network that has them
        (so plain checkpoints stay readable by versions without them)."""
        values = asdict(self)
        if not self.live_hidden:
            del values["live_hidden"], values["feature_phases"]
        if not self.live_filters:
            del values["live_filters"]
        if not self.grey_hidden:
            del values["grey_hidden"], values["grey_weight"]
        return values


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by batch norm and ReLU; dropout between them."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout) if dropout > 0 else nn.Identity(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class Encoder(nn.Module):
    """Conv blocks at halving resolutions; returns the feature map of every scale."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        widths = [config.base_channels * 2**i for i in range(config.depth + 1)]
        self.stem = ConvBlock(config.in_channels, widths[0])
        self.downs = nn.ModuleList(
            ConvBlock(w_in, w_out, config.dropout if i == config.depth - 1 else 0.0)
            for i, (w_in, w_out) in enumerate(pairwise(widths))
        )
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.stem(x)]  # (N, C0, H, W)
        for down in self.downs:
            features.append(down(self.pool(features[-1])))  # (N, C0*2^i, H/2^i, W/2^i)
        return features


class Decoder(nn.Module):
    """Transposed-convolution upsampling, concatenation with the skip, conv block."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        widths = [config.base_channels * 2**i for i in range(config.depth + 1)][::-1]
        self.ups = nn.ModuleList(nn.ConvTranspose2d(w, w // 2, 2, stride=2) for w in widths[:-1])
        self.blocks = nn.ModuleList(ConvBlock(w, w // 2) for w in widths[:-1])

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """The output of every scale, coarsest first; the last one is at full resolution."""
        scales, x = [], features[-1]
        for up, block, skip in zip(self.ups, self.blocks, features[-2::-1], strict=True):
            x = block(torch.cat([up(x), skip], dim=1))
            scales.append(x)  # (N, C0*2^i, H/2^i, W/2^i), i = depth-1 .. 0
        return scales


class MultiScaleHead(nn.Module):
    """Per-pixel MLP over the decoder activations of every scale (bilinearly upsampled) and the
    U-Net's logits: ``out(relu(sum_s up(project_s(f_s)) + project_logits(logits)))``.

    A 1x1 convolution commutes with bilinear upsampling, so each scale is projected to
    ``hidden`` channels at its own resolution and only those are upsampled: the same function
    as concatenating the upsampled features, at a fraction of the cost.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        hidden = config.live_hidden
        self.project = nn.ModuleList(
            nn.Conv2d(width, hidden, 1, bias=False) for width in config.feature_widths
        )
        self.project_logits = nn.Conv2d(config.feature_phases, hidden, 1)
        self.out = nn.Conv2d(hidden, config.n_phases, 1)

    def forward(self, scales: list[torch.Tensor], logits: torch.Tensor) -> torch.Tensor:
        """``(N, n_phases, H, W)`` logits."""
        return next(self.strips(scales, logits, [(0, logits.shape[-2])]))

    def strips(
        self, scales: list[torch.Tensor], logits: torch.Tensor, bounds: list[tuple[int, int]]
    ) -> Iterator[torch.Tensor]:
        """The logits of the output rows ``top:bottom`` of each of ``bounds``, one strip at a
        time: the same numbers as :meth:`forward`, with every map a strip's size (a large slice
        in strips keeps them small). Coarse scales are projected once, then each strip
        upsamples only the source rows it reads."""
        height, width = logits.shape[-2:]
        coarse = [
            None if features.shape[-2:] == (height, width) else project(features)
            for project, features in zip(self.project, scales, strict=True)
        ]
        for top, bottom in bounds:
            hidden = self.project_logits(logits[..., top:bottom, :])  # in place from here
            for project, features, projected in zip(self.project, scales, coarse, strict=True):
                if projected is None:
                    hidden.add_(project(features[..., top:bottom, :]))
                else:
                    hidden.add_(_upsampled_rows(projected, (height, width), top, bottom))
            yield self.out(torch.relu_(hidden))


def _upsampled_rows(x: torch.Tensor, size: tuple[int, int], top: int, bottom: int) -> torch.Tensor:
    """Rows ``top:bottom`` of ``interpolate(x, size, mode="bilinear")``, interpolating only the
    source rows they read (exact for the U-Net's power-of-two scale factors: the crop starts on
    the first row read and ends after the last, so no clamping differs)."""
    height = size[0]
    factor = height // x.shape[-2]
    if (top, bottom) == (0, height) or factor * x.shape[-2] != height or factor & (factor - 1):
        return functional.interpolate(x, size=size, mode="bilinear")[..., top:bottom, :]
    first = max(0, int((top + 0.5) / factor - 0.5))  # floor of the first source row read
    last = min(x.shape[-2], int(max((bottom - 0.5) / factor - 0.5, 0)) + 2)
    part = functional.interpolate(
        x[..., first:last, :], size=((last - first) * factor, size[1]), mode="bilinear"
    )
    return part[..., top - first * factor : bottom - first * factor, :]


# Classic per-pixel filter features (ilastik's kind) for live heads on imaging the network does
# not know: for each scale sigma, the Gaussian-smoothed intensity, its gradient magnitude and the
# two eigenvalues of its Hessian (their sum is the Laplacian of Gaussian); plus the intensity. They
# are computed inside the network from its normalised input, so a live model that reads them stays
# one exportable network (this file is the architecture source of bioimage.io packages: it
# imports nothing of ours), and the kernels are rebuilt from the sigmas, never stored.
FILTER_SIGMAS = (1.0, 2.0, 4.0, 8.0)  # pixels


def filter_count(sigmas: tuple[float, ...] = FILTER_SIGMAS) -> int:
    """Channels of :class:`FilterFeatures`: the intensity and four per scale."""
    return 1 + 4 * len(sigmas)


def filter_sigmas(count: int) -> tuple[float, ...]:
    """The scales of a :class:`FilterFeatures` of ``count`` channels: the first of
    ``FILTER_SIGMAS`` (live models saved with 13 channels read 1, 2 and 4 pixels)."""
    firsts = [FILTER_SIGMAS[:k] for k in range(1, len(FILTER_SIGMAS) + 1)]
    known = {filter_count(sigmas): sigmas for sigmas in firsts}
    if count not in known:
        raise ValueError(f"live_filters must be one of {sorted(known)}, got {count}")
    return known[count]


def _kernels(sigma: float) -> torch.Tensor:
    """``(3, 1, L)`` 1D Gaussian and its first and second derivatives, truncated at 3 sigma."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    first = -x / sigma**2 * g
    second = (x**2 / sigma**4 - 1 / sigma**2) * g
    second = second - second.mean()  # no response to a constant
    return torch.stack([g, first, second])[:, None, :]


class FilterFeatures(nn.Module):
    """``(N, filter_count, H, W)`` filter responses of ``x[:, centre]`` (borders replicated).

    Examples
    --------
    >>> FilterFeatures()(torch.zeros(2, 3, 32, 40)).shape
    torch.Size([2, 17, 32, 40])
    """

    def __init__(self, sigmas: tuple[float, ...] = FILTER_SIGMAS) -> None:
        super().__init__()
        self.sigmas = tuple(float(s) for s in sigmas)
        for i, sigma in enumerate(self.sigmas):
            self.register_buffer(f"kernels{i}", _kernels(sigma), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = x[:, x.shape[1] // 2 : x.shape[1] // 2 + 1]  # (N, 1, H, W)
        maps = [image]
        for i in range(len(self.sigmas)):
            kernels = getattr(self, f"kernels{i}")
            radius = kernels.shape[-1] // 2
            padded = functional.pad(image, (radius,) * 4, mode="replicate")
            rows = functional.conv2d(padded, kernels[:, :, :, None])  # (N, 3, H, W + 2r)
            # g, d, dd along y, each then along x: one depthwise convolution for all six
            pairs = rows[:, [0, 0, 0, 1, 2, 1]]
            across = kernels[[0, 1, 2, 0, 0, 1]][:, :, None, :]
            smooth, gx, gxx, gy, gyy, gxy = functional.conv2d(pairs, across, groups=6).unbind(1)
            smooth, gx, gxx, gy, gyy, gxy = (m[:, None] for m in (smooth, gx, gxx, gy, gyy, gxy))
            half_trace, half_gap = (gxx + gyy) / 2, (gxx - gyy) / 2
            root = torch.sqrt(half_gap**2 + gxy**2 + 1e-12)
            gradient = torch.sqrt(gx**2 + gy**2 + 1e-12)
            maps += [smooth, gradient, half_trace + root, half_trace - root]
        return torch.cat(maps, dim=1)


class GreyHead(nn.Module):
    """Phase logits from the filter features of the input's centre slice, pixel by pixel:
    ``out(relu(first(FilterFeatures(x))))`` (1x1 convolutions)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.filters = FilterFeatures()
        self.first = nn.Conv2d(filter_count(), config.grey_hidden, 1)
        self.out = nn.Conv2d(config.grey_hidden, config.n_phases, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.first(self.filters(x))))


class UNet(nn.Module):
    """U-Net mapping ``(N, context, H, W)`` images to ``(N, n_phases, H, W)`` logits.

    Examples
    --------
    >>> net = UNet(UNetConfig(in_channels=3, n_phases=4, base_channels=8, depth=2))
    >>> net(torch.zeros(2, 3, 32, 48)).shape
    torch.Size([2, 4, 32, 48])
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or UNetConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        c = self.config
        self.head = nn.Conv2d(c.base_channels, c.feature_phases if c.live_hidden else c.n_phases, 1)
        self.live = MultiScaleHead(c) if c.live_hidden else None
        self.filters = FilterFeatures(filter_sigmas(c.live_filters)) if c.live_filters else None
        self.grey = GreyHead(c) if c.grey_hidden else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.in_channels:
            raise ValueError(
                f"UNet expects (N, {c.in_channels}, H, W) input (context slices as channels), "
                f"got {tuple(x.shape)}."
            )
        h, w = x.shape[-2:]
        if h % c.multiple or w % c.multiple:
            ph, pw = -(-h // c.multiple) * c.multiple, -(-w // c.multiple) * c.multiple
            raise ValueError(
                f"UNet of depth {c.depth} needs H and W divisible by {c.multiple}, got ({h}, {w}); "
                f"pad to ({ph}, {pw})."
            )
        scales, logits = self.features(x)
        if self.live is not None:
            logits = self.live(scales, logits)
        if self.grey is not None:
            w = c.grey_weight
            grey = torch.log_softmax(self.grey(x), dim=1)
            logits = (1 - w) * torch.log_softmax(logits, dim=1) + w * grey
        return logits  # (N, n_phases, H, W)

    def features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The decoder's output at every scale (coarsest first; then the filter features of a
        live network that reads them) and the U-Net's own logits (before a live head): the
        feature bank of :class:`MultiScaleHead`."""
        scales = self.decoder(self.encoder(x))
        logits = self.head(scales[-1])
        if self.filters is not None:
            scales = [*scales, self.filters(x)]
        return scales, logits

    @torch.inference_mode()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Per-phase probabilities (softmax over phases) in eval mode."""
        if self.training:
            self.eval()
        return torch.softmax(self(x), dim=1)


class UNetProbabilities(UNet):
    """The :class:`UNet` with the softmax over phases built in, made from plain keyword arguments.

    This is the network of the bioimage.io export (this file is its architecture source): tools
    that run a model alone (bioimage.io, ilastik, deepImageJ) get per-phase probabilities, and the
    weights are the :class:`UNet`'s state dict unchanged.

    Examples
    --------
    >>> net = UNetProbabilities(in_channels=1, n_phases=3, base_channels=8, depth=2)
    >>> net(torch.zeros(1, 1, 16, 16)).sum(dim=1).allclose(torch.ones(1, 16, 16))
    True
    """

    def __init__(self, **architecture) -> None:
        super().__init__(UNetConfig(**architecture))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(super().forward(x), dim=1)  # (N, n_phases, H, W), sums to 1
