"""Image encoders for uint8 channel-first frames."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.encoders.base import ENCODERS, Encoder
from rlkit.spaces import check_space
from rlkit.utils.nn import orthogonal_init


def check_image_space(observation_space: spaces.Space[Any], owner: str) -> tuple[int, int, int]:
    """Require a 3-d channel-first Box and return ``(C, H, W)``."""
    check_space(observation_space, (spaces.Box,), "observation space", owner)
    shape = tuple(observation_space.shape or ())
    if len(shape) != 3:
        raise ValueError(f"{owner} expects (C, H, W) image observations, got shape {shape}")
    c, h, w = shape
    if c > 16 and w <= 4:
        raise ValueError(
            f"{owner} expects channel-first frames (C, H, W) but got {shape}, which looks "
            "channel-last; wrap the env with rlkit.envs.ChannelFirst"
        )
    return int(c), int(h), int(w)


def conv_output_dim(net: nn.Module, shape: tuple[int, int, int]) -> int:
    """Flattened output size of ``net`` on one zero frame of ``shape`` (no hard-coded sizes)."""
    with torch.no_grad():
        return int(net(torch.zeros(1, *shape)).flatten(1).shape[1])


@ENCODERS.register("nature_cnn")
class NatureCNN(Encoder):
    """The DQN Nature CNN (Mnih et al. 2015): 3 convs + linear, ReLU; uint8 input scaled /255."""

    def __init__(self, observation_space: spaces.Space[Any], feature_dim: int = 512) -> None:
        c, h, w = check_image_space(observation_space, "NatureCNN")
        super().__init__(observation_space, feature_dim)
        self.convs = nn.Sequential(
            orthogonal_init(nn.Conv2d(c, 32, 8, stride=4)),
            nn.ReLU(),
            orthogonal_init(nn.Conv2d(32, 64, 4, stride=2)),
            nn.ReLU(),
            orthogonal_init(nn.Conv2d(64, 64, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
        )
        n_flat = conv_output_dim(self.convs, (c, h, w))
        self.head = nn.Sequential(orthogonal_init(nn.Linear(n_flat, feature_dim)), nn.ReLU())
        self._scale = str(observation_space.dtype) == "uint8"

    def forward(self, obs: Tensor) -> Tensor:  # type: ignore[override]
        x = obs.float()
        if self._scale:
            x = x / 255.0
        out: Tensor = self.head(self.convs(x))
        return out
