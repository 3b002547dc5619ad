"""Temporal-difference and actor terms of the off-policy agents (DQN, SAC, TD3, DDPG, DrQ-v2,
SAC-discrete); their TD targets are in :mod:`rlkit.losses.targets`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rlkit.losses.base import LOSS_TERMS, Inputs, LossTerm

TD_KINDS = ("huber", "mse", "half_mse")


def _min_share(q: Tensor) -> Tensor:
    """``d min_e q[e] / d q`` for ``q`` ``[E, B]``: 1 at the minimum, shared among ties (as
    autograd's ``amin``)."""
    chosen = (q == q.amin(0, keepdim=True)).to(q.dtype)
    return chosen.div_(chosen.sum(0, keepdim=True))


@LOSS_TERMS.register("td")
class TDLoss(LossTerm):
    """Regression of Q-values on a fixed TD target: ``mean_b l(q - target)`` per critic,
    summed over critics (``q`` ``[B]`` or ``[E, B]``), with ``l`` (``loss``) the Huber loss
    (``"huber"``, DQN; quadratic within 1), the squared error (``"mse"``, TD3, DrQ-v2) or half of it
    (``"half_mse"``, SAC's ``J_Q = E[(Q - y)^2 / 2]``). An input ``weight`` ``[B]`` (prioritized
    replay's importance weights) scales each sample.

    Derivative: ``clamp(q - target, -1, 1) w / B`` (Huber), ``2 (q - target) w / B`` (mse) or
    ``(q - target) w / B``. Diagnostics: ``q_mean``.
    """

    default_name = "td"
    inputs = ("q", "target")
    differentiable = ("q",)

    def __init__(self, loss: str = "huber", coef: float = 1.0, name: str | None = None):
        super().__init__(coef, name)
        if loss not in TD_KINDS:
            raise ValueError(f"TDLoss: loss must be one of {TD_KINDS}, got {loss!r}")
        self.loss = loss

    def forward(self, x: Inputs) -> Tensor:
        error = x["q"] - x["target"]
        if self.loss == "huber":
            absolute = error.abs()
            per_sample = torch.where(absolute < 1.0, 0.5 * error.square(), absolute - 0.5)
        else:
            per_sample = error.square() if self.loss == "mse" else 0.5 * error.square()
        weight = x.get("weight")
        if weight is not None:
            per_sample = per_sample * weight
        return per_sample.mean(-1).sum()

    def derivative(self, x: Inputs) -> dict[str, Tensor]:
        return self.value_and_derivative(x)[1]

    def value_and_derivative(self, x: Inputs) -> tuple[Tensor, dict[str, Tensor]]:
        error = x["q"] - x["target"]
        weight = x.get("weight")
        if self.loss == "huber":
            per_sample = F.smooth_l1_loss(error, torch.zeros_like(error), reduction="none")
            grad = error.clamp_(-1.0, 1.0)
        elif self.loss == "mse":
            per_sample = error.square()
            grad = error.mul_(2.0)
        else:
            per_sample = 0.5 * error.square()
            grad = error
        if weight is not None:
            per_sample = per_sample * weight
            grad = grad.mul_(weight)
        value = per_sample.mean(-1).sum()
        return value, {"q": grad.mul_(self.coef / grad.shape[-1])}

    def diagnostics(self, x: Inputs) -> dict[str, Tensor]:
        return {"q_mean": x["q"].mean()}


#: how :class:`SACActorLoss` reduces several critics to one value per sample.
SAC_CRITIC_REDUCTIONS = ("min", "mean")


@LOSS_TERMS.register("sac_actor")
class SACActorLoss(LossTerm):
    """SAC's actor loss ``mean(alpha log pi(a|s) - min_e Q_e(s, a))`` for reparameterised
    actions ``a`` (inputs ``log_prob`` ``[B]``, ``q`` ``[E, B]`` or ``[B]``, ``alpha``);
    ``critic="mean"`` takes ``mean_e Q_e`` instead of the minimum (REDQ, and TQC with ``q``
    the mean of each critic's quantiles).
    Derivative: ``alpha / B`` for ``log_prob``; for ``q``, ``-1 / B`` at the minimum critic
    (shared among ties) or ``-1 / (E B)`` on every critic with ``"mean"``."""

    default_name = "actor"
    inputs = ("log_prob", "q", "alpha")
    differentiable = ("log_prob", "q")

    def __init__(self, critic: str = "min", coef: float = 1.0, name: str | None = None):
        super().__init__(coef, name)
        if critic not in SAC_CRITIC_REDUCTIONS:
            raise ValueError(
                f"SACActorLoss: critic must be one of {SAC_CRITIC_REDUCTIONS}, got {critic!r}"
            )
        self.critic = critic

    def forward(self, x: Inputs) -> Tensor:
        q: Tensor = x["q"]
        if q.dim() == 2:
            q = q.amin(0) if self.critic == "min" else q.mean(0)
        return (x["alpha"] * x["log_prob"] - q).mean()

    def derivative(self, x: Inputs) -> dict[str, Tensor]:
        q, log_prob = x["q"], x["log_prob"]
        size = log_prob.numel()
        if q.dim() == 1:
            grad_q = torch.ones_like(q)
        elif self.critic == "min":
            grad_q = _min_share(q)
        else:
            grad_q = torch.full_like(q, 1.0 / q.shape[0])
        alpha = torch.as_tensor(x["alpha"], dtype=log_prob.dtype, device=log_prob.device)
        return {
            "log_prob": (alpha * (self.coef / size)).expand_as(log_prob).clone(),
            "q": grad_q.mul_(-self.coef / size),
        }


#: how :class:`DeterministicActorLoss` reduces several critics to one value per sample.
CRITIC_REDUCTIONS = ("first", "min", "mean")


@LOSS_TERMS.register("deterministic_actor")
class DeterministicActorLoss(LossTerm):
    """The deterministic policy gradient's actor loss ``-mean(Q(s, mu(s)))`` (DDPG, TD3,
    DrQ-v2), with several critics reduced by ``critic``: ``"first"`` (TD3: ``Q_1``),
    ``"min"`` (DrQ-v2) or ``"mean"``. Input ``q`` ``[E, B]`` or ``[B]``.
    Derivative: ``-1 / B`` on the chosen critic (shared among tied minima, or ``-1 / (E B)``)."""

    default_name = "actor"
    inputs = ("q",)
    differentiable = ("q",)

    def __init__(self, critic: str = "first", coef: float = 1.0, name: str | None = None):
        super().__init__(coef, name)
        if critic not in CRITIC_REDUCTIONS:
            raise ValueError(
                f"DeterministicActorLoss: critic must be one of {CRITIC_REDUCTIONS}, got {critic!r}"
            )
        self.critic = critic

    def _reduce(self, q: Tensor) -> Tensor:
        if q.dim() == 1:
            return q
        if self.critic == "first":
            return q[0]
        return q.amin(0) if self.critic == "min" else q.mean(0)

    def forward(self, x: Inputs) -> Tensor:
        return -self._reduce(x["q"]).mean()

    def derivative(self, x: Inputs) -> dict[str, Tensor]:
        q: Tensor = x["q"]
        size = q.shape[-1]
        if q.dim() == 1:
            share = torch.ones_like(q)
        elif self.critic == "first":
            share = torch.zeros_like(q)
            share[0] = 1.0
        elif self.critic == "min":
            share = _min_share(q)
        else:
            share = torch.full_like(q, 1.0 / q.shape[0])
        return {"q": share.mul_(-self.coef / size)}


@LOSS_TERMS.register("discrete_sac_actor")
class DiscreteSACActorLoss(LossTerm):
    """SAC-discrete's actor loss, an exact expectation over the categorical policy
    (Christodoulou 2019): ``mean_s sum_a pi(a|s) (alpha log pi(a|s) - Q(s, a))`` from the
    actor's ``logits`` ``[B, A]``, fixed ``q`` ``[B, A]`` (minimum over critics) and ``alpha``.

    Derivative with respect to the logits: ``pi * (g - sum_a pi g) / B`` with
    ``g = alpha (log pi + 1) - Q``.
    """

    default_name = "actor"
    inputs = ("logits", "q", "alpha")
    differentiable = ("logits",)

    def forward(self, x: Inputs) -> Tensor:
        log_probs = torch.log_softmax(x["logits"], dim=-1)
        return (log_probs.exp() * (x["alpha"] * log_probs - x["q"])).sum(-1).mean()

    def derivative(self, x: Inputs) -> dict[str, Tensor]:
        log_probs = torch.log_softmax(x["logits"], dim=-1)
        probs = log_probs.exp()
        g = x["alpha"] * (log_probs + 1.0) - x["q"]
        centred = g - (probs * g).sum(-1, keepdim=True)
        return {"logits": (probs * centred).mul_(self.coef / probs.shape[0])}


__all__ = [
    "CRITIC_REDUCTIONS",
    "SAC_CRITIC_REDUCTIONS",
    "TD_KINDS",
    "DeterministicActorLoss",
    "DiscreteSACActorLoss",
    "SACActorLoss",
    "TDLoss",
]
