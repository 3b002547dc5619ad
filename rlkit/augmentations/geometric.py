"""Geometric and occlusion augmentations: crop, translate, flip, rotate, cutout (RAD / DrAC).

RAD: Laskin et al. 2020, "Reinforcement Learning with Augmented Data".
DrAC: Raileanu et al. 2021, "Automatic Data Augmentation for Generalization in RL".

All ops take ``[B, C, H, W]`` stacks and draw one transform per sample, shared by all of its
channels (stacked frames move together). They only move, zero or fill pixels, as batched
gathers and selects, so values are copied exactly and any dtype works (no interpolation).
Every op except :class:`RandomCrop` keeps the input shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from rlkit.augmentations.base import AUGMENTATIONS, Augmentation
from rlkit.augmentations.image import (
    bernoulli,
    check_channels_per_frame,
    check_image,
    check_probability,
    check_value_dtype,
    frame_channels,
    randint,
    select,
    uniform,
)


def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(size, int):
        h = w = size
    else:
        if len(size) != 2:
            raise ValueError(f"{name}: size must be an int or (height, width), got {size}")
        h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"{name}: size must be >= 1, got {size}")
    return h, w


def _crop(x: Tensor, top: Tensor, left: Tensor, out_h: int, out_w: int) -> Tensor:
    """Per-sample crop ``x[i, :, top_i : top_i + out_h, left_i : left_i + out_w]``.

    Indexes the view of all windows (``unfold``, no copy) once per sample: one exact copy.
    """
    windows = x.unfold(2, out_h, 1).unfold(3, out_w, 1)  # [B, C, nH, nW, out_h, out_w]
    return windows[torch.arange(x.shape[0], device=x.device), :, top, left]


def _keep(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``1`` outside ``mask``, ``0`` inside, in ``dtype``: ``x * keep`` zeroes the mask exactly.

    (Multiplying by a broadcast 0/1 tensor is several times faster on CPU than ``masked_fill``.)
    """
    return (~mask).to(dtype)


def _box_mask(x: Tensor, min_size: int, max_size: int, generator: torch.Generator | None) -> Tensor:
    """``[B, 1, H, W]`` mask of one random rectangle per sample (sides in ``[min, max]``)."""
    b, _, h, w = x.shape
    dev = x.device
    sizes = randint(min_size, max_size, (2, b), generator, dev)
    bh, bw = sizes[0].clamp(max=h), sizes[1].clamp(max=w)
    top = randint(0, h - bh, (b,), generator, dev)
    left = randint(0, w - bw, (b,), generator, dev)
    r = torch.arange(h, device=dev)
    c = torch.arange(w, device=dev)
    in_rows = (r >= top[:, None]) & (r < (top + bh)[:, None])  # [B, H]
    in_cols = (c >= left[:, None]) & (c < (left + bw)[:, None])  # [B, W]
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]


@AUGMENTATIONS.register("random_crop")
class RandomCrop(Augmentation):
    """RAD random crop to ``size`` (e.g. 100x100 renders -> 84x84): the one shape-changing op.

    Output is ``[B, C, size_h, size_w]``; the crop window is uniform over all positions that
    fit. At evaluation RAD centre-crops: use :meth:`center`. For a shape-preserving crop use
    :class:`~rlkit.augmentations.RandomShift` (replicate padding) or :class:`RandomTranslate`
    (zero padding).
    """

    def __init__(self, size: int | Sequence[int] = 84) -> None:
        super().__init__()
        self.size = _pair(size, "RandomCrop")

    def _check(self, x: Tensor) -> tuple[int, int]:
        _, _, h, w = check_image(x, "RandomCrop")
        sh, sw = self.size
        if sh > h or sw > w:
            raise ValueError(f"RandomCrop: crop size {self.size} exceeds image size {(h, w)}")
        return h - sh, w - sw

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        dh, dw = self._check(x)
        b = x.shape[0]
        top = randint(0, dh, (b,), generator, x.device)
        left = randint(0, dw, (b,), generator, x.device)
        return _crop(x, top, left, *self.size)

    def center(self, x: Tensor) -> Tensor:
        """Deterministic centre crop to ``size`` (RAD's evaluation-time counterpart)."""
        dh, dw = self._check(x)
        return x[:, :, dh // 2 : dh // 2 + self.size[0], dw // 2 : dw // 2 + self.size[1]]


@AUGMENTATIONS.register("random_translate")
class RandomTranslate(Augmentation):
    """RAD random translate: shift each sample by integer offsets in ``[-pad, pad]``, zero fill.

    Equals RAD's "place the frame at a random position of a larger zero canvas of side
    ``H + 2 pad``", followed by a centre crop back to ``H x W``, so the shape is kept. Differs
    from :class:`~rlkit.augmentations.RandomShift` only in the fill (zeros, not replicated edges).
    """

    def __init__(self, pad: int = 4) -> None:
        super().__init__()
        if pad < 0:
            raise ValueError(f"RandomTranslate: pad must be >= 0, got {pad}")
        self.pad = int(pad)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b, _, h, w = check_image(x, "RandomTranslate")
        if self.pad == 0:
            return x
        offsets = randint(0, 2 * self.pad, (2, b), generator, x.device)  # shift + pad
        padded = F.pad(x, (self.pad,) * 4)  # zeros, any dtype
        return _crop(padded, offsets[0], offsets[1], h, w)


@AUGMENTATIONS.register("random_flip")
class RandomFlip(Augmentation):
    """RAD / DrAC horizontal flip of each sample (all frames) with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_probability(p, "RandomFlip")

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check_image(x, "RandomFlip")
        flip = bernoulli(self.p, x.shape[0], generator, x.device)
        return select(flip, x.flip(-1), x)


@AUGMENTATIONS.register("random_rotate")
class RandomRotate(Augmentation):
    """RAD / DrAC rotation: with probability ``p``, rotate by an angle drawn from ``angles``.

    Angles are in degrees, counter-clockwise, about the image centre, drawn uniformly from the
    list per sample (default: 90, 180, 270, as RAD). Nearest-neighbour source indices make it
    one exact gather: multiples of 90 on square frames equal ``torch.rot90``; other angles (or
    90/270 on non-square frames) zero-fill pixels whose source falls outside the frame.
    """

    def __init__(self, p: float = 0.5, angles: Sequence[float] = (90.0, 180.0, 270.0)) -> None:
        super().__init__()
        self.p = check_probability(p, "RandomRotate")
        if len(angles) == 0:
            raise ValueError("RandomRotate: angles must not be empty")
        self.angles = tuple(float(a) for a in angles)

    def _sources(self, h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``[A, H*W]`` flat source index per angle and per output pixel, and validity."""
        theta = torch.tensor([math.radians(a) for a in self.angles], dtype=torch.float64)
        cos, sin = theta.cos()[:, None, None], theta.sin()[:, None, None]
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        y = torch.arange(h, dtype=torch.float64)[:, None] - cy
        x = torch.arange(w, dtype=torch.float64)[None, :] - cx
        src_y = torch.round(y * cos + x * sin + cy).long()
        src_x = torch.round(x * cos - y * sin + cx).long()
        valid = (src_y >= 0) & (src_y < h) & (src_x >= 0) & (src_x < w)
        flat = src_y.clamp(0, h - 1) * w + src_x.clamp(0, w - 1)
        n = len(self.angles)
        return flat.reshape(n, h * w).to(device), valid.reshape(n, h * w).to(device)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b, c, h, w = check_image(x, "RandomRotate")
        rotate = bernoulli(self.p, b, generator, x.device)
        choice = randint(0, len(self.angles) - 1, (b,), generator, x.device)
        flat, valid = self._sources(h, w, x.device)
        identity = torch.arange(h * w, device=x.device)
        index = torch.where(rotate[:, None], flat[choice], identity)  # [B, H*W]
        keep = valid[choice] | ~rotate[:, None]
        out = x.reshape(b, c, h * w).gather(2, index[:, None, :].expand(b, c, h * w))
        return (out * keep[:, None, :].to(x.dtype)).reshape(b, c, h, w)


@AUGMENTATIONS.register("random_cutout")
class RandomCutout(Augmentation):
    """RAD / DrAC cutout: zero one random rectangle per sample (same box on every frame).

    Height and width are drawn independently from ``[min_size, max_size]`` (inclusive, clipped
    to the frame; RAD's defaults 10 and 30 are meant for 84-100 px frames), and the box position
    uniformly among those that fit.
    """

    def __init__(self, min_size: int = 10, max_size: int = 30) -> None:
        super().__init__()
        if not 1 <= min_size <= max_size:
            raise ValueError(
                f"RandomCutout: need 1 <= min_size <= max_size, got {min_size}, {max_size}"
            )
        self.min_size = int(min_size)
        self.max_size = int(max_size)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        check_image(x, type(self).__name__)
        return x * _keep(_box_mask(x, self.min_size, self.max_size, generator), x.dtype)


@AUGMENTATIONS.register("random_cutout_color")
class RandomCutoutColor(Augmentation):
    """RAD / DrAC cutout-colour: fill one random rectangle per sample with a random colour.

    The box is drawn as in :class:`RandomCutout`; the colour is uniform per sample (one value
    per RGB channel, or one gray value when ``C % 3 != 0``; ``channels_per_frame`` overrides)
    and repeated on every frame: ``[0, 255]`` integers for ``uint8``, ``[0, 1)`` for floats.
    """

    def __init__(
        self, min_size: int = 10, max_size: int = 30, channels_per_frame: int | None = None
    ) -> None:
        super().__init__()
        if not 1 <= min_size <= max_size:
            raise ValueError(
                f"RandomCutoutColor: need 1 <= min_size <= max_size, got {min_size}, {max_size}"
            )
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        self.channels_per_frame = check_channels_per_frame(channels_per_frame, "RandomCutoutColor")

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        b, c, _, _ = check_image(x, "RandomCutoutColor")
        check_value_dtype(x, "RandomCutoutColor")
        k = frame_channels(c, self.channels_per_frame, "RandomCutoutColor")
        mask = _box_mask(x, self.min_size, self.max_size, generator)
        if x.dtype == torch.uint8:
            color = randint(0, 255, (b, k), generator, x.device).to(torch.uint8)
        else:
            color = uniform((b, k), 0.0, 1.0, generator, x.device).to(x.dtype)
        fill = color.repeat(1, c // k)[:, :, None, None]  # [B, C, 1, 1], frame-major
        # exact: one of the two terms is zero at every pixel
        return x * _keep(mask, x.dtype) + fill * mask.to(x.dtype)
