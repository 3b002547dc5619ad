"""Regression terms: the (optionally clipped) value loss, also used for other predictions."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rlkit.losses.base import LOSS_TERMS, Inputs, LossTerm, array_namespace


@LOSS_TERMS.register("value_loss")
class ValueLoss(LossTerm):
    """Squared error of a prediction to its target, ``mean((v - R)^2)``; with ``clip_range``
    PPO's clipped form ``mean(max((v - R)^2, (v_old + clip(v - v_old, +-c) - R)^2))``.

    By default the prediction is ``value``, the target ``return`` and the old prediction
    ``old_value``; other names reuse the term for other regressions (DAAC's advantage head:
    ``ValueLoss(prediction="advantage_pred", target="advantage")``).

    Derivative: ``2 (v - R) / B``; clipped, the larger of the two squared errors carries it
    (the clipped one only inside the clip range), ties split evenly as autograd's ``max``.
    """

    default_name = "value"
    array_agnostic = True

    def __init__(
        self,
        coef: float = 1.0,
        clip_range: float | None = None,
        prediction: str = "value",
        target: str = "return",
        old: str = "old_value",
        name: str | None = None,
    ) -> None:
        super().__init__(coef, name)
        if clip_range is not None and not clip_range > 0:
            raise ValueError(f"ValueLoss: clip_range must be > 0 or None, got {clip_range!r}")
        self.clip_range = None if clip_range is None else float(clip_range)
        self.prediction, self.target, self.old = str(prediction), str(target), str(old)

    @property
    def inputs(self) -> tuple[str, ...]:
        names = (self.prediction, self.target)
        return (*names, self.old) if self.clip_range is not None else names

    @property
    def differentiable(self) -> tuple[str, ...]:
        return (self.prediction,)

    def _errors(self, x: Inputs) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Unclipped error, clipped error and the unclipped change (clipped form only)."""
        value, target = x[self.prediction], x[self.target]
        error = value - target
        if self.clip_range is None:
            return error, None, None
        old = x[self.old]
        delta = value - old
        clipped = old + delta.clamp(-self.clip_range, self.clip_range) - target
        return error, clipped, delta

    def forward(self, x: Inputs) -> Tensor:
        error, clipped, _ = self._errors(x)
        if clipped is None:
            return error.square().mean()
        return torch.max(error.square(), clipped.square()).mean()

    def value_and_derivative(self, x: Inputs) -> tuple[Any, dict[str, Any]]:
        value, target = x[self.prediction], x[self.target]
        error = value - target
        scale = 2.0 * self.coef / error.shape[0]
        if self.clip_range is None:
            return (error * error).mean(), {self.prediction: error * scale}
        xp = array_namespace(value)
        c = self.clip_range
        old = x[self.old]
        delta = value - old
        clipped = old + delta.clip(-c, c) - target
        squares, clipped_squares = error * error, clipped * clipped
        d_clipped = clipped * (abs(delta) <= c)
        grad = xp.where(
            squares > clipped_squares,
            error,
            xp.where(squares < clipped_squares, d_clipped, 0.5 * (error + d_clipped)),
        )
        loss = xp.maximum(squares, clipped_squares).mean()
        return loss, {self.prediction: grad * scale}

    def derivative(self, x: Inputs) -> dict[str, Any]:
        return self.value_and_derivative(x)[1]


__all__ = ["ValueLoss"]
