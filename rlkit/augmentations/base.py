"""Augmentation contract: batched, shape- and dtype-preserving, reproducible transforms."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor, nn

from rlkit.config.rules import ListOf, OneOf, Range, Rule, count, finite, non_negative, unit
from rlkit.configurable import Configurable
from rlkit.registry import Registry


class Augmentation(Configurable, nn.Module, ABC):
    """Base class: ``forward(batch) -> batch`` with the same shape and dtype.

    Transforms act on the whole batch at once (no Python loop over samples), draw randomness
    from ``generator`` when one is given (reproducible), and apply one transform per sample to
    all of its channels, so stacked frames move together.
    """

    kind = "augmentation"
    #: arguments shared by the augmentations (each applies where the class takes it).
    argument_rules: ClassVar[dict[str, Rule]] = {
        "p": unit(),
        "channels_per_frame": OneOf((1, 3), none=True),
        "pad": count(0, integer=True),
        "std": non_negative(),
        "min_size": count(integer=True),
        "max_size": count(integer=True),
        "kernel_size": count(integer=True),
        "brightness": non_negative(),
        "contrast": non_negative(),
        "saturation": non_negative(),
        "hue": Range(0, 0.5),
        "low": finite(),
        "high": finite(),
        "angles": ListOf(finite(), nonempty=True),
    }

    @abstractmethod
    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Transform a batch ``[B, ...]``."""

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        out: Tensor = super().__call__(x, generator)
        return out


AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation", Augmentation)
