"""Encoder contract: observations (tensor or dict of tensors) -> features ``[B, feature_dim]``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Rule, Sizes, count
from rlkit.configurable import Configurable
from rlkit.registry import Registry
from rlkit.types import Obs
from rlkit.utils.nn import ACTIVATION


class Encoder(Configurable, nn.Module, ABC):
    """Base class of all encoders.

    Built from ``(observation_space, feature_dim)``; ``forward`` takes a batch shaped like the
    space with a leading batch axis (uint8 images stay uint8: scaling happens inside) and returns
    float features ``[B, feature_dim]``. Subclasses must set :attr:`feature_dim`.
    """

    kind = "encoder"
    #: arguments shared by the encoders (each applies where the class takes it).
    argument_rules: ClassVar[dict[str, Rule]] = {
        "feature_dim": count(integer=True, none=True),
        "hidden_sizes": Sizes(),
        "channels": Sizes(nonempty=True),
        "cnn_feature_dim": count(integer=True),
        "activation": ACTIVATION,
    }

    def __init__(self, observation_space: spaces.Space[Any], feature_dim: int | None) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.feature_dim: int = int(feature_dim) if feature_dim is not None else 0

    @abstractmethod
    def forward(self, obs: Obs) -> Tensor:
        """Encode a batch of observations into ``[B, feature_dim]`` features."""

    def __call__(self, obs: Obs) -> Tensor:  # typed shortcut; keeps hooks via nn.Module
        out: Tensor = super().__call__(obs)
        return out


ENCODERS: Registry[Encoder] = Registry("encoder", Encoder)
