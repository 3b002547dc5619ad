"""n-step transitions from an unroll: what replay-based learners (Ape-X) store.

An unroll ``[T, B]`` becomes ``T * B`` transitions ``(s_t, a_t, R_t, gamma_t, s'_t)`` with
``R_t = r_t + g r_(t+1) + ... + g^(k-1) r_(t+k-1)`` over ``k <= n`` steps: the window stops
where the episode ended (``s'`` is then the episode's true final observation) and at the end
of the unroll (``s'`` is the bootstrap observation), so every step of the unroll gives a
transition whose target ``R_t + gamma_t max_a Q(s'_t, a)`` is exact for the steps it spans.
``gamma_t = g^k``, or 0 when the episode terminated inside the window (truncation keeps the
bootstrap). Actors compute the same transitions to get initial priorities, so the learner's
replay and the actors' priorities agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rlkit.types import Obs
from rlkit.utils.tensors import obs_map

from .trajectory import TrajectoryBatch


@dataclass
class NStepTransitions:
    """Flat transitions, ``[T * B, ...]`` in time-major order (step ``t`` of env ``b`` is row
    ``t * B + b``, as ``x.reshape(-1)`` of a ``[T, B]`` tensor)."""

    obs: Obs
    actions: Tensor
    #: discounted reward sums over the window.
    rewards: Tensor
    #: ``gamma ** k``, 0 where the episode terminated inside the window.
    discounts: Tensor
    #: the observation after the window (the final one where the episode ended).
    next_obs: Obs
    #: the window ended the episode by termination / by truncation only.
    terminated: Tensor
    truncated: Tensor

    def __len__(self) -> int:
        return int(self.rewards.shape[0])


def nstep_transitions(data: TrajectoryBatch, n_step: int, gamma: float) -> NStepTransitions:
    """The ``n_step`` transitions of every step of ``data`` (see the module doc)."""
    if isinstance(n_step, bool) or not isinstance(n_step, int) or n_step < 1:
        raise ValueError(f"nstep_transitions: n_step must be an int >= 1, got {n_step!r}")
    steps, envs = data.num_steps, data.num_envs
    rewards = data.rewards.to(torch.float32)
    dones = data.dones
    returns = rewards.clone()
    k = torch.ones((steps, envs), dtype=torch.long)
    last = torch.arange(steps).unsqueeze(1).expand(steps, envs).clone()
    alive = ~dones  # the window may go on past step t + j - 1
    for j in range(1, min(n_step, steps)):
        ok = torch.zeros_like(alive)
        ok[: steps - j] = alive[: steps - j]
        returns[: steps - j] += (gamma**j) * rewards[j:] * ok[: steps - j]
        k += ok
        last[ok] += 1
        ended = torch.zeros_like(alive)
        ended[: steps - j] = dones[j:]
        alive = ok & ~ended
    cols = torch.arange(envs).unsqueeze(0).expand(steps, envs)
    terminated = data.terminated[last, cols]
    truncated = data.truncated[last, cols]
    discounts = torch.pow(torch.tensor(gamma, dtype=torch.float32), k.float()) * (~terminated)
    next_obs = obs_map(lambda x: x[last, cols], data.next_obs())

    def flat(x: Tensor) -> Tensor:
        return x.reshape(steps * envs, *x.shape[2:])

    return NStepTransitions(
        obs=obs_map(flat, data.obs),
        actions=flat(data.actions),
        rewards=flat(returns),
        discounts=flat(discounts),
        next_obs=obs_map(flat, next_obs),
        terminated=flat(terminated),
        truncated=flat(truncated),
    )


__all__ = ["NStepTransitions", "nstep_transitions"]
