"""The KL to a frozen reference policy as a loss (GRPO's ``beta`` term; Shao et al. 2024,
"DeepSeekMath", eq. 4), estimated per sample from log-probabilities."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from rlkit.losses.base import LOSS_TERMS, Inputs, LossTerm, array_namespace


@LOSS_TERMS.register("reference_kl")
class ReferenceKL(LossTerm):
    """``mean(exp(q - p) - (q - p) - 1)`` with ``p = log_prob`` (current policy) and
    ``q = ref_log_prob`` (reference): Schulman's non-negative, unbiased "k3" estimator of
    ``KL(pi || pi_ref)`` on samples from ``pi``, as GRPO adds it to the loss.
    Derivative with respect to ``log_prob``: ``coef (1 - exp(q - p)) / B``."""

    default_name = "reference_kl"
    inputs = ("log_prob", "ref_log_prob")
    differentiable = ("log_prob",)
    array_agnostic = True

    def forward(self, x: Inputs) -> Tensor:
        delta = x["ref_log_prob"] - x["log_prob"]
        return (delta.exp() - delta - 1).mean()

    def value_and_derivative(self, x: Inputs) -> tuple[Any, dict[str, Any]]:
        xp = array_namespace(x["log_prob"])
        delta = x["ref_log_prob"] - x["log_prob"]
        ratio = xp.exp(delta)
        value = (ratio - delta - 1).mean()
        return value, {"log_prob": (1 - ratio) * (self.coef / delta.shape[0])}

    def derivative(self, x: Inputs) -> dict[str, Any]:
        return self.value_and_derivative(x)[1]


__all__ = ["ReferenceKL"]
