"""Policy-gradient terms: the clipped surrogate (PPO), the plain policy gradient (A2C,
REINFORCE, V-trace's policy gradient in IMPALA), a KL penalty and the entropy bonus.

Their closed forms are array-agnostic (NumPy or torch; see :mod:`rlkit.losses.base`)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rlkit.losses.base import LOSS_TERMS, Inputs, LossTerm, array_namespace


def _ratio(x: Inputs) -> tuple[Tensor, Tensor]:
    log_ratio = x["log_prob"] - x["old_log_prob"]
    return log_ratio, log_ratio.exp()


@LOSS_TERMS.register("clipped_surrogate")
class ClippedSurrogate(LossTerm):
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7):
    ``-mean(min(r A, clip(r, 1 - eps, 1 + eps) A))`` with ``r = exp(log_prob - old_log_prob)``.

    Derivative with respect to ``log_prob``: ``-r A / B`` where the unclipped product is the
    minimum (``r`` inside the clip range, or outside on the side that lowers the objective),
    else 0. Diagnostics: ``approx_kl`` (``mean((r - 1) - log r)``) and ``clip_fraction``.
    """

    default_name = "policy"
    inputs = ("log_prob", "old_log_prob", "advantage")
    differentiable = ("log_prob",)
    array_agnostic = True

    def __init__(self, clip_range: float = 0.2, coef: float = 1.0, name: str | None = None):
        super().__init__(coef, name)
        if not clip_range > 0:
            raise ValueError(f"ClippedSurrogate: clip_range must be > 0, got {clip_range!r}")
        self.clip_range = float(clip_range)

    def forward(self, x: Inputs) -> Tensor:
        _, ratio = _ratio(x)
        adv = x["advantage"]
        clipped = ratio.clamp(1.0 - self.clip_range, 1.0 + self.clip_range)
        return -torch.min(adv * ratio, adv * clipped).mean()

    def value_and_derivative(self, x: Inputs) -> tuple[Any, dict[str, Any]]:
        xp = array_namespace(x["log_prob"])
        ratio = xp.exp(x["log_prob"] - x["old_log_prob"])
        adv = x["advantage"]
        surrogate = adv * ratio
        clipped = adv * ratio.clip(1.0 - self.clip_range, 1.0 + self.clip_range)
        value = -xp.minimum(surrogate, clipped).mean()
        grad = surrogate * (surrogate <= clipped)
        grad *= -self.coef / grad.shape[0]
        return value, {"log_prob": grad}

    def derivative(self, x: Inputs) -> dict[str, Any]:
        return self.value_and_derivative(x)[1]

    def diagnostics(self, x: Inputs) -> dict[str, Tensor]:
        log_ratio, ratio = _ratio(x)
        return {
            "approx_kl": ((ratio - 1) - log_ratio).mean(),
            "clip_fraction": ((ratio - 1).abs() > self.clip_range).float().mean(),
        }


@LOSS_TERMS.register("policy_gradient")
class PolicyGradient(LossTerm):
    """The score-function policy gradient ``-mean(A log pi(a|s))`` (A2C, REINFORCE; IMPALA's
    with V-trace's ``rho_s (r_s + gamma v_{s+1} - V(x_s))`` as ``advantage``).
    Derivative: ``-A / B``."""

    default_name = "policy"
    inputs = ("log_prob", "advantage")
    differentiable = ("log_prob",)
    array_agnostic = True

    def forward(self, x: Inputs) -> Tensor:
        return -(x["advantage"] * x["log_prob"]).mean()

    def value_and_derivative(self, x: Inputs) -> tuple[Any, dict[str, Any]]:
        adv = x["advantage"]
        return -(adv * x["log_prob"]).mean(), {"log_prob": adv * (-self.coef / adv.shape[0])}

    def derivative(self, x: Inputs) -> dict[str, Any]:
        return self.value_and_derivative(x)[1]


@LOSS_TERMS.register("kl_penalty")
class KLPenalty(LossTerm):
    """A penalty ``coef * KL(pi_old || pi)`` estimated per sample from the log-ratio,
    ``mean((r - 1) - log r)`` with ``r = pi / pi_old`` (Schulman's unbiased, non-negative
    estimator; the penalty of PPO's KL variant, Schulman et al. 2017 section 4).

    With ``target_kl`` the coefficient adapts after each update (:meth:`adapt`): halved when
    the measured KL is below ``target_kl / 1.5``, doubled above ``1.5 * target_kl``. The
    coefficient is saved with the term's state. Derivative: ``coef (r - 1) / B``.
    """

    default_name = "kl"
    inputs = ("log_prob", "old_log_prob")
    differentiable = ("log_prob",)
    array_agnostic = True

    def __init__(
        self, coef: float = 1.0, target_kl: float | None = None, name: str | None = None
    ) -> None:
        super().__init__(coef, name)
        if target_kl is not None and not target_kl > 0:
            raise ValueError(f"KLPenalty: target_kl must be > 0 or None, got {target_kl!r}")
        if not self.coef >= 0:
            raise ValueError(f"KLPenalty: coef must be >= 0, got {coef!r}")
        self.target_kl = None if target_kl is None else float(target_kl)

    def forward(self, x: Inputs) -> Tensor:
        log_ratio, ratio = _ratio(x)
        return ((ratio - 1) - log_ratio).mean()

    def value_and_derivative(self, x: Inputs) -> tuple[Any, dict[str, Any]]:
        xp = array_namespace(x["log_prob"])
        log_ratio = x["log_prob"] - x["old_log_prob"]
        excess = xp.exp(log_ratio) - 1
        value = (excess - log_ratio).mean()
        return value, {"log_prob": excess * (self.coef / excess.shape[0])}

    def derivative(self, x: Inputs) -> dict[str, Any]:
        return self.value_and_derivative(x)[1]

    def adapt(self, kl: float) -> None:
        """Adjust the coefficient to the KL measured over the last update (with target_kl)."""
        if self.target_kl is None:
            return
        if kl < self.target_kl / 1.5:
            self.coef /= 2.0
        elif kl > self.target_kl * 1.5:
            self.coef *= 2.0

    def get_extra_state(self) -> Tensor:
        return torch.tensor([self.coef], dtype=torch.float64)

    def set_extra_state(self, state: Any) -> None:
        self.coef = float(state[0])


@LOSS_TERMS.register("entropy_bonus")
class EntropyBonus(LossTerm):
    """The entropy bonus as a loss, ``-mean(entropy)`` (weighted by the entropy coefficient).
    Derivative: ``-coef / B``."""

    default_name = "entropy"
    inputs = ("entropy",)
    differentiable = ("entropy",)
    array_agnostic = True

    def forward(self, x: Inputs) -> Tensor:
        return -x["entropy"].mean()

    def value_and_derivative(self, x: Inputs) -> tuple[Any, dict[str, Any]]:
        entropy = x["entropy"]
        xp = array_namespace(entropy)
        return -entropy.mean(), {"entropy": xp.full_like(entropy, -self.coef / entropy.shape[0])}

    def derivative(self, x: Inputs) -> dict[str, Any]:
        return self.value_and_derivative(x)[1]


__all__ = ["ClippedSurrogate", "EntropyBonus", "KLPenalty", "PolicyGradient"]
