"""The ``fast`` backend's kernel for sampling a tanh-squashed Gaussian with its log-density.

SAC draws ``a = tanh(mean + std * eps)`` and ``log pi(a)`` twice per update; written with
autograd that is a dozen small nodes. Here it is one node: the forward computes the action and
the log-density, the backward applies their derivatives by hand. Same maths as
:meth:`rlkit.policies.SquashedGaussianActorCritic.sample_with_log_prob` (tested against it):

- ``u = mean + std * eps`` with ``log_std = clamp(raw, low, high)``;
- ``a = clamp(tanh(u), -bound, bound)``, ``bound = 1 - eps_bound``;
- per dimension ``log N(u) - log(1 - tanh(u)^2) = -eps^2/2 - log_std - log(2 pi)/2 + 2 (u +
  softplus(-2u) - log 2)``, summed over dimensions.

Derivatives: ``d log_prob / du = 2 tanh(u)``; ``d log_prob / d log_std = -1`` directly plus
``std * eps`` through ``u``; ``d a / du = 1 - tanh(u)^2`` inside the clip; the clamps pass
gradient inside their bounds only, as autograd's clamp does.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def squash_forward(
    head: Tensor, eps: Tensor, log_std_bounds: tuple[float, float], eps_bound: float
) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """``(action [B, A], log_prob [B], cache)`` from the actor output ``[B, 2A]`` and a noise
    draw ``eps`` ``[B, A]``, without autograd; ``cache`` is what :func:`squash_backward` needs."""
    with torch.no_grad():
        mean, raw_log_std = head.chunk(2, dim=-1)
        low, high = log_std_bounds
        log_std = raw_log_std.clamp(low, high)
        std = log_std.exp()
        u = torch.addcmul(mean, std, eps)
        tanh_u = torch.tanh(u)
        bound = 1.0 - eps_bound
        action = tanh_u.clamp(-bound, bound)
        squash = (F.softplus(-2.0 * u) + u).mul_(2.0).sub_(log_std)
        dim = mean.shape[-1]
        offset = dim * (0.5 * math.log(2.0 * math.pi) + 2.0 * math.log(2.0))
        log_prob = torch.addcmul(squash, eps, eps, value=-0.5).sum(-1).sub_(offset)
    return action, log_prob, (raw_log_std, std, eps, tanh_u)


def squash_backward(
    cache: tuple[Tensor, ...],
    grad_action: Tensor | None,
    grad_log_prob: Tensor | float | None,
    log_std_bounds: tuple[float, float],
    eps_bound: float,
) -> Tensor:
    """The gradient with respect to the actor output ``[B, 2A]`` given the gradients with
    respect to :func:`squash_forward`'s action (``[B, A]``) and log-prob (``[B]`` or a number
    for every sample); ``None`` means zero."""
    raw_log_std, std, eps, tanh_u = cache
    with torch.no_grad():
        if grad_action is not None:
            inside = tanh_u.abs() <= 1.0 - eps_bound
            grad_u = grad_action * (1.0 - tanh_u.square()) * inside
        else:
            grad_u = torch.zeros_like(tanh_u)
        if grad_log_prob is not None:
            if isinstance(grad_log_prob, Tensor):
                g_lp = grad_log_prob.unsqueeze(-1)
                grad_u = grad_u.addcmul_(tanh_u, g_lp, value=2.0)
                grad_log_std = (grad_u * std * eps).sub_(g_lp)
            else:
                grad_u = grad_u.add_(tanh_u, alpha=2.0 * grad_log_prob)
                grad_log_std = (grad_u * std * eps).sub_(grad_log_prob)
        else:
            grad_log_std = grad_u * std * eps
        low, high = log_std_bounds
        grad_log_std.mul_((raw_log_std >= low) & (raw_log_std <= high))
        return torch.cat([grad_u, grad_log_std], dim=-1)


class _SquashNode(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, head: Tensor, eps: Tensor, bounds: tuple[float, float], eps_bound: float
    ) -> tuple[Tensor, Tensor]:
        action, log_prob, cache = squash_forward(head, eps, bounds, eps_bound)
        ctx.cache, ctx.bounds, ctx.eps_bound = cache, bounds, eps_bound
        return action, log_prob

    @staticmethod
    def backward(ctx: Any, grad_action: Tensor, grad_log_prob: Tensor) -> tuple[Any, ...]:
        grad = squash_backward(ctx.cache, grad_action, grad_log_prob, ctx.bounds, ctx.eps_bound)
        ctx.cache = None
        return grad, None, None, None


def squash_sample(
    head: Tensor, eps: Tensor, log_std_bounds: tuple[float, float], eps_bound: float
) -> tuple[Tensor, Tensor]:
    """``(action, log_prob)`` as one autograd node (or a plain forward without gradient)."""
    if torch.is_grad_enabled() and head.requires_grad:
        action, log_prob = _SquashNode.apply(head, eps, tuple(log_std_bounds), float(eps_bound))
        return action, log_prob
    action, log_prob, _ = squash_forward(head, eps, log_std_bounds, eps_bound)
    return action, log_prob


__all__ = ["squash_backward", "squash_forward", "squash_sample"]
