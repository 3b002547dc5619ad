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


def checked_conv_output_dim(net: nn.Module, shape: tuple[int, int, int], owner: str) -> int:
    """:func:`conv_output_dim`, with a clear error when the frame is too small for ``net``."""
    try:
        size = conv_output_dim(net, shape)
    except RuntimeError as err:
        raise ValueError(
            f"{owner}: frames of shape {shape} are too small for its convolutions ({err})"
        ) from None
    if size == 0:
        raise ValueError(f"{owner}: frames of shape {shape} are too small for its convolutions")
    return size


class ConvEncoder(Encoder):
    """Shared tail of the image encoders: ``convs`` (ending in a flatten), then a
    ``Linear + ReLU`` head to ``feature_dim`` (or the flat features when it is None); uint8
    frames are scaled by 1/255 first. Subclasses build ``convs`` and call :meth:`finish`."""

    convs: nn.Module
    head: nn.Module

    def finish(self, convs: nn.Module, feature_dim: int | None, owner: str) -> None:
        """Install ``convs`` and the head, sized from the observation space."""
        shape = check_image_space(self.observation_space, owner)
        self.convs = convs
        n_flat = checked_conv_output_dim(convs, shape, owner)
        if feature_dim is None:
            self.head = nn.Identity()
            self.feature_dim = n_flat
        else:
            self.head = nn.Sequential(
                orthogonal_init(nn.Linear(n_flat, int(feature_dim))), nn.ReLU()
            )
            self.feature_dim = int(feature_dim)
        self._scale = str(self.observation_space.dtype) == "uint8"

    def scale(self, obs: Tensor) -> Tensor:
        """Float input for the convolutions (uint8 frames divided by 255)."""
        x = obs.float()
        return x / 255.0 if self._scale else x

    def forward(self, obs: Tensor) -> Tensor:  # type: ignore[override]
        out: Tensor = self.head(self.convs(self.scale(obs)))
        return out


@ENCODERS.register("nature_cnn")
class NatureCNN(ConvEncoder):
    """The DQN Nature CNN (Mnih et al. 2015): 3 convs + linear, ReLU; uint8 input scaled /255."""

    def __init__(self, observation_space: spaces.Space[Any], feature_dim: int = 512) -> None:
        c, _, _ = check_image_space(observation_space, "NatureCNN")
        super().__init__(observation_space, feature_dim)
        convs = nn.Sequential(
            orthogonal_init(nn.Conv2d(c, 32, 8, stride=4)),
            nn.ReLU(),
            orthogonal_init(nn.Conv2d(32, 64, 4, stride=2)),
            nn.ReLU(),
            orthogonal_init(nn.Conv2d(64, 64, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.finish(convs, feature_dim, "NatureCNN")
