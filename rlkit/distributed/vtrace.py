"""V-trace off-policy targets (Espeholt et al. 2018, "IMPALA", section 4.1).

Trajectories produced by a behaviour policy ``mu`` (an actor's possibly stale copy) are
corrected towards the learner's target policy ``pi`` with truncated importance weights
``rho_t = min(rho_bar, pi(a_t|x_t) / mu(a_t|x_t))`` and trace coefficients
``c_t = lambda * min(c_bar, pi / mu)``:

    delta_t = rho_t (r_t + gamma_t V_next_t - V(x_t))
    v_t     = V(x_t) + delta_t + gamma_t c_t (v_{t+1} - V(x_{t+1}))
    A_t     = rho^pg_t (r_t + gamma_t v_{t+1} - V(x_t))          (policy-gradient advantage)

Tensors are time-major, ``[T, B]``. Besides the paper's discounts, :func:`vtrace` takes
``next_values`` and ``continues`` so that episode ends inside an unroll are exact under
gymnasium semantics: on termination the discount is 0; on truncation the target bootstraps
from the value of the *final* observation (``next_values``) while the trace stops there
(``continues = 0``) because the next row of the unroll belongs to a new episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class VTraceReturns:
    """Outputs of :func:`vtrace`, all ``[T, B]`` and without gradient."""

    #: value targets v_s.
    vs: Tensor
    #: policy-gradient advantages rho^pg_s (r_s + gamma_s v_{s+1} - V(x_s)).
    pg_advantages: Tensor
    #: the truncated importance weights min(rho_bar, pi/mu) used in the value targets.
    clipped_rhos: Tensor


def _check(name: str, x: Tensor, shape: torch.Size) -> None:
    if x.shape != shape:
        raise ValueError(
            f"vtrace: {name} has shape {tuple(x.shape)}, expected {tuple(shape)} (like log_rhos)"
        )


@torch.no_grad()
def vtrace(
    log_rhos: Tensor,
    discounts: Tensor,
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    continues: Tensor | None = None,
    *,
    rho_bar: float | None = 1.0,
    c_bar: float | None = 1.0,
    pg_rho_bar: float | None = None,
    lambda_: float = 1.0,
) -> VTraceReturns:
    """V-trace targets and advantages over time-major ``[T, B]`` tensors.

    Args:
        log_rhos: ``log pi(a_t|x_t) - log mu(a_t|x_t)``.
        discounts: the discount applied to ``next_values`` at step t (``gamma``, or 0 where the
            episode terminated).
        rewards: ``r_t``.
        values: ``V(x_t)`` under the target policy's critic.
        next_values: the value bootstrapped from at step t: ``V(x_{t+1})``, the value of the
            final observation where the episode was truncated, and ``V(x_T)`` on the last row.
            Where ``continues`` is 1 and ``t < T - 1`` it must equal ``values[t + 1]``.
        continues: 1 where the unroll's next row continues the same episode (default: all 1,
            the paper's setting where episode ends are expressed through ``discounts`` only).
        rho_bar: truncation of the importance weights in ``delta`` (None: no truncation).
        c_bar: truncation of the trace coefficients (None: no truncation).
        pg_rho_bar: truncation of the policy-gradient weights (None: ``rho_bar``).
        lambda_: the paper's lambda in ``c_t = lambda min(c_bar, rho_t)`` (remark 4.1).

    With ``rho_t = c_t = 1`` (on-policy) the targets are the lambda-returns (n-step returns when
    ``lambda_ = 1``) and ``vs - values`` is the GAE advantage.
    """
    shape = log_rhos.shape
    if log_rhos.dim() < 1:
        raise ValueError("vtrace: inputs need a leading time dimension, got a scalar log_rhos")
    if continues is None:
        continues = torch.ones_like(rewards)
    for name, x in (
        ("discounts", discounts),
        ("rewards", rewards),
        ("values", values),
        ("next_values", next_values),
        ("continues", continues),
    ):
        _check(name, x, shape)
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"vtrace: lambda_ must be in [0, 1], got {lambda_}")
    for name, bar in (("rho_bar", rho_bar), ("c_bar", c_bar), ("pg_rho_bar", pg_rho_bar)):
        if bar is not None and bar <= 0:
            raise ValueError(f"vtrace: {name} must be > 0 or None, got {bar}")
    dtype = values.dtype
    rhos = log_rhos.to(dtype).exp()
    clipped_rhos = rhos.clamp(max=rho_bar) if rho_bar is not None else rhos
    cs = lambda_ * (rhos.clamp(max=c_bar) if c_bar is not None else rhos)
    rewards, discounts = rewards.to(dtype), discounts.to(dtype)
    next_values, continues = next_values.to(dtype), continues.to(dtype)
    deltas = clipped_rhos * (rewards + discounts * next_values - values)
    trace = discounts * continues * cs
    # acc[t] = v_t - V(x_t), accumulated backwards; acc[T] = 0.
    acc = torch.zeros_like(values)
    running = torch.zeros_like(values[0])
    for t in range(shape[0] - 1, -1, -1):
        running = deltas[t] + trace[t] * running
        acc[t] = running
    vs = values + acc
    # v_{t+1} as seen from step t: the next row's target while the episode continues, the
    # bootstrap value otherwise (and on the last row).
    acc_next = torch.cat([acc[1:], torch.zeros_like(acc[:1])], dim=0)
    vs_next = next_values + continues * acc_next
    pg_bar = rho_bar if pg_rho_bar is None else pg_rho_bar
    pg_rhos = rhos.clamp(max=pg_bar) if pg_bar is not None else rhos
    pg_advantages = pg_rhos * (rewards + discounts * vs_next - values)
    return VTraceReturns(vs=vs, pg_advantages=pg_advantages, clipped_rhos=clipped_rhos)


def vtrace_from_bootstrap(
    log_rhos: Tensor,
    discounts: Tensor,
    rewards: Tensor,
    values: Tensor,
    bootstrap_value: Tensor,
    *,
    rho_bar: float | None = 1.0,
    c_bar: float | None = 1.0,
    pg_rho_bar: float | None = None,
    lambda_: float = 1.0,
) -> VTraceReturns:
    """The paper's (and scalable_agent's) signature: episode ends only through ``discounts``;
    ``bootstrap_value`` ``[B]`` is ``V(x_T)``. See :func:`vtrace` for the rest."""
    if bootstrap_value.shape != values.shape[1:]:
        raise ValueError(
            f"vtrace: bootstrap_value has shape {tuple(bootstrap_value.shape)}, expected "
            f"{tuple(values.shape[1:])}"
        )
    next_values = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
    return vtrace(
        log_rhos,
        discounts,
        rewards,
        values,
        next_values,
        rho_bar=rho_bar,
        c_bar=c_bar,
        pg_rho_bar=pg_rho_bar,
        lambda_=lambda_,
    )


__all__ = ["VTraceReturns", "vtrace", "vtrace_from_bootstrap"]
