"""TD targets (computed without gradient): each exists once and every agent that needs it uses
it. ``discount`` is ``gamma^n`` per sample, 0 where the episode terminated (the replay storage
computes it), so truncated episodes bootstrap and terminated ones do not."""

from __future__ import annotations

import torch
from torch import Tensor


def td_target(reward: Tensor, discount: Tensor, next_value: Tensor) -> Tensor:
    """``reward + discount * next_value``."""
    return torch.addcmul(reward, discount, next_value)


def greedy_value(next_q_target: Tensor, next_q_online: Tensor | None = None) -> Tensor:
    """``max_a Q'(s', a)`` (DQN), or with the online network's values double Q-learning's
    ``Q'(s', argmax_a Q(s', a))`` (van Hasselt et al. 2016). Inputs ``[B, A]``."""
    if next_q_online is None:
        return next_q_target.amax(-1)
    best = next_q_online.argmax(-1, keepdim=True)
    return next_q_target.gather(-1, best).squeeze(-1)


def clipped_double_q(next_q: Tensor) -> Tensor:
    """``min_e Q'_e(s', a')`` over the critics ``[E, B]`` (TD3, SAC, DrQ-v2)."""
    return next_q.amin(0)


def random_members(num_members: int, size: int, generator: torch.Generator | None = None) -> Tensor:
    """``size`` distinct indices out of ``range(num_members)``, drawn uniformly without
    replacement from ``generator`` (REDQ's in-target subset: ``clipped_double_q(next_q[idx])``
    is the minimum over ``size`` randomly chosen critics, Chen et al. 2021)."""
    if not 1 <= size <= num_members:
        raise ValueError(f"random_members: size must be in [1, {num_members}], got {size}")
    return torch.randperm(num_members, generator=generator)[:size]


def soft_value(next_q: Tensor, next_log_prob: Tensor, alpha: Tensor | float) -> Tensor:
    """SAC's soft state value ``min_e Q'_e(s', a') - alpha log pi(a'|s')`` for a sampled
    ``a'`` (``next_q`` ``[E, B]``)."""
    return clipped_double_q(next_q) - alpha * next_log_prob


def expected_soft_value(next_logits: Tensor, next_q: Tensor, alpha: Tensor | float) -> Tensor:
    """SAC-discrete's exact soft value ``sum_a pi(a|s') (min_e Q'_e(s', a) - alpha log
    pi(a|s'))`` from the actor's logits ``[B, A]`` and the critics ``[E, B, A]``."""
    log_probs = torch.log_softmax(next_logits, dim=-1)
    return (log_probs.exp() * (clipped_double_q(next_q) - alpha * log_probs)).sum(-1)


def scaled_log_policy(q: Tensor, tau: float) -> Tensor:
    """``tau log softmax(q / tau)`` over the last axis, computed stably as
    ``q - max q - tau logsumexp((q - max q) / tau)`` (Munchausen RL's softmax policy of a
    Q-function at temperature ``tau``)."""
    shifted = q - q.amax(-1, keepdim=True)
    return shifted - tau * torch.logsumexp(shifted / tau, dim=-1, keepdim=True)


def munchausen_bonus(
    q: Tensor, actions: Tensor, tau: float, alpha: float, clip: float = -1.0
) -> Tensor:
    """Munchausen RL's reward bonus (Vieillard et al. 2020) ``alpha [tau log pi(a|s)]_clip^0``
    for the taken ``actions`` ``[B]`` (0-based), with ``pi = softmax(q / tau)`` of the target
    network's ``q`` ``[B, A]`` at ``s``. As the authors' code, the clip applies to
    ``tau log pi`` (lower bound ``clip``, default -1; upper bound 0)."""
    tau_log_pi = scaled_log_policy(q, tau).gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    return alpha * tau_log_pi.clamp(clip, 0.0)


def soft_expectation(next_q: Tensor, tau: float, values: Tensor | None = None) -> Tensor:
    """Munchausen RL's next-state value ``sum_a' pi(a'|s') (v(s', a') - tau log pi(a'|s'))``
    with ``pi = softmax(next_q / tau)`` (``next_q`` ``[B, A]``, the target network's); ``v``
    is ``next_q`` itself (``[B]`` out) or ``values`` ``[B, A, N]`` (return quantiles: ``[B, N]``
    out, one soft target per quantile)."""
    tau_log_pi = scaled_log_policy(next_q, tau)
    pi = (tau_log_pi / tau).exp()
    if values is None:
        return (pi * (next_q - tau_log_pi)).sum(-1)
    return (pi.unsqueeze(-1) * (values - tau_log_pi.unsqueeze(-1))).sum(1)


def smoothed_actions(
    actions: Tensor, sigma: float, noise_clip: float, generator: torch.Generator | None = None
) -> Tensor:
    """TD3's target policy smoothing: normalised ``actions`` plus Gaussian noise of std
    ``sigma`` clipped to ``+-noise_clip``, clipped to ``[-1, 1]`` (unchanged for sigma 0)."""
    if sigma <= 0:
        return actions
    noise = torch.randn(actions.shape, generator=generator).to(actions.device).mul_(sigma)
    return (actions + noise.clamp_(-noise_clip, noise_clip)).clamp_(-1.0, 1.0)


__all__ = [
    "clipped_double_q",
    "expected_soft_value",
    "greedy_value",
    "munchausen_bonus",
    "random_members",
    "scaled_log_policy",
    "smoothed_actions",
    "soft_expectation",
    "soft_value",
    "td_target",
]
