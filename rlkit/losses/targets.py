"""TD targets (computed without gradient): each exists once and every agent that needs it uses
it. ``discount`` is ``gamma^n`` per sample, 0 where the episode terminated (the replay storage
computes it), so truncated episodes bootstrap and terminated ones do not."""

from __future__ import annotations

import torch
from torch import Tensor


def td_target(reward: Tensor, discount: Tensor, next_value: Tensor) -> Tensor:
    """``reward + discount * next_value``."""
    return torch.addcmul(reward, discount, next_value)


def greedy_value(
    next_q_target: Tensor, next_q_online: Tensor | None = None, mask: Tensor | None = None
) -> Tensor:
    """``max_a Q'(s', a)`` (DQN), or with the online network's values double Q-learning's
    ``Q'(s', argmax_a Q(s', a))`` (van Hasselt et al. 2016). Inputs ``[B, A]``.

    ``mask`` (``[B, A]``, 1 = legal: the next observation's ``"action_mask"``) restricts the
    max, and the online argmax, to the legal next actions; Q-values already ``-inf`` where
    illegal (:meth:`~rlkit.policies.QPolicy.legal_q_values`) do the same without it. A row
    with no legal action (a terminal state's mask may be all zero) has value 0, never
    ``-inf``, so its target stays finite (``-inf * 0`` would be NaN)."""
    if mask is not None:
        if mask.shape != next_q_target.shape:
            raise ValueError(
                f"greedy_value: action mask of shape {tuple(mask.shape)} does not match the "
                f"Q-values' {tuple(next_q_target.shape)}"
            )
        illegal = mask < 0.5
        next_q_target = next_q_target.masked_fill(illegal, float("-inf"))
        if next_q_online is not None:
            next_q_online = next_q_online.masked_fill(illegal, float("-inf"))
    if next_q_online is None:
        value = next_q_target.amax(-1)
    else:
        best = next_q_online.argmax(-1, keepdim=True)
        value = next_q_target.gather(-1, best).squeeze(-1)
    return value.masked_fill(torch.isneginf(value), 0.0)


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


def value_rescale(x: Tensor, eps: float = 1e-3) -> Tensor:
    """R2D2's value rescaling ``h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x`` (Pohlen et al.
    2018): compresses large returns so one network fits rewards of any scale."""
    return x.sign() * ((x.abs() + 1.0).sqrt() - 1.0) + eps * x


def inverse_value_rescale(x: Tensor, eps: float = 1e-3) -> Tensor:
    """``h^-1(x) = sign(x) (((sqrt(1 + 4 eps (|x| + 1 + eps)) - 1) / (2 eps))^2 - 1)``, the
    inverse of :func:`value_rescale` (``eps > 0``)."""
    root = ((1.0 + 4.0 * eps * (x.abs() + 1.0 + eps)).sqrt() - 1.0) / (2.0 * eps)
    return x.sign() * (root.square() - 1.0)


def sequence_nstep_targets(
    rewards: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    next_values: Tensor,
    gamma: float,
    n_step: int,
) -> Tensor:
    """n-step targets inside time-major sequences ``[T, B]`` (R2D2):
    ``r_t + ... + g^(k-1) r_(t+k-1) + g^k V_(t+k-1)`` where ``V_s`` (``next_values``) is the
    value of step ``s``'s true next observation and ``k <= n_step`` stops at the first step
    that ended its episode (terminated: no bootstrap; truncated: bootstrap from its final
    observation) or at the end of the sequence."""
    steps = rewards.shape[0]
    done = torch.maximum(terminated, truncated)
    returns = rewards.clone()
    last = torch.arange(steps, device=rewards.device).unsqueeze(1).expand_as(rewards).clone()
    open_ = 1.0 - done  # the window of step t continues past its latest step
    for j in range(1, n_step):
        if j >= steps:
            break
        ok = open_[: steps - j]
        returns[: steps - j] += ok * (gamma**j) * rewards[j:]
        last[: steps - j] += ok.long()
        open_[: steps - j] = ok * (1.0 - done[j:])
    k = (last - torch.arange(steps, device=rewards.device).unsqueeze(1) + 1).to(rewards.dtype)
    alive = 1.0 - terminated.gather(0, last)
    return returns + gamma**k * alive * next_values.gather(0, last)


def sequence_priorities(td_errors: Tensor, eta: float = 0.9) -> Tensor:
    """R2D2's sequence priority ``eta max_t |d_t| + (1 - eta) mean_t |d_t|`` from
    ``td_errors`` ``[T, B]``: ``[B]``."""
    errors = td_errors.detach().abs()
    return eta * errors.amax(0) + (1.0 - eta) * errors.mean(0)


__all__ = [
    "clipped_double_q",
    "expected_soft_value",
    "greedy_value",
    "inverse_value_rescale",
    "munchausen_bonus",
    "random_members",
    "scaled_log_policy",
    "sequence_nstep_targets",
    "sequence_priorities",
    "smoothed_actions",
    "soft_expectation",
    "soft_value",
    "td_target",
    "value_rescale",
]
