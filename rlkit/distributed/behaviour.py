"""Behaviours: how an actor turns its copy of the policy into actions, and what it adds to
an unroll.

An :class:`~rlkit.distributed.ActorWorker` asks its behaviour for the action distribution at
every step and, after the unroll, for extra per-step data (``[T, B, ...]`` tensors that travel
in :attr:`~rlkit.distributed.TrajectoryBatch.extras`). The default samples the policy's own
distribution and adds nothing (IMPALA, APPO). :class:`EpsilonGreedy` acts on a Q-value
policy with a fixed exploration rate, so every actor can explore at its own rate (Ape-X).
Behaviours are pickled into the actor's spec: keep them small and importable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rlkit.backends.capability import overridden
from rlkit.distributions.base import ActionDistribution
from rlkit.types import Obs, PolicyState

from .trajectory import TrajectoryBatch


class Behaviour:
    """Sample the policy's own action distribution; add nothing to unrolls."""

    def action_distribution(self, policy: Any, obs: Obs) -> ActionDistribution:
        """The distribution actions are sampled from (and their behaviour log-probs taken)."""
        dist, _ = policy.action_distribution(obs)
        return dist

    def act_distribution(
        self, policy: Any, obs: Obs, state: PolicyState, episode_start: Tensor
    ) -> tuple[ActionDistribution, PolicyState]:
        """The distribution and the next recurrent state (what actors call). Feed-forward
        policies go through :meth:`action_distribution`; a recurrent one samples its own
        distribution with its state. A subclass that changes :meth:`action_distribution`
        must also override this method to act with a recurrent policy (else: TypeError)."""
        if not getattr(policy, "recurrent", False):
            return self.action_distribution(policy, obs), None
        if overridden(self, Behaviour, "action_distribution"):
            raise TypeError(
                f"{type(self).__name__} changes action_distribution but not act_distribution: "
                "it cannot act with the recurrent policy "
                f"{type(policy).__name__} (override act_distribution to carry the state)"
            )
        dist, next_state = policy.action_distribution(obs, state, episode_start)
        return dist, next_state

    def annotate(self, policy: Any, data: TrajectoryBatch) -> dict[str, Tensor]:
        """Extra ``[T, B, ...]`` tensors for a finished unroll (hook; default none)."""
        return {}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class EpsilonGreedy(Behaviour):
    """Epsilon-greedy on a policy with ``q_values(obs) -> [B, n]``: the greedy action with
    probability ``1 - epsilon + epsilon / n``, each other one with ``epsilon / n``. As a
    categorical distribution, so unrolls carry the behaviour's true log-probabilities."""

    def __init__(self, epsilon: float) -> None:
        if not 0.0 <= float(epsilon) <= 1.0:
            raise ValueError(f"EpsilonGreedy: epsilon must be in [0, 1], got {epsilon!r}")
        self.epsilon = float(epsilon)

    def action_distribution(self, policy: Any, obs: Obs) -> ActionDistribution:
        q = policy.q_values(obs)
        n = q.shape[-1]
        probs = torch.full_like(q, self.epsilon / n)
        probs.scatter_add_(
            -1, q.argmax(-1, keepdim=True), probs.new_full((q.shape[0], 1), 1.0 - self.epsilon)
        )
        dist: ActionDistribution = policy.distribution(probs.clamp_min(1e-30).log())
        return dist


__all__ = ["Behaviour", "EpsilonGreedy"]
