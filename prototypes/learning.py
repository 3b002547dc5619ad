"""Learning plumbing shared by the actor-critic prototypes: evaluating the policy on a batch
through the compute backend, so the loss terms get the same inputs on every backend."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rlkit.backends import kernels_active
from rlkit.backends.actor_critic_kernel import FusedActorCritic, FusedEvaluation
from rlkit.losses import Pullback
from rlkit.policies.base import ActorCriticPolicy
from rlkit.types import Obs, PolicyState


@dataclass
class PolicyEvaluation:
    """The policy on a batch of stored actions, as loss-term inputs: ``outputs`` holds
    ``log_prob``, ``value`` and (unless not asked for on a kernel) ``entropy``, each ``[B]``,
    plus whatever else a policy computes (e.g. DAAC's ``advantage_pred``). ``pullback`` is set
    when a kernel computed them without autograd (gradients then go through it); otherwise
    they carry their autograd graph."""

    outputs: dict[str, Tensor]
    pullback: Pullback | None = None

    @property
    def log_prob(self) -> Tensor:
        return self.outputs["log_prob"]

    @property
    def value(self) -> Tensor:
        return self.outputs["value"]

    @property
    def entropy(self) -> Tensor | None:
        return self.outputs.get("entropy")


class ActorCriticPullback:
    """Backpropagation through :class:`~rlkit.backends.actor_critic_kernel.FusedActorCritic`
    of derivatives with respect to log-prob, entropy and value."""

    keys = frozenset(("log_prob", "entropy", "value"))
    #: the kernel works in NumPy: array-agnostic loss terms run on NumPy views.
    numpy = True

    def __init__(self, kernel: FusedActorCritic, evaluation: FusedEvaluation) -> None:
        self.kernel = kernel
        self.evaluation = evaluation

    def __call__(self, seeds: Mapping[str, Tensor | np.ndarray | None]) -> None:
        d_log_prob = seeds.get("log_prob")
        if d_log_prob is None:
            d_log_prob = torch.zeros_like(self.evaluation.log_prob)
        self.kernel.backward(self.evaluation, d_log_prob, seeds.get("entropy"), seeds.get("value"))


def evaluate_actions(
    policy: ActorCriticPolicy,
    kernel: FusedActorCritic | None,
    obs: Obs,
    actions: Tensor,
    need_entropy: bool = True,
    state: PolicyState = None,
    episode_start: Tensor | None = None,
) -> PolicyEvaluation:
    """``policy`` on ``(obs, actions)``: through ``kernel`` when one is given and kernels may
    run now (the ``fast`` backend, nothing being traced), else ``policy.evaluate_actions``
    (with a recurrent policy's ``state`` and ``episode_start`` for sequence batches)."""
    if kernel is not None and kernels_active() and isinstance(obs, Tensor):
        ev = kernel.evaluate(obs, actions, entropy=need_entropy)
        outputs = {"log_prob": ev.log_prob, "value": ev.value}
        if ev.entropy is not None:
            outputs["entropy"] = ev.entropy
        return PolicyEvaluation(outputs, ActorCriticPullback(kernel, ev))
    if state is not None and len(state):
        log_prob, entropy, value, _ = policy.evaluate_actions(obs, actions, state, episode_start)
    else:
        log_prob, entropy, value, _ = policy.evaluate_actions(obs, actions)
    return PolicyEvaluation({"log_prob": log_prob, "entropy": entropy, "value": value})


__all__ = ["ActorCriticPullback", "PolicyEvaluation", "evaluate_actions"]
