"""DrQ-v2's image encoder (Yarats et al. 2021, "Mastering Visual Continuous Control: Improved
Data-Augmented Reinforcement Learning"), as in ``facebookresearch/drqv2`` (``Encoder``)."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from torch import Tensor, nn

from rlkit.encoders.base import ENCODERS, Encoder
from rlkit.encoders.cnn import check_image_space, checked_conv_output_dim
from rlkit.utils.nn import orthogonal_init


@ENCODERS.register("drq_cnn")
class DrQCNN(Encoder):
    """DrQ-v2 encoder (Yarats et al. 2021): uint8 input mapped to ``obs / 255 - 0.5``, conv 32
    3x3 stride 2, then 3 x conv 32 3x3 stride 1 (no padding), ReLU after each, flatten.

    ``feature_dim=None`` (default) returns that representation (``repr_dim``: 32 x 35 x 35 for
    84x84 frames). With ``feature_dim`` set, ``Linear + LayerNorm + Tanh`` projects it: DrQ-v2's
    actor/critic ``trunk``, here shared by actor and critic. Init as drqv2's ``weight_init``:
    orthogonal, gain sqrt(2) for convs, 1 for the linear, zero biases. Non-uint8 observations are
    used as given (no scaling or centring).
    """

    def __init__(
        self, observation_space: spaces.Space[Any], feature_dim: int | None = None
    ) -> None:
        c, h, w = check_image_space(observation_space, "DrQCNN")
        super().__init__(observation_space, feature_dim)
        gain = nn.init.calculate_gain("relu")
        self.convnet = nn.Sequential(
            orthogonal_init(nn.Conv2d(c, 32, 3, stride=2), gain=gain),
            nn.ReLU(),
            orthogonal_init(nn.Conv2d(32, 32, 3, stride=1), gain=gain),
            nn.ReLU(),
            orthogonal_init(nn.Conv2d(32, 32, 3, stride=1), gain=gain),
            nn.ReLU(),
            orthogonal_init(nn.Conv2d(32, 32, 3, stride=1), gain=gain),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.repr_dim = checked_conv_output_dim(self.convnet, (c, h, w), "DrQCNN")
        self.trunk: nn.Module = nn.Identity()
        if feature_dim is None:
            self.feature_dim = self.repr_dim
        else:
            self.trunk = nn.Sequential(
                orthogonal_init(nn.Linear(self.repr_dim, int(feature_dim)), gain=1.0),
                nn.LayerNorm(int(feature_dim)),
                nn.Tanh(),
            )
        self._scale = str(observation_space.dtype) == "uint8"

    def forward(self, obs: Tensor) -> Tensor:  # type: ignore[override]
        x = obs.float()
        if self._scale:
            x = x / 255.0 - 0.5
        out: Tensor = self.trunk(self.convnet(x))
        return out
