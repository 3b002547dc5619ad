"""State (vector observation) augmentations from RAD (Laskin et al. 2020).

Both accept any ``[B, ...]`` batch (state vectors or images). Floating inputs are transformed
as they are; ``uint8`` inputs are read as ``[0, 1]`` values stored times 255 (so ``std`` is in
the same units for images of either dtype), then rounded and clamped back to ``[0, 255]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlkit.augmentations.base import AUGMENTATIONS, Augmentation
from rlkit.augmentations.image import check_value_dtype, normal, uniform


def _check_batch(x: Tensor, name: str) -> None:
    if x.dim() < 1:
        raise ValueError(f"{name} expects a batch [B, ...], got a scalar")
    check_value_dtype(x, name)


def _restore(y: Tensor, dtype: torch.dtype) -> Tensor:
    if dtype == torch.uint8:
        return y.round_().clamp_(0.0, 255.0).to(torch.uint8)
    return y


@AUGMENTATIONS.register("gaussian_noise")
class GaussianNoise(Augmentation):
    """RAD Gaussian noise: ``x + std * N(0, I)`` per element (``std * 255`` for uint8)."""

    def __init__(self, std: float = 0.1) -> None:
        super().__init__()
        if std < 0:
            raise ValueError(f"GaussianNoise: std must be >= 0, got {std}")
        self.std = float(std)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_batch(x, "GaussianNoise")
        scale = self.std * (255.0 if x.dtype == torch.uint8 else 1.0)
        noise = normal(x.shape, generator, x.device)
        y = x.float() if x.dtype == torch.uint8 else x
        return _restore(y + (noise * scale).to(y.dtype), x.dtype)


@AUGMENTATIONS.register("random_amplitude_scaling")
class RandomAmplitudeScaling(Augmentation):
    """RAD random amplitude scaling: ``x * z`` with ``z ~ U[low, high]``.

    One ``z`` per sample by default (the whole state, or every frame of an image stack, is
    scaled alike); ``elementwise=True`` draws one ``z`` per element instead.
    """

    def __init__(self, low: float = 0.6, high: float = 1.2, elementwise: bool = False) -> None:
        super().__init__()
        if not low <= high:
            raise ValueError(f"RandomAmplitudeScaling: need low <= high, got {low}, {high}")
        self.low = float(low)
        self.high = float(high)
        self.elementwise = bool(elementwise)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_batch(x, "RandomAmplitudeScaling")
        shape = x.shape if self.elementwise else (x.shape[0],) + (1,) * (x.dim() - 1)
        z = uniform(shape, self.low, self.high, generator, x.device)
        y = x.float() if x.dtype == torch.uint8 else x
        return _restore(y * z.to(y.dtype), x.dtype)
