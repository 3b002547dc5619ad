"""gSDE for on-policy actor-critics (PPO, A2C, TRPO, ...), as Stable-Baselines3's
``ActorCriticPolicy(use_sde=True)``.

The actor's last hidden features ``z(s)`` (detached: Stable-Baselines3's on-policy
``learn_features=False``) drive the exploration: an action is ``mean(s) + z(s) @ W`` with the
``[latent, A]`` weights ``W ~ N(0, sigma^2)`` of :class:`~rlkit.policies.gsde.StateDependentNoise`,
drawn per env at the start of every rollout and, with ``sample_freq > 0``, every
``sample_freq`` steps (the on-policy loop redraws them). Within a draw the same state gives the
same perturbation, so the exploration is smooth in time. Log-probabilities and entropies are
those of the per-state marginal ``N(mean, z^2 @ sigma^2 + eps)``, unsquashed; actions are
clipped to the space's bounds for the env (stored unclipped), as for ``diag_gaussian``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Range, Rule
from rlkit.distributions.gaussian import DiagGaussian, DiagGaussianDist
from rlkit.encoders.base import Encoder
from rlkit.policies.actor_critic import ActorCritic
from rlkit.policies.base import POLICIES, ActorCriticOutput
from rlkit.policies.gsde import StateDependentNoise
from rlkit.types import Obs, PolicyState


class GSDEGaussianDist(DiagGaussianDist):
    """``N(mean, scale^2)`` whose :meth:`sample` is ``mean + z @ W`` with the current
    exploration draw (``noise`` computes that perturbation on demand)."""

    def __init__(self, mean: Tensor, scale: Tensor, latent: Tensor, sde: StateDependentNoise):
        super().__init__(mean, scale.log())
        self._latent = latent
        self._sde = sde

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            return self.mean + self._sde.explore(self._latent)


class StateDependentGaussian(DiagGaussian):
    """The action family of :class:`GSDEOnPolicyActorCritic`: the head gives the means, the
    standard deviation comes from the actor's features through :attr:`sde`
    (``forward(mean, latent)``); clipping to the bounds is ``diag_gaussian``'s."""

    def __init__(
        self, action_space: spaces.Space[Any], latent_dim: int, log_std_init: float = 0.0
    ) -> None:
        super().__init__(action_space, state_dependent_std=True)  # no log-std parameter
        self.sde = StateDependentNoise(latent_dim, self.dim, log_std_init)

    @property
    def num_params(self) -> int:
        return self.dim  # the means only

    def forward(self, params: Tensor, latent: Tensor | None = None) -> GSDEGaussianDist:
        if latent is None:
            raise ValueError(
                "StateDependentGaussian needs the actor's latent features: "
                "distribution(mean, latent)"
            )
        latent = latent.detach()
        return GSDEGaussianDist(params, self.sde.scale(latent), latent, self.sde)


@POLICIES.register("gsde_on_policy_actor_critic")
class GSDEOnPolicyActorCritic(ActorCritic):
    """:class:`ActorCritic` with gSDE exploration for on-policy agents (see the module doc):
    ``PPO(env, policy={"id": "gsde_on_policy_actor_critic", "log_std_init": -2,
    "sample_freq": 4})`` is Stable-Baselines3's ``PPO(use_sde=True, sde_sample_freq=4,
    policy_kwargs=dict(log_std_init=-2))``. ``log_std_init`` is ``log sigma`` at the start
    (Stable-Baselines3's on-policy default 0); ``sample_freq`` the rollout steps between two
    draws of the exploration weights (-1: one draw per rollout). Acting deterministically
    takes the mean."""

    argument_rules: ClassVar[dict[str, Rule]] = {
        "sample_freq": Range(1, integer=True, also=(-1,)),
        "log_std_init": Range(),
    }

    distribution: StateDependentGaussian

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        encoder: Encoder | str | Mapping[str, Any] | None = None,
        hidden_sizes: Sequence[int] | None = None,
        activation: str = "tanh",
        share_trunk: bool = False,
        ortho_init: bool = True,
        log_std_init: float = 0.0,
        sample_freq: int = -1,
    ) -> None:
        if not isinstance(action_space, spaces.Box):
            raise TypeError(
                "GSDEOnPolicyActorCritic: gSDE explores continuous actions; the action space "
                f"is {action_space!r}"
            )
        super().__init__(
            observation_space, action_space, encoder, None, hidden_sizes, activation,
            share_trunk, ortho_init,
        )  # fmt: skip
        head = self.action_head
        assert isinstance(head, nn.Linear)
        latent_dim = head.in_features
        self.distribution = StateDependentGaussian(action_space, latent_dim, float(log_std_init))
        self.sde.sample_freq = int(sample_freq)

    @property
    def sde(self) -> StateDependentNoise:
        """The exploration noise (its weights are redrawn by the on-policy loop)."""
        return self.distribution.sde

    def forward(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> ActorCriticOutput:
        features = self.encoder(obs)
        actor = self.actor_trunk(features)
        critic = actor if self.share_trunk else self.critic_trunk(features)
        dist = self.distribution.forward(self.action_head(actor), actor)
        return ActorCriticOutput(dist, self.value_head(critic).squeeze(-1), None)

    def action_distribution(
        self, obs: Obs, state: PolicyState = None, episode_start: Tensor | None = None
    ) -> tuple[GSDEGaussianDist, PolicyState]:
        actor = self.actor_trunk(self.encoder(obs))
        return self.distribution.forward(self.action_head(actor), actor), None
