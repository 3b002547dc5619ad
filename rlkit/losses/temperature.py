"""SAC's entropy temperature: the learned coefficient, its loss and how it is configured."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from rlkit.config.rules import Rule, Satisfies
from rlkit.losses.base import LOSS_TERMS, Inputs, LossTerm


class EntropyCoefficient(nn.Module):
    """SAC's temperature ``alpha``, learned as ``log_alpha`` (a module so it is checkpointed)."""

    def __init__(self, initial: float = 1.0) -> None:
        super().__init__()
        if not initial > 0:
            raise ValueError(f"the initial entropy coefficient must be > 0, got {initial}")
        self.log_alpha = nn.Parameter(torch.tensor(math.log(initial)))

    def forward(self) -> Tensor:
        """``alpha`` without gradient (what the critic and actor losses use)."""
        return self.log_alpha.detach().exp()

    @property
    def learned(self) -> bool:
        """Whether the coefficient is trained (``"auto"``) or fixed."""
        return bool(self.log_alpha.requires_grad)

    @classmethod
    def from_setting(cls, value: float | str, owner: str) -> EntropyCoefficient:
        """From an SB3-style ``ent_coef`` (see :func:`parse_ent_coef`): learned or fixed."""
        learned, initial = parse_ent_coef(value, owner)
        module = cls(initial)
        module.requires_grad_(learned)
        return module


def parse_ent_coef(value: float | str, owner: str) -> tuple[bool, float]:
    """``(learned, initial value)`` from SB3-style ``ent_coef``: a number (fixed), ``"auto"``
    (learned from 1.0) or ``"auto_0.1"`` (learned from 0.1)."""
    if isinstance(value, str):
        if value == "auto":
            return True, 1.0
        if value.startswith("auto_"):
            try:
                initial = float(value[5:])
            except ValueError:
                initial = float("nan")
            if math.isfinite(initial) and initial > 0:
                return True, initial
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{owner}: ent_coef must be {ENT_COEF.text}, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{owner}: ent_coef must be {ENT_COEF.text}, got {value!r}")
    return False, float(value)


def parse_target_entropy(value: float | str, action_dim: int, owner: str) -> float:
    """SAC's target entropy: a number, or ``"auto"`` for ``-action_dim``."""
    if value == "auto":
        return -float(action_dim)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"{owner}: target_entropy must be {TARGET_ENTROPY.text}, got {value!r}")
    return number


def _checks(parse: Callable[[Any], object]) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        if isinstance(value, bool):
            return False
        try:
            parse(value)
        except (TypeError, ValueError):
            return False
        return True

    return test


#: the rule of SAC's ``ent_coef`` hyperparameter (:func:`parse_ent_coef`).
ENT_COEF = Satisfies(
    _checks(lambda v: parse_ent_coef(v, "")),
    "a finite number > 0, 'auto' or 'auto_<initial>' (initial > 0)",
)
#: the rule of SAC's ``target_entropy`` hyperparameter (:func:`parse_target_entropy`).
TARGET_ENTROPY = Satisfies(
    _checks(lambda v: parse_target_entropy(v, 1, "")), "a finite number or 'auto'"
)
#: the rules of SAC's temperature settings, as a config's ``rules`` table.
ENTROPY_RULES: dict[str, Rule] = {"ent_coef": ENT_COEF, "target_entropy": TARGET_ENTROPY}


@LOSS_TERMS.register("temperature")
class TemperatureLoss(LossTerm):
    """SAC's entropy-temperature loss ``-mean(log_alpha (log_prob + target_entropy))``
    (Haarnoja et al. 2018b, as Stable-Baselines3), differentiated only in ``log_alpha``; for
    SAC-discrete pass ``-entropy`` as ``log_prob``. Derivative:
    ``-mean(log_prob + target_entropy)``."""

    default_name = "ent_coef"
    inputs = ("log_alpha", "log_prob")
    differentiable = ("log_alpha",)

    def __init__(self, target_entropy: float, coef: float = 1.0, name: str | None = None):
        super().__init__(coef, name)
        self.target_entropy = float(target_entropy)

    def forward(self, x: Inputs) -> Tensor:
        gap = x["log_prob"].detach() + self.target_entropy
        return -(x["log_alpha"] * gap).mean()

    def derivative(self, x: Inputs) -> dict[str, Tensor]:
        gap = (x["log_prob"] + self.target_entropy).mean()
        log_alpha: Tensor = x["log_alpha"]
        return {"log_alpha": (-self.coef * gap).reshape(log_alpha.shape).to(log_alpha.dtype)}


__all__ = ["EntropyCoefficient", "TemperatureLoss", "parse_ent_coef", "parse_target_entropy"]
