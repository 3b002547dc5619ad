"""Colour augmentations: grayscale, colour jitter, random convolution (RAD / DrAC).

RAD: Laskin et al. 2020, "Reinforcement Learning with Augmented Data".
DrAC: Raileanu et al. 2021, "Automatic Data Augmentation for Generalization in RL".
Random convolution: Lee et al. 2020, "Network Randomization".

All ops take ``[B, C, H, W]`` stacks; ``C`` is read as RGB frames when ``C % 3 == 0`` and as
grayscale channels otherwise (``channels_per_frame`` overrides). One set of random factors is
drawn per sample and shared by all of its frames. ``uint8`` is ``[0, 255]``, floating is
``[0, 1]``; outputs are clamped to that range and keep the input dtype. The functional helpers
below work on float ``[B, F, k, H, W]`` frame views in ``[0, max_val]`` with per-sample
factors ``[B]``, with torchvision's conventions (kornia is not required).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from rlkit.augmentations.base import AUGMENTATIONS, Augmentation
from rlkit.augmentations.image import (
    bernoulli,
    check_channels_per_frame,
    check_image,
    check_probability,
    check_value_dtype,
    frame_channels,
    from_float,
    normal,
    select,
    to_float,
    uniform,
    value_scale,
)

#: ITU-R BT.601 luma weights (as torchvision, kornia and OpenCV).
LUMA = (0.299, 0.587, 0.114)


def _per_sample(f: Tensor, x: Tensor) -> Tensor:
    return f.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def luminance(x: Tensor) -> Tensor:
    """``[..., 3, H, W]`` RGB -> ``[..., 1, H, W]`` BT.601 luma."""
    r, g, b = x.unbind(dim=-3)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(-3)


def adjust_brightness(x: Tensor, factor: Tensor, max_val: float = 1.0) -> Tensor:
    """Multiply by ``factor`` (per sample), clamp to ``[0, max_val]``."""
    return (x * _per_sample(factor, x)).clamp_(0.0, max_val)


def _blend(x: Tensor, other: Tensor, factor: Tensor, max_val: float) -> Tensor:
    """``clamp(f x + (1 - f) other) = clamp(other + f (x - other))``."""
    return torch.addcmul(other, x - other, _per_sample(factor, x)).clamp_(0.0, max_val)


def adjust_contrast(x: Tensor, factor: Tensor, max_val: float = 1.0) -> Tensor:
    """Blend each frame with the mean of its luma (per frame) by ``factor``, clamp."""
    gray = luminance(x) if x.shape[-3] == 3 else x
    return _blend(x, gray.mean(dim=(-3, -2, -1), keepdim=True), factor, max_val)


def adjust_saturation(x: Tensor, factor: Tensor, max_val: float = 1.0) -> Tensor:
    """Blend each RGB frame with its luma by ``factor``, clamp; grayscale is unchanged."""
    if x.shape[-3] != 3:
        return x
    return _blend(x, luminance(x), factor, max_val)


def rgb_to_hsv(x: Tensor) -> Tensor:
    """``[..., 3, H, W]`` RGB -> HSV with hue in ``[0, 1)`` (value keeps the input's scale)."""
    r, g, b = x.unbind(dim=-3)
    maxc = x.amax(dim=-3)
    minc = x.amin(dim=-3)
    delta = maxc - minc
    flat = delta == 0
    s = delta / torch.where(maxc == 0, torch.ones_like(maxc), maxc)
    d = torch.where(flat, torch.ones_like(delta), delta)
    rc, gc, bc = (maxc - r) / d, (maxc - g) / d, (maxc - b) / d
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(flat, torch.zeros_like(h), h)
    h = torch.remainder(h / 6.0, 1.0)
    return torch.stack((h, s, maxc), dim=-3)


def hsv_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`: ``f(n) = v - v s clamp(min(k, 4 - k), 0, 1)``."""
    h, s, v = (t.unsqueeze(-3) for t in x.unbind(dim=-3))
    n = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device).reshape(3, 1, 1)
    k = torch.remainder(n + 6.0 * h, 6.0)
    return v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def adjust_hue(x: Tensor, shift: Tensor, max_val: float = 1.0) -> Tensor:
    """Rotate the hue of each RGB frame by ``shift`` turns (``[-0.5, 0.5]``); gray unchanged."""
    if x.shape[-3] != 3:
        return x
    hsv = rgb_to_hsv(x)
    h = torch.remainder(hsv[..., 0, :, :] + _per_sample(shift, hsv[..., 0, :, :]), 1.0)
    out = hsv_to_rgb(torch.stack((h, hsv[..., 1, :, :], hsv[..., 2, :, :]), dim=-3))
    return out.clamp_(0.0, max_val)


class _ColorAugmentation(Augmentation):
    """Shared plumbing: dtype checks and the ``[B, F, k, H, W]`` frame view."""

    channels_per_frame: int | None

    def _frames(self, x: Tensor) -> tuple[Tensor, int]:
        _, c, _, _ = check_image(x, type(self).__name__)
        check_value_dtype(x, type(self).__name__)
        k = frame_channels(c, self.channels_per_frame, type(self).__name__)
        return rearrange(to_float(x), "b (f k) h w -> b f k h w", k=k), k


@AUGMENTATIONS.register("grayscale")
class GrayScale(_ColorAugmentation):
    """RAD random grayscale: each RGB frame -> BT.601 luma replicated to 3 channels.

    Applied to a sample (all of its frames) with probability ``p``; RAD uses ``p=0.3``.
    Grayscale stacks (``C % 3 != 0``) are returned unchanged.
    """

    def __init__(self, p: float = 1.0, channels_per_frame: int | None = None) -> None:
        super().__init__()
        self.p = check_probability(p, "GrayScale")
        self.channels_per_frame = check_channels_per_frame(channels_per_frame, "GrayScale")

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        frames, k = self._frames(x)
        apply = bernoulli(self.p, x.shape[0], generator, x.device)
        if k == 1:
            return x
        gray = from_float(luminance(frames), x.dtype).expand_as(frames)  # round, then replicate
        out = rearrange(gray, "b f k h w -> b (f k) h w")
        return out if self.p >= 1.0 else select(apply, out, x)


@AUGMENTATIONS.register("color_jitter")
class ColorJitter(_ColorAugmentation):
    """RAD / DrAC colour jitter with torchvision's factor conventions, one draw per sample.

    Brightness ``U[max(0, 1-b), 1+b]`` (multiply), contrast ``U[max(0, 1-c), 1+c]`` (blend with
    the frame's mean luma), saturation ``U[max(0, 1-s), 1+s]`` (blend with luma), hue shift
    ``U[-h, h]`` turns (HSV rotation, ``h <= 0.5``), applied in that fixed order with clamping
    after each step, to a sample with probability ``p``. Defaults are RAD's
    (0.4, 0.4, 0.4, 0.5). Saturation and hue leave grayscale stacks unchanged. Stages whose
    range is empty are skipped, so all-zero arguments return the input unchanged.
    """

    def __init__(
        self,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.5,
        p: float = 1.0,
        channels_per_frame: int | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("brightness", brightness),
            ("contrast", contrast),
            ("saturation", saturation),
        ):
            if value < 0:
                raise ValueError(f"ColorJitter: {name} must be >= 0, got {value}")
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"ColorJitter: hue must be in [0, 0.5], got {hue}")
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.saturation = float(saturation)
        self.hue = float(hue)
        self.p = check_probability(p, "ColorJitter")
        self.channels_per_frame = check_channels_per_frame(channels_per_frame, "ColorJitter")

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        frames, _ = self._frames(x)
        b, dev = x.shape[0], x.device
        # draw every factor whatever the ranges, so one seed gives one stream
        factors = uniform((4, b), 0.0, 1.0, generator, dev)
        apply = bernoulli(self.p, b, generator, dev)
        active = self.brightness > 0 or self.contrast > 0 or self.saturation > 0 or self.hue > 0
        if not active:
            return x
        top = value_scale(x.dtype)
        y = frames
        for i, (spread, fn) in enumerate(
            (
                (self.brightness, adjust_brightness),
                (self.contrast, adjust_contrast),
                (self.saturation, adjust_saturation),
            )
        ):
            if spread > 0:
                low = max(0.0, 1.0 - spread)
                y = fn(y, factors[i] * (1.0 + spread - low) + low, top)
        if self.hue > 0:
            y = adjust_hue(y, (factors[3] * 2.0 - 1.0) * self.hue, top)
        out = from_float(rearrange(y, "b f k h w -> b (f k) h w"), x.dtype)
        return out if self.p >= 1.0 else select(apply, out, x)


@AUGMENTATIONS.register("random_convolution")
class RandomConvolution(_ColorAugmentation):
    """RAD / DrAC random convolution (Lee et al. 2020): a random 3x3 conv per sample.

    Each sample draws one ``k -> k`` 3x3 kernel (``k`` = 3 for RGB, 1 for gray) with Xavier-normal
    weights (``std = sqrt(1 / (9 k))``, no bias, zero padding) and applies it to every frame, as
    one grouped convolution over the batch. Output is clamped to the valid range (RAD does not
    clamp; here the dtype's range must hold).
    """

    def __init__(self, kernel_size: int = 3, channels_per_frame: int | None = None) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"RandomConvolution: kernel_size must be odd, got {kernel_size}")
        self.kernel_size = int(kernel_size)
        self.channels_per_frame = check_channels_per_frame(channels_per_frame, "RandomConvolution")

    def weights(
        self, batch: int, k: int, generator: torch.Generator | None, device: torch.device
    ) -> Tensor:
        """The ``[B, k, k, s, s]`` kernels ``forward`` draws (first draw from ``generator``)."""
        s = self.kernel_size
        fan = k * s * s
        return normal((batch, k, k, s, s), generator, device) * math.sqrt(2.0 / (2 * fan))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        frames, k = self._frames(x)
        b = x.shape[0]
        w = self.weights(b, k, generator, x.device).to(frames.dtype)
        inp = rearrange(frames, "b f k h w -> f (b k) h w")
        out = F.conv2d(
            inp,
            rearrange(w, "b o i s t -> (b o) i s t"),
            padding=self.kernel_size // 2,
            groups=b,
        )
        out = rearrange(out, "f (b k) h w -> b (f k) h w", b=b)
        return from_float(out, x.dtype)
