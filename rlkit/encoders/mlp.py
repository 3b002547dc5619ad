"""Vector encoders: Identity (flatten) and MLP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Rule, count
from rlkit.encoders.base import ENCODERS, Encoder
from rlkit.spaces import check_space, flat_dim
from rlkit.utils.nn import activation_class, orthogonal_init


@ENCODERS.register("identity")
class Identity(Encoder):
    """Flattens a Box observation and casts it to float; ``feature_dim`` is the flat size."""

    def __init__(
        self, observation_space: spaces.Space[Any], feature_dim: int | None = None
    ) -> None:
        check_space(observation_space, (spaces.Box,), "observation space", "Identity encoder")
        size = flat_dim(observation_space)
        if feature_dim is not None and int(feature_dim) != size:
            raise ValueError(
                f"Identity encoder: feature_dim={feature_dim} must equal the flattened "
                f"observation size {size} (or be omitted)"
            )
        super().__init__(observation_space, size)
        self._scale = str(observation_space.dtype) == "uint8"

    def forward(self, obs: Tensor) -> Tensor:  # type: ignore[override]
        if obs.dim() == 2 and obs.dtype == torch.float32:  # already flat float32 (common)
            return obs
        x = obs.flatten(1).float()
        return x / 255.0 if self._scale else x


@ENCODERS.register("mlp")
class MLP(Encoder):
    """Flatten, then ``Linear -> activation`` per hidden size, then a final ``Linear`` to
    ``feature_dim`` followed by the activation."""

    argument_rules: ClassVar[dict[str, Rule]] = {"feature_dim": count(integer=True)}

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        feature_dim: int = 64,
        hidden_sizes: Sequence[int] = (64,),
        activation: str = "tanh",
    ) -> None:
        check_space(observation_space, (spaces.Box,), "observation space", "MLP encoder")
        super().__init__(observation_space, feature_dim)
        self.net = mlp(flat_dim(observation_space), [*hidden_sizes, feature_dim], activation)
        self._scale = str(observation_space.dtype) == "uint8"

    def forward(self, obs: Tensor) -> Tensor:  # type: ignore[override]
        x = obs.flatten(1).float()
        out: Tensor = self.net(x / 255.0 if self._scale else x)
        return out


def mlp(
    in_dim: int,
    sizes: Sequence[int],
    activation: str = "tanh",
    activate_last: bool = True,
    layer_norm: bool = False,
) -> nn.Sequential:
    """``Linear/activation`` stack with orthogonal init (gain sqrt(2)); empty sizes -> identity.
    ``layer_norm`` puts an ``nn.LayerNorm`` after every ``Linear`` (before its activation)."""
    act = activation_class(activation)
    layers: list[nn.Module] = []
    prev = in_dim
    for i, size in enumerate(sizes):
        layers.append(orthogonal_init(nn.Linear(prev, int(size)), gain=2**0.5))
        if layer_norm:
            layers.append(nn.LayerNorm(int(size)))
        if activate_last or i < len(sizes) - 1:
            layers.append(act())
        prev = int(size)
    return nn.Sequential(*layers)
