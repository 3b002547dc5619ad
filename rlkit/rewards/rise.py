"""Renyi State Entropy maximisation (Yuan et al. 2022, "Renyi State Entropy Maximization for
Exploration Acceleration in Reinforcement Learning", RISE; the authors' rllte code)."""

from __future__ import annotations

from typing import Any, ClassVar

from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import Range, Rule
from rlkit.rewards.base import INTRINSIC_REWARDS, RewardNorm
from rlkit.rewards.re3 import RE3


@INTRINSIC_REWARDS.register("rise")
class RISE(RE3):
    """Bonus = ``||y - y_kNN||^(1 - alpha)``: the k-NN estimate of the Renyi entropy of order
    ``alpha`` (``0 < alpha < 1``; default 0.5, ``k = 5``) of the state distribution.

    Same random-encoder embedding and in-batch k-NN as :class:`~rlkit.rewards.RE3`, whose
    ``log(1 + d)`` (the Shannon estimate) becomes a power of the distance; smaller ``alpha``
    weighs distant (rare) states more. The paper's VAE encoder is replaced by the fixed random
    encoder, as in the authors' rllte implementation.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "alpha": Range(0, 1, low_open=True, high_open=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        coef: float = 1.0,
        coef_decay: float = 0.0,
        reward_norm: RewardNorm = "rms",
        obs_norm: bool = False,
        latent_dim: int = 128,
        hidden_dim: int = 256,
        k: int = 5,
        average: bool = False,
        alpha: float = 0.5,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"RISE: alpha (the Renyi order) must be in (0, 1), got {alpha}")
        super().__init__(
            observation_space,
            action_space,
            coef,
            coef_decay,
            reward_norm,
            obs_norm,
            latent_dim,
            hidden_dim,
            k,
            average,
        )
        self.alpha = float(alpha)

    def transform(self, distances: Tensor) -> Tensor:
        return distances.pow(1.0 - self.alpha)
