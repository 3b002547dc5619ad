"""Actor-critics with separate policy and value networks (DAAC, PPG).

:class:`SeparateActorCritic` is the shared layout: one encoder and trunk for the actor, another
encoder and trunk for the critic, nothing shared. :class:`DecoupledActorCritic` adds DAAC's
advantage head on the policy network (Raileanu & Fergus 2021, "Decoupling Value and Policy for
Generalization in Reinforcement Learning").
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.configurable import build_from_spec, build_primitive
from rlkit.distributions.base import ActionDistribution, Distribution
from rlkit.distributions.default import default_distribution
from rlkit.encoders.base import Encoder
from rlkit.encoders.default import default_encoder
from rlkit.encoders.mlp import mlp
from rlkit.policies.actor_critic import check_distribution, check_encoder
from rlkit.policies.base import POLICIES, ActorCriticOutput, ActorCriticPolicy
from rlkit.spaces import is_image_space
from rlkit.types import Obs, PolicyState
from rlkit.utils.nn import orthogonal_init

#: an encoder or distribution given as an object, a registered id or an ``{"id": ...}`` spec.
PartSpec = Any


def fresh_copy(encoder: Encoder) -> Encoder:
    """A new encoder of the same architecture: rebuilt from its spec (fresh initialisation)
    when registered, else a deep copy."""
    if type(encoder).__dict__.get("registry_id") is not None:
        try:
            rebuilt = build_from_spec("encoder", encoder.spec())
        except (TypeError, ValueError):
            rebuilt = None
        if isinstance(rebuilt, Encoder):
            return rebuilt
    return copy.deepcopy(encoder)


class SeparateActorCritic(ActorCriticPolicy):
    """Actor and critic with separate encoders and trunks (no parameter is shared).

    ``encoder`` feeds the actor; ``value_encoder`` (default: a fresh encoder of the same
    architecture as ``encoder``) feeds the critic. ``hidden_sizes=None`` picks ``(64, 64)`` for
    vector observations and no trunk for images, as :class:`~rlkit.policies.ActorCritic`.
    """

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
        super().__init__(observation_space, action_space)
        name = type(self).__name__
        enc = build_primitive(
            "encoder", encoder, Encoder, name, observation_space=observation_space
        )
        enc = enc if enc is not None else default_encoder(observation_space)
        venc = build_primitive(
            "encoder", value_encoder, Encoder, name, observation_space=observation_space
        )
        venc = venc if venc is not None else fresh_copy(enc)
        if venc is enc:
            raise ValueError(f"{name}: encoder and value_encoder must be separate modules")
        dist = build_primitive(
            "distribution", distribution, Distribution, name, action_space=action_space
        )
        dist = dist if dist is not None else default_distribution(action_space)
        check_encoder(enc, observation_space, name)
        check_encoder(venc, observation_space, name)
        check_distribution(dist, action_space, name)
        if hidden_sizes is None:
            hidden_sizes = () if is_image_space(observation_space) else (64, 64)
        sizes = [int(s) for s in hidden_sizes]
        self.encoder = enc
        self.value_encoder = venc
        self.distribution = dist
        self.actor_trunk = mlp(enc.feature_dim, sizes, activation)
        self.critic_trunk = mlp(venc.feature_dim, sizes, activation)
        self.actor_dim = sizes[-1] if sizes else enc.feature_dim
        critic_dim = sizes[-1] if sizes else venc.feature_dim
        self.action_head = orthogonal_init(nn.Linear(self.actor_dim, dist.num_params), gain=0.01)
        self.value_head = orthogonal_init(nn.Linear(critic_dim, 1), gain=1.0)

    # ----------------------------------------------------------------- parameter groups
    def actor_modules(self) -> list[nn.Module]:
        """Modules of the policy network (subclasses add their extra heads)."""
        return [self.encoder, self.actor_trunk, self.action_head, self.distribution]

    def critic_modules(self) -> list[nn.Module]:
        """Modules of the value network."""
        return [self.value_encoder, self.critic_trunk, self.value_head]

    # ----------------------------------------------------------------- forward passes
    def actor_features(self, obs: Obs) -> Tensor:
        """Policy-network features ``[B, actor_dim]`` (input of the action head)."""
        out: Tensor = self.actor_trunk(self.encoder(obs))
        return out

    def action_params(self, obs: Obs) -> Tensor:
        """Action-head outputs ``[B, num_params]`` (what the distribution family wraps)."""
        out: Tensor = self.action_head(self.actor_features(obs))
        return out

    def forward(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> ActorCriticOutput:
        return ActorCriticOutput(self.distribution(self.action_params(obs)), self.value(obs))

    def action_distribution(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> tuple[ActionDistribution, PolicyState]:
        return self.distribution(self.action_params(obs)), None

    def value(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> Tensor:
        out: Tensor = self.value_head(self.critic_trunk(self.value_encoder(obs))).squeeze(-1)
        return out


def action_input_dim(action_space: spaces.Space[Any]) -> int:
    """Width of :func:`encode_actions`' output for ``action_space``."""
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(action_space.nvec.sum())
    if isinstance(action_space, spaces.Box | spaces.MultiBinary):
        return int(torch.Size(action_space.shape).numel())
    raise TypeError(f"no action encoding for action space {action_space!r}")


def encode_actions(actions: Tensor, action_space: spaces.Space[Any]) -> Tensor:
    """Stored raw actions as float features: one-hot (Discrete), concatenated one-hots
    (MultiDiscrete, zero-based) or the flattened values (Box, MultiBinary)."""
    if isinstance(action_space, spaces.Discrete):
        return F.one_hot(actions.long().reshape(-1), int(action_space.n)).float()
    if isinstance(action_space, spaces.MultiDiscrete):
        flat = actions.long().reshape(actions.shape[0], -1)
        nvec = [int(n) for n in action_space.nvec.reshape(-1)]
        return torch.cat([F.one_hot(flat[:, i], n).float() for i, n in enumerate(nvec)], dim=-1)
    return actions.reshape(actions.shape[0], -1).float()


@POLICIES.register("decoupled_actor_critic")
class DecoupledActorCritic(SeparateActorCritic):
    """DAAC's policy (Raileanu & Fergus 2021): separate policy and value networks; the policy
    network also predicts the advantage ``A(s, a)`` from its features concatenated with the
    encoded action (one-hot for discrete actions), so its representation is trained without
    the value loss that overfits to level-specific details."""

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
        in_dim = self.actor_dim + action_input_dim(action_space)
        self.advantage_head = orthogonal_init(nn.Linear(in_dim, 1), gain=1.0)

    def actor_modules(self) -> list[nn.Module]:
        return [*super().actor_modules(), self.advantage_head]

    def evaluate_advantage(
        self, obs: Obs, actions: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, ActionDistribution]:
        """One policy-network pass: ``(log_prob [B], entropy [B], advantage [B], dist)`` of the
        stored raw ``actions``."""
        features = self.actor_features(obs)
        dist = self.distribution(self.action_head(features))
        adv_in = torch.cat([features, encode_actions(actions, self.action_space)], dim=-1)
        advantage = self.advantage_head(adv_in).squeeze(-1)
        return dist.log_prob(actions), dist.entropy(), advantage, dist

    def advantage(self, obs: Obs, actions: Tensor) -> Tensor:
        """Predicted advantages ``[B]`` of raw ``actions``."""
        return self.evaluate_advantage(obs, actions)[2]


__all__ = [
    "DecoupledActorCritic",
    "SeparateActorCritic",
    "action_input_dim",
    "encode_actions",
]
