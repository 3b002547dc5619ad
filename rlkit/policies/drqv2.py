"""DrQ-v2's actor-critic (Yarats et al. 2021, "Mastering Visual Continuous Control: Improved
Data-Augmented Reinforcement Learning"), as in ``facebookresearch/drqv2`` (``Actor``,
``Critic``): one image encoder, then an actor and twin critics that each start with their own
``Linear -> LayerNorm -> Tanh`` trunk on the encoder's representation.

Unlike :class:`~rlkit.policies.twin_q.DeterministicActorCritic`, whose critics read the encoder
features directly, the trunks here sit between the (large, un-projected) convolutional
representation and the heads, and the critic's trunk belongs to the critic (its target copy
has one too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.configurable import build_primitive
from rlkit.distributions.squashed import TruncatedNormal, TruncatedNormalDist
from rlkit.encoders.base import Encoder
from rlkit.encoders.drq import DrQCNN
from rlkit.policies.actor_critic import check_encoder
from rlkit.policies.base import POLICIES, Policy
from rlkit.policies.ensemble import EnsembleLinear, EnsembleMLP
from rlkit.spaces import check_space
from rlkit.types import Obs, PolicyState
from rlkit.utils.nn import orthogonal_init


def _trunk(in_dim: int, feature_dim: int) -> nn.Sequential:
    """DrQ-v2's trunk: ``Linear -> LayerNorm -> Tanh``."""
    return nn.Sequential(
        orthogonal_init(nn.Linear(in_dim, feature_dim), gain=1.0),
        nn.LayerNorm(feature_dim),
        nn.Tanh(),
    )


def _mlp(in_dim: int, hidden_sizes: Sequence[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [orthogonal_init(nn.Linear(in_dim, size), gain=1.0), nn.ReLU()]
        in_dim = size
    layers.append(orthogonal_init(nn.Linear(in_dim, out_dim), gain=1.0))
    return nn.Sequential(*layers)


def _orthogonal_ensemble(module: nn.Module) -> None:
    """DrQ-v2's ``weight_init`` for ensemble layers: each member orthogonal (gain 1), bias 0."""
    for layer in module.modules():
        if isinstance(layer, EnsembleLinear):
            with torch.no_grad():
                for member in layer.weight:  # [in, out]; nn.Linear's weight is its transpose
                    nn.init.orthogonal_(member.T)
                layer.bias.zero_()


class TrunkedCritic(nn.Module):
    """``Q_e(s, a) = MLP_e([trunk(repr), a])`` for ``e`` in an ensemble (twin by default)."""

    def __init__(
        self,
        repr_dim: int,
        action_dim: int,
        feature_dim: int,
        hidden_sizes: Sequence[int],
        num_critics: int,
    ) -> None:
        super().__init__()
        self.trunk = _trunk(repr_dim, feature_dim)
        self.q = EnsembleMLP(num_critics, feature_dim + action_dim, hidden_sizes, 1, "relu")
        _orthogonal_ensemble(self.q)

    def forward(
        self, representation: Tensor, actions: Tensor, detach_params: bool = False
    ) -> Tensor:
        """``[E, B]`` Q-values of normalised ``actions`` ``[B, A]``; ``detach_params`` keeps the
        ensemble's weights out of autograd (the actor's loss only needs d Q / d a)."""
        h = torch.cat([self.trunk(representation), actions], dim=-1)
        out: Tensor = self.q(h, detach_params)
        return out.squeeze(-1)


@POLICIES.register("drqv2_actor_critic")
class DrQv2ActorCritic(Policy):
    """Encoder (default :class:`~rlkit.encoders.DrQCNN` without projection), a deterministic
    ``tanh`` actor read through a :class:`~rlkit.distributions.TruncatedNormal` with an explicit
    std, and ``num_critics`` Q critics (:class:`TrunkedCritic`).

    - ``feature_dim`` (50) is the width of each trunk; ``hidden_sizes`` (``(1024, 1024)``) the
      ReLU layers of the actor and of each critic, as in the paper.
    - The actor and the critics work in the normalised box ``[-1, 1]^A``
      (:meth:`normalize_actions` maps stored env actions there, :meth:`to_env` back), so any
      Box with finite bounds works.
    - ``std`` is the exploration std used by ``act(deterministic=False)`` outside training (the
      final value of DrQ-v2's schedule); the agent passes the scheduled std explicitly.
    - Initialisation as DrQ-v2's ``weight_init``: orthogonal linear layers (gain 1, zero bias),
      the encoder's own (orthogonal convolutions), default LayerNorm.
    """

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | dict[str, Any] | None = None,
        feature_dim: int = 50,
        hidden_sizes: Sequence[int] = (1024, 1024),
        num_critics: int = 2,
        std: float = 0.1,
    ) -> None:
        name = type(self).__name__
        check_space(action_space, (spaces.Box,), "action space", name)
        assert isinstance(action_space, spaces.Box)
        low = np.asarray(action_space.low, dtype=np.float64).reshape(-1)
        high = np.asarray(action_space.high, dtype=np.float64).reshape(-1)
        if not (np.isfinite(low).all() and np.isfinite(high).all() and (high > low).all()):
            raise ValueError(
                f"{name} needs a Box action space with finite bounds (high > low), got "
                f"{action_space!r}; rescale the env's actions (gymnasium.wrappers.RescaleAction)"
            )
        if int(feature_dim) < 1 or int(num_critics) < 1 or any(int(s) < 1 for s in hidden_sizes):
            raise ValueError(
                f"{name}: feature_dim, num_critics and hidden_sizes must be >= 1, got "
                f"{feature_dim}, {num_critics}, {list(hidden_sizes)}"
            )
        if not std > 0:
            raise ValueError(f"{name}: std must be > 0, got {std!r}")
        super().__init__(observation_space, action_space)
        enc = build_primitive(
            "encoder", encoder, Encoder, name, observation_space=observation_space
        )
        enc = enc if enc is not None else DrQCNN(observation_space)
        check_encoder(enc, observation_space, name)
        self.encoder = enc
        self.action_dim = int(low.size)
        self.action_shape = tuple(action_space.shape)
        self.feature_dim = int(feature_dim)
        self.hidden_sizes = [int(s) for s in hidden_sizes]
        self.num_critics = int(num_critics)
        self.std = float(std)
        self.actor = nn.Sequential(
            _trunk(enc.feature_dim, self.feature_dim),
            _mlp(self.feature_dim, self.hidden_sizes, self.action_dim),
            nn.Tanh(),
        )
        self.critic = TrunkedCritic(
            enc.feature_dim, self.action_dim, self.feature_dim, self.hidden_sizes, self.num_critics
        )
        unit = spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32)
        self.distribution = TruncatedNormal(unit, std=self.std)
        as_tensor = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        self.register_buffer("action_low", as_tensor(low))
        self.register_buffer("action_high", as_tensor(high))
        self.register_buffer("action_loc", as_tensor((high + low) / 2))
        self.register_buffer("action_scale", as_tensor((high - low) / 2))
        self.action_low: Tensor
        self.action_high: Tensor
        self.action_loc: Tensor
        self.action_scale: Tensor

    # ----------------------------------------------------------------- parts
    def features(self, obs: Obs) -> Tensor:
        """The encoder's representation ``[B, repr_dim]``."""
        return self.encoder(obs)

    def action_distribution(
        self, features: Tensor, std: float | None = None, clip: float | None = None
    ) -> TruncatedNormalDist:
        """``TruncatedNormal(tanh(actor(features)), std)`` over normalised actions; ``clip``
        bounds the noise (DrQ-v2's ``stddev_clip`` in the updates, none when acting)."""
        mean: Tensor = self.actor(features)
        return self.distribution(mean, std=self.std if std is None else std, clip=clip)

    def q_values(self, features: Tensor, actions: Tensor, detach_params: bool = False) -> Tensor:
        """All critics: ``[E, B]`` for normalised ``actions`` ``[B, A]``."""
        out: Tensor = self.critic(features, actions, detach_params)
        return out

    def actor_modules(self) -> list[nn.Module]:
        """Modules trained by the actor loss: the actor (its trunk included)."""
        return [self.actor]

    def critic_modules(self) -> list[nn.Module]:
        """Modules trained by the critic loss: the encoder and the critics."""
        return [self.encoder, self.critic]

    # ----------------------------------------------------------------- action boxes
    def normalize_actions(self, actions: Tensor) -> Tensor:
        """Env actions ``[B, *shape]`` -> ``[B, A]`` in ``[-1, 1]``."""
        return (actions.reshape(actions.shape[0], -1) - self.action_loc) / self.action_scale

    def to_env(self, actions: Tensor) -> Tensor:
        """Normalised ``[B, A]`` actions -> env actions ``[B, *shape]`` clipped to the bounds."""
        out = torch.addcmul(self.action_loc, actions, self.action_scale)
        out = torch.maximum(torch.minimum(out, self.action_high), self.action_low)
        return out.reshape(out.shape[0], *self.action_shape)

    # ----------------------------------------------------------------- acting
    def forward(self, obs: Obs) -> Tensor:
        return self.to_env(self.action_distribution(self.features(obs)).mode())

    def act(
        self,
        obs: Obs,
        deterministic: bool = False,
        state: PolicyState = None,
        episode_start: Tensor | None = None,
    ) -> tuple[Tensor, PolicyState]:
        dist = self.action_distribution(self.features(obs))
        return self.to_env(dist.mode() if deterministic else dist.sample()), None


__all__ = ["DrQv2ActorCritic", "TrunkedCritic"]
