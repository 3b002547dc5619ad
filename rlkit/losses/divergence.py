"""Divergence between two policies' action distributions (PPG's cloning loss, DrAC's policy
regulariser)."""

from __future__ import annotations

from torch import Tensor

from rlkit.losses.base import LOSS_TERMS, Inputs, LossTerm


@LOSS_TERMS.register("policy_kl")
class PolicyKL(LossTerm):
    """``mean(KL(old_dist || dist))`` between two batches of action distributions (inputs
    ``old_dist``, ``dist``: :class:`~rlkit.distributions.ActionDistribution` objects with a
    closed-form KL). Differentiated by autograd through ``dist`` on every backend."""

    default_name = "policy_kl"
    inputs = ("old_dist", "dist")
    differentiable = ("dist",)

    def forward(self, x: Inputs) -> Tensor:
        out: Tensor = x["old_dist"].kl(x["dist"]).mean()
        return out


__all__ = ["PolicyKL"]
