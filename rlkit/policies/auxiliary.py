"""PPG's actor-critic: separate policy and value networks plus an auxiliary value head on the
policy network (Cobbe et al. 2020, "Phasic Policy Gradient", the "dual" architecture)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gymnasium import spaces
from torch import Tensor, nn

from rlkit.distributions.base import ActionDistribution, Distribution
from rlkit.encoders.base import Encoder
from rlkit.policies.base import POLICIES
from rlkit.policies.decoupled import PartSpec, SeparateActorCritic
from rlkit.types import Obs
from rlkit.utils.nn import orthogonal_init


@POLICIES.register("auxiliary_actor_critic")
class AuxiliaryActorCritic(SeparateActorCritic):
    """Policy network (encoder, trunk, action head, auxiliary value head) and a separate value
    network. The auxiliary head is trained only in PPG's auxiliary phase, distilling value
    information into the policy features; :meth:`value` is the value network's estimate."""

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | PartSpec = None,
        value_encoder: Encoder | PartSpec = None,
        distribution: Distribution | PartSpec = None,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "tanh",
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            encoder=encoder,
            value_encoder=value_encoder,
            distribution=distribution,
            hidden_sizes=hidden_sizes,
            activation=activation,
        )
        self.aux_value_head = orthogonal_init(nn.Linear(self.actor_dim, 1), gain=1.0)

    def actor_modules(self) -> list[nn.Module]:
        return [*super().actor_modules(), self.aux_value_head]

    def aux_value(self, obs: Obs) -> Tensor:
        """The policy network's auxiliary value estimate ``[B]``."""
        out: Tensor = self.aux_value_head(self.actor_features(obs)).squeeze(-1)
        return out

    def actor_forward(self, obs: Obs) -> tuple[ActionDistribution, Tensor]:
        """One policy-network pass: the action distribution and the auxiliary value ``[B]``."""
        features = self.actor_features(obs)
        dist = self.distribution(self.action_head(features))
        return dist, self.aux_value_head(features).squeeze(-1)


__all__ = ["AuxiliaryActorCritic"]
