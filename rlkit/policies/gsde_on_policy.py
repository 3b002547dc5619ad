"""gSDE for on-policy actor-critics (PPO, A2C, TRPO, ...), as Stable-Baselines3's
``ActorCriticPolicy(use_sde=True)``: :class:`~rlkit.policies.ActorCritic` with the
``state_dependent_gaussian`` distribution (:mod:`rlkit.distributions.state_dependent`).

The actor's last hidden features ``z(s)`` (detached: Stable-Baselines3's on-policy
``learn_features=False``) drive the exploration: an action is ``mean(s) + z(s) @ W`` with the
``[latent, A]`` weights ``W ~ N(0, sigma^2)`` of
:class:`~rlkit.distributions.state_dependent.StateDependentNoise`,
drawn per env at the start of every rollout and, with ``sample_freq > 0``, every
``sample_freq`` steps (the on-policy loop redraws them). Within a draw the same state gives the
same perturbation, so the exploration is smooth in time. Log-probabilities and entropies are
those of the per-state marginal ``N(mean, z^2 @ sigma^2 + eps)``, unsquashed; actions are
clipped to the space's bounds for the env (stored unclipped), as for ``diag_gaussian``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from gymnasium import spaces

from rlkit.config.rules import Range, Rule
from rlkit.distributions.state_dependent import (
    GSDEGaussianDist,
    StateDependentGaussian,
    StateDependentNoise,
)
from rlkit.encoders.base import Encoder
from rlkit.policies.actor_critic import ActorCritic
from rlkit.policies.base import POLICIES


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
        super().__init__(
            observation_space, action_space, encoder,
            StateDependentGaussian(action_space, None, log_std_init, sample_freq), hidden_sizes,
            activation, share_trunk, ortho_init,
        )  # fmt: skip

    @property
    def sde(self) -> StateDependentNoise:
        """The exploration noise (its weights are redrawn by the on-policy loop)."""
        return self.distribution.sde


__all__ = ["GSDEGaussianDist", "GSDEOnPolicyActorCritic", "StateDependentGaussian"]
