"""Trust-region terms: TRPO's importance-sampled surrogate (its KL constraint is
:class:`~rlkit.losses.PolicyKL`).

The closed form is array-agnostic (NumPy or torch; see :mod:`rlkit.losses.base`)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from rlkit.losses.base import LOSS_TERMS, Inputs, LossTerm, array_namespace


@LOSS_TERMS.register("surrogate")
class Surrogate(LossTerm):
    """The unclipped surrogate of TRPO (Schulman et al. 2015, eq. 14) as a loss,
    ``-mean(r A)`` with ``r = exp(log_prob - old_log_prob)``; at ``r = 1`` its gradient is the
    policy gradient's. Derivative with respect to ``log_prob``: ``-r A / B``. Diagnostic:
    ``approx_kl`` (``mean((r - 1) - log r)``)."""

    default_name = "policy"
    inputs = ("log_prob", "old_log_prob", "advantage")
    differentiable = ("log_prob",)
    array_agnostic = True

    def forward(self, x: Inputs) -> Tensor:
        ratio = (x["log_prob"] - x["old_log_prob"]).exp()
        return -(ratio * x["advantage"]).mean()

    def value_and_derivative(self, x: Inputs) -> tuple[Any, dict[str, Any]]:
        xp = array_namespace(x["log_prob"])
        weighted = xp.exp(x["log_prob"] - x["old_log_prob"]) * x["advantage"]
        return -weighted.mean(), {"log_prob": weighted * (-self.coef / weighted.shape[0])}

    def derivative(self, x: Inputs) -> dict[str, Any]:
        return self.value_and_derivative(x)[1]

    def diagnostics(self, x: Inputs) -> dict[str, Tensor]:
        log_ratio = x["log_prob"] - x["old_log_prob"]
        return {"approx_kl": (log_ratio.exp() - 1 - log_ratio).mean()}


__all__ = ["Surrogate"]
