"""Augmentation contract: batched, shape- and dtype-preserving, reproducible transforms."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from rlkit.configurable import Configurable
from rlkit.registry import Registry


class Augmentation(Configurable, nn.Module, ABC):
    """Base class: ``forward(batch) -> batch`` with the same shape and dtype.

    Transforms act on the whole batch at once (no Python loop over samples), draw randomness
    from ``generator`` when one is given (reproducible), and apply one transform per sample to
    all of its channels, so stacked frames move together.
    """

    kind = "augmentation"

    @abstractmethod
    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Transform a batch ``[B, ...]``."""

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        out: Tensor = super().__call__(x, generator)
        return out


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation", Augmentation)
