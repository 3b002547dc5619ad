"""Compose: apply several augmentations in order (RAD / DrAC pipelines, e.g. crop then jitter)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from rlkit.augmentations.base import AUGMENTATIONS, Augmentation


@AUGMENTATIONS.register("compose")
class Compose(Augmentation):
    """Apply ``augmentations`` left to right, all drawing from the same ``generator``.

    Items are :class:`Augmentation` objects or registry specs (``"random_flip"`` or
    ``{"id": "gaussian_noise", "std": 0.05}``), so a Compose round-trips through its JSON spec.
    """

    def __init__(self, augmentations: Sequence[Augmentation | str | Mapping[str, Any]]) -> None:
        super().__init__()
        if isinstance(augmentations, str | Mapping | Augmentation):
            raise TypeError("Compose: augmentations must be a list of augmentations or specs")
        built: list[Augmentation] = []
        for item in augmentations:
            if isinstance(item, Augmentation):
                built.append(item)
            elif isinstance(item, str | Mapping):
                built.append(AUGMENTATIONS.build(item))
            else:
                raise TypeError(
                    f"Compose: expected an Augmentation or a spec, got {type(item).__qualname__}"
                )
        self.augmentations = nn.ModuleList(built)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for aug in self.augmentations:
            x = aug(x, generator)
        return x

    def __len__(self) -> int:
        return len(self.augmentations)
