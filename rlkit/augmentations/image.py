"""Shared helpers for the image augmentations in :mod:`~rlkit.augmentations.color` and
:mod:`~rlkit.augmentations.geometric` (and the state ones in :mod:`~rlkit.augmentations.state`).

Conventions used by every augmentation here:

- Images are ``[B, C, H, W]`` with ``C = frames x channels_per_frame`` (stacked frames).
  Colour ops read ``C`` as consecutive RGB frames when ``C % 3 == 0`` and as grayscale
  channels otherwise; pass ``channels_per_frame`` to override (e.g. 3 stacked gray frames).
- One transform is drawn per sample and applied to all of its frames.
- Randomness is drawn with ``generator`` on the generator's device, then moved to the data.
- ``uint8`` images mean ``[0, 255]``; floating images are assumed to lie in ``[0, 1]``. Ops that
  compute new values do so in float32 on the ``[0, 255]`` scale, then round and clamp back
  to ``uint8`` (colour ops also clamp floating outputs to ``[0, 1]``). Ops that only move or
  zero pixels (crop, flip, rotate, translate, cutout) are exact gathers/selects and accept
  any dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def check_image(x: Tensor, name: str) -> tuple[int, int, int, int]:
    """Raise unless ``x`` is a ``[B, C, H, W]`` batch; return its shape."""
    if x.dim() != 4:
        raise ValueError(f"{name} expects [B, C, H, W] images, got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    return b, c, h, w


def check_value_dtype(x: Tensor, name: str) -> None:
    """Ops that compute new pixel values need ``uint8`` or floating input."""
    if x.dtype != torch.uint8 and not x.dtype.is_floating_point:
        raise TypeError(f"{name} supports uint8 or floating tensors, got {x.dtype}")


def check_probability(p: float, name: str) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: p must be in [0, 1], got {p}")
    return float(p)


def frame_channels(c: int, channels_per_frame: int | None, name: str) -> int:
    """Channels per frame: the override, else 3 (RGB) when ``c % 3 == 0``, else 1 (grayscale)."""
    k = channels_per_frame if channels_per_frame is not None else (3 if c % 3 == 0 else 1)
    if k not in (1, 3) or c % k:
        raise ValueError(
            f"{name}: channels_per_frame must be 1 or 3 and divide C={c}, got {channels_per_frame}"
        )
    return k


def check_channels_per_frame(value: int | None, name: str) -> int | None:
    if value is not None and value not in (1, 3):
        raise ValueError(f"{name}: channels_per_frame must be None, 1 or 3, got {value}")
    return value


def _gen_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def uniform(
    shape: Sequence[int],
    low: float,
    high: float,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """``U[low, high)`` float32 samples, drawn on the generator's device, moved to ``device``."""
    u = torch.rand(tuple(shape), generator=generator, device=_gen_device(generator, device))
    return (u * (high - low) + low).to(device)


def normal(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal float32 samples (drawn on the generator's device)."""
    gd = _gen_device(generator, device)
    return torch.randn(tuple(shape), generator=generator, device=gd).to(device)


def randint(
    low: Tensor | int,
    high: Tensor | int,
    shape: Sequence[int],
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """Integers in ``[low, high]`` (inclusive; ``low``/``high`` may be per-sample tensors)."""
    u = torch.rand(tuple(shape), generator=generator, device=_gen_device(generator, device))
    u = u.to(device, torch.float64)
    lo = torch.as_tensor(low, device=device)
    hi = torch.as_tensor(high, device=device)
    span = (hi - lo + 1).to(torch.float64)
    # floor(u * span) is in [0, span - 1]; the min guards float rounding at u ~ 1
    offset = torch.minimum((u * span).floor().long(), (hi - lo).long())
    return lo.long() + offset


def bernoulli(
    p: float, batch: int, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """``[batch]`` bool mask, True with probability ``p`` (always drawn, so streams line up)."""
    return uniform((batch,), 0.0, 1.0, generator, device) < p


def value_scale(dtype: torch.dtype) -> float:
    """The value of "full intensity": 255 for ``uint8``, 1 for floating images."""
    return 255.0 if dtype == torch.uint8 else 1.0


def to_float(x: Tensor) -> Tensor:
    """``uint8`` -> float32 (same ``[0, 255]`` scale, no copy of floating tensors)."""
    return x.float() if x.dtype == torch.uint8 else x


def from_float(y: Tensor, dtype: torch.dtype) -> Tensor:
    """Back to ``dtype`` with clamping to ``[0, value_scale]`` (rounding for ``uint8``).

    Rounds ``uint8`` results in place, so ``y`` must not be the caller's input there
    (it never is: ``to_float`` copies ``uint8``).
    """
    if dtype == torch.uint8:
        return y.round_().clamp_(0.0, 255.0).to(torch.uint8)
    return y.clamp(0.0, 1.0).to(dtype)


def select(mask: Tensor, yes: Tensor, no: Tensor) -> Tensor:
    """Per sample, ``yes[i]`` where ``mask[i]`` else ``no[i]``: exact, any dtype.

    One ``index_select`` over the concatenation, which on CPU is several times faster than
    ``torch.where`` with a broadcast ``[B, 1, 1, 1]`` mask.
    """
    b = mask.shape[0]
    index = torch.arange(b, device=mask.device) + b * (~mask).long()
    return torch.cat([yes, no]).index_select(0, index)
