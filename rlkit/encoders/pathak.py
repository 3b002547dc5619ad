"""The ICM paper's image encoder (Pathak et al. 2017, "Curiosity-driven Exploration by
Self-supervised Prediction"), as in the authors' code ``pathak22/noreward-rl``
(``src/model.py``, ``universeHead``)."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from torch import nn

from rlkit.encoders.base import ENCODERS
from rlkit.encoders.cnn import ConvEncoder, check_image_space
from rlkit.utils.nn import orthogonal_init


@ENCODERS.register("pathak_cnn")
class PathakCNN(ConvEncoder):
    """ICM / universe-starter-agent encoder (Pathak et al. 2017): 4 x (conv 32, 3x3, stride 2,
    padding 1, ELU), flatten; uint8 input scaled /255 (as the authors' ``_process_frame42``).

    ``feature_dim=None`` (default) returns the flattened conv features, as in the paper: 288 for
    42x42 frames (32 x 3 x 3). With ``feature_dim`` set, a ``Linear + ReLU`` projects them to that
    size (an rlkit addition, not in the paper). Padding 1 gives TF ``SAME``'s output sizes; on
    even sizes TF pads only bottom/right, so windows sit one pixel apart from the original.
    Orthogonal init (rlkit's PPO convention) replaces the original uniform Glorot-style init.
    """

    def __init__(
        self, observation_space: spaces.Space[Any], feature_dim: int | None = None
    ) -> None:
        c, _, _ = check_image_space(observation_space, "PathakCNN")
        super().__init__(observation_space, feature_dim)
        layers: list[nn.Module] = []
        in_ch = c
        for _ in range(4):
            layers += [orthogonal_init(nn.Conv2d(in_ch, 32, 3, stride=2, padding=1)), nn.ELU()]
            in_ch = 32
        self.finish(nn.Sequential(*layers, nn.Flatten()), feature_dim, "PathakCNN")
