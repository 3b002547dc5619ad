"""The IMPALA deep residual encoder (Espeholt et al. 2018), as in openai/baselines'
``build_impala_cnn`` used by the Procgen benchmark (Cobbe et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.encoders.base import ENCODERS
from rlkit.encoders.cnn import ConvEncoder, check_image_space
from rlkit.utils.nn import orthogonal_init


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with 3x3 same-size convs (IMPALA, Espeholt et al.)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv0 = orthogonal_init(nn.Conv2d(channels, channels, 3, padding=1))
        self.conv1 = orthogonal_init(nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv1(F.relu(self.conv0(F.relu(x))))
        return x + out


class ConvSequence(nn.Sequential):
    """conv 3x3 -> max-pool 3x3 stride 2 (padding 1) -> 2 residual blocks (IMPALA)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            orthogonal_init(nn.Conv2d(in_channels, out_channels, 3, padding=1)),
            nn.MaxPool2d(3, stride=2, padding=1),
            ResidualBlock(out_channels),
            ResidualBlock(out_channels),
        )


@ENCODERS.register("impala_resnet")
class ImpalaResNet(ConvEncoder):
    """IMPALA "deep" network (Espeholt et al. 2018), Procgen variant: one
    :class:`ConvSequence` per entry of ``channels`` (default 16, 32, 32), then ReLU, flatten and
    ``Linear(feature_dim) + ReLU``; uint8 input scaled /255.

    ``feature_dim=None`` returns the ReLU'd flattened conv features (no linear layer). The flat
    size comes from the observation space (2048 for 64x64 frames). PyTorch's pool padding 1 gives
    TF ``SAME``'s output sizes (on even sizes TF pads bottom/right only). Orthogonal init (rlkit's
    PPO convention) replaces baselines' Glorot-uniform defaults.
    """

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        feature_dim: int | None = 256,
        channels: Sequence[int] = (16, 32, 32),
    ) -> None:
        c, _, _ = check_image_space(observation_space, "ImpalaResNet")
        if not channels or any(int(d) < 1 for d in channels):
            raise ValueError(f"ImpalaResNet: channels must be positive ints, got {channels!r}")
        super().__init__(observation_space, feature_dim)
        seqs: list[nn.Module] = []
        in_ch = c
        for depth in channels:
            seqs.append(ConvSequence(in_ch, int(depth)))
            in_ch = int(depth)
        self.finish(nn.Sequential(*seqs, nn.ReLU(), nn.Flatten()), feature_dim, "ImpalaResNet")
