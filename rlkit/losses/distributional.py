"""Distributional value terms: the return of an action as a distribution, not a mean.

- :class:`QuantileHuberLoss`: quantile regression of ``N`` predicted return quantiles on the
  target's samples (QR-DQN, Dabney et al. 2018; also IQN and TQC).
- :class:`CategoricalLoss`: cross-entropy of a categorical distribution over a fixed support
  against the target distribution projected onto that support (C51, Bellemare et al. 2017),
  with :func:`categorical_projection` computing the projection.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlkit.losses.base import LOSS_TERMS, Inputs, LossTerm


def quantile_midpoints(n: int, device: torch.device | None = None) -> Tensor:
    """The quantile fractions QR-DQN regresses on: ``tau_i = (2 i + 1) / (2 n)``, ``[n]``."""
    return (torch.arange(n, dtype=torch.float32, device=device) * 2 + 1) / (2 * n)


@LOSS_TERMS.register("quantile_huber")
class QuantileHuberLoss(LossTerm):
    """Quantile Huber loss between predicted quantiles ``quantiles`` ``[B, N]`` (of the taken
    actions) and target samples ``target_quantiles`` ``[B, N']`` (fixed):

    ``u_ij = target_j - quantiles_i``, ``rho_ij = |tau_i - 1{u_ij < 0}| L_kappa(u_ij) / kappa``
    with ``L_kappa`` the Huber loss of threshold ``kappa``; summed over ``i``, averaged over
    ``j`` and the batch (as the authors' code). ``taus`` ``[N]`` or ``[B, N]`` (input, optional)
    are the quantile fractions: the midpoints ``(2i + 1) / 2N`` by default (QR-DQN); IQN passes
    the sampled ones. An input ``weight`` ``[B]`` scales each sample (prioritized replay).

    Derivative: ``-|tau_i - 1{u_ij < 0}| clamp(u_ij, -kappa, kappa) / kappa`` averaged over
    ``j``, times ``weight / B``. Diagnostics: ``q_mean`` (the mean of the quantiles).
    """

    default_name = "quantile"
    inputs = ("quantiles", "target_quantiles")
    differentiable = ("quantiles",)

    def __init__(self, kappa: float = 1.0, coef: float = 1.0, name: str | None = None) -> None:
        super().__init__(coef, name)
        if not float(kappa) > 0:
            raise ValueError(f"QuantileHuberLoss: kappa must be > 0, got {kappa!r}")
        self.kappa = float(kappa)

    def _parts(self, x: Inputs) -> tuple[Tensor, Tensor, Tensor | None]:
        quantiles: Tensor = x["quantiles"]
        if quantiles.dim() != 2 or x["target_quantiles"].dim() != 2:
            raise ValueError(
                "QuantileHuberLoss: quantiles and target_quantiles must be shaped [B, N], got "
                f"{tuple(quantiles.shape)} and {tuple(x['target_quantiles'].shape)}"
            )
        taus = x.get("taus")
        if taus is None:
            taus = quantile_midpoints(quantiles.shape[1], quantiles.device)
        taus = taus.to(quantiles.dtype)
        if taus.dim() == 1:
            taus = taus.unsqueeze(0)
        u = x["target_quantiles"].unsqueeze(1) - quantiles.unsqueeze(2)  # [B, N, N']
        taus = taus.unsqueeze(2)  # |tau - 1{u < 0}| is 1 - tau below the target, else tau
        scale = torch.where(u.detach() < 0, 1.0 - taus, taus)
        return u, scale, x.get("weight")

    def forward(self, x: Inputs) -> Tensor:
        u, scale, weight = self._parts(x)
        absolute = u.abs()
        kappa = self.kappa
        huber = torch.where(absolute <= kappa, 0.5 * u.square(), kappa * (absolute - 0.5 * kappa))
        per_sample = (scale * huber / kappa).sum(1).mean(1)  # sum over i, mean over j
        if weight is not None:
            per_sample = per_sample * weight
        return per_sample.mean()

    def derivative(self, x: Inputs) -> dict[str, Tensor]:
        u, scale, weight = self._parts(x)
        batch, targets = u.shape[0], u.shape[2]
        grad = -(scale * u.clamp(-self.kappa, self.kappa)).sum(2) / (self.kappa * targets)
        if weight is not None:
            grad = grad * weight.unsqueeze(1)
        return {"quantiles": grad * (self.coef / batch)}

    def value_and_derivative(self, x: Inputs) -> tuple[Tensor, dict[str, Tensor]]:
        # one pass over the [B, N, N'] pairs (TQC's are 256 x 125 x 115): with c = clamp(u, +-k),
        # L_k(u) = c (u - c / 2) on both branches, and the derivative's factor is scale * c
        u, scale, weight = self._parts(x)
        batch, targets, kappa = u.shape[0], u.shape[2], self.kappa
        clipped = u.clamp(-kappa, kappa)
        pulled = scale.mul_(clipped)
        per_sample = (pulled * u.sub_(clipped, alpha=0.5)).sum((1, 2)) / (kappa * targets)
        grad = pulled.sum(2).div_(-kappa * targets)
        if weight is not None:
            per_sample = per_sample * weight
            grad = grad * weight.unsqueeze(1)
        return per_sample.mean(), {"quantiles": grad * (self.coef / batch)}

    def diagnostics(self, x: Inputs) -> dict[str, Tensor]:
        return {"q_mean": x["quantiles"].mean()}


@LOSS_TERMS.register("categorical")
class CategoricalLoss(LossTerm):
    """Cross-entropy ``-sum_k target_probs_k log_probs_k`` averaged over the batch, between the
    predicted log-probabilities ``log_probs`` ``[B, K]`` over a fixed support (of the taken
    actions) and the fixed target distribution ``target_probs`` ``[B, K]`` (already projected
    onto the support: :func:`categorical_projection`). An input ``weight`` ``[B]`` scales each
    sample. Derivative: ``-target_probs * weight / B``."""

    default_name = "categorical"
    inputs = ("log_probs", "target_probs")
    differentiable = ("log_probs",)

    def forward(self, x: Inputs) -> Tensor:
        per_sample = -(x["target_probs"] * x["log_probs"]).sum(-1)
        weight = x.get("weight")
        if weight is not None:
            per_sample = per_sample * weight
        return per_sample.mean()

    def derivative(self, x: Inputs) -> dict[str, Tensor]:
        target: Tensor = x["target_probs"]
        grad = -target
        weight = x.get("weight")
        if weight is not None:
            grad = grad * weight.unsqueeze(-1)
        return {"log_probs": grad * (self.coef / target.shape[0])}

    def diagnostics(self, x: Inputs) -> dict[str, Tensor]:
        return {"entropy_target": -(x["target_probs"] * x["log_probs"]).sum(-1).mean()}


def categorical_projection(
    next_probs: Tensor, rewards: Tensor, discounts: Tensor, support: Tensor
) -> Tensor:
    """Project the distribution of ``rewards + discounts * Z'`` onto ``support`` (Bellemare et al.
    2017, Algorithm 1): ``next_probs`` ``[B, K]`` are the target network's probabilities over
    ``support`` ``[K]`` (evenly spaced) for the next state's chosen action; ``discounts``
    ``[B]`` are ``gamma^n (1 - terminated)``. Each shifted atom's mass is split between the two
    support points around it in proportion to its distance. Returns ``[B, K]``, rows summing
    to 1."""
    atoms = support.numel()
    v_min, v_max = float(support[0]), float(support[-1])
    delta = (v_max - v_min) / (atoms - 1)
    shifted = (rewards.unsqueeze(1) + discounts.unsqueeze(1) * support.unsqueeze(0)).clamp(
        v_min, v_max
    )
    position = (shifted - v_min) / delta  # in [0, K - 1]
    lower = position.floor()
    upper = position.ceil()
    # an atom landing exactly on a support point gives it all its mass (lower == upper)
    to_lower = (upper + (lower == upper).to(position.dtype) - position) * next_probs
    to_upper = (position - lower) * next_probs
    out = torch.zeros_like(next_probs)
    out.scatter_add_(1, lower.long().clamp_(0, atoms - 1), to_lower)
    out.scatter_add_(1, upper.long().clamp_(0, atoms - 1), to_upper)
    return out


def truncated_quantiles(next_quantiles: Tensor, drop: int) -> Tensor:
    """TQC's truncated mixture (Kuznetsov et al. 2020): the ``E`` critics' next-state quantiles
    ``[E, B, N]`` pooled per sample, sorted ascending, and the ``drop`` largest removed:
    ``[B, E N - drop]`` (the atoms every critic regresses on)."""
    critics, batch, n = next_quantiles.shape
    if not 0 <= drop < critics * n:
        raise ValueError(
            f"truncated_quantiles: drop must be in [0, {critics * n}) for {critics} critics of "
            f"{n} quantiles, got {drop}"
        )
    pooled = next_quantiles.transpose(0, 1).reshape(batch, critics * n)
    return pooled.sort(dim=1).values[:, : critics * n - drop]


__all__ = [
    "CategoricalLoss",
    "QuantileHuberLoss",
    "categorical_projection",
    "quantile_midpoints",
    "truncated_quantiles",
]
