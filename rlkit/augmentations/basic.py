"""Identity and DrQ's random shift."""

from __future__ import annotations

import torch
from torch import Tensor

from rlkit.augmentations.base import AUGMENTATIONS, Augmentation


@AUGMENTATIONS.register("identity")
class Identity(Augmentation):
    """Returns the batch unchanged (the no-augmentation baseline)."""

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return x


@AUGMENTATIONS.register("random_shift")
class RandomShift(Augmentation):
    """DrQ random shift: replicate-pad by ``pad`` pixels, then crop back at a random offset.

    Implemented as two batched gathers with clamped indices, which equals replicate padding
    followed by an integer crop; exact for any dtype (uint8 in, uint8 out). Input ``[B, C, H, W]``.
    """

    def __init__(self, pad: int = 4) -> None:
        super().__init__()
        if pad < 0:
            raise ValueError(f"RandomShift: pad must be >= 0, got {pad}")
        self.pad = int(pad)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"RandomShift expects [B, C, H, W] images, got shape {tuple(x.shape)}")
        if self.pad == 0:
            return x
        b, c, h, w = x.shape
        gen_device = generator.device if generator is not None else x.device
        shifts = torch.randint(
            -self.pad, self.pad + 1, (b, 2), generator=generator, device=gen_device
        ).to(x.device)
        rows = (torch.arange(h, device=x.device) + shifts[:, :1]).clamp_(0, h - 1)  # [B, H]
        cols = (torch.arange(w, device=x.device) + shifts[:, 1:]).clamp_(0, w - 1)  # [B, W]
        x = x.gather(2, rows[:, None, :, None].expand(b, c, h, w))
        return x.gather(3, cols[:, None, None, :].expand(b, c, h, w))
