"""The KL penalty against the frozen reference model, per token, with a fixed or adaptive
coefficient (the RLHF reward shaping of Ziegler et al. 2019 and Stiennon et al. 2020)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from rlkit.config.rules import OneOf, Rule, Satisfies, count, non_negative, positive
from rlkit.reward_models.base import REWARD_MODELS, RewardModel, TextBatch

Estimator = Literal["k1", "k2", "k3"]


def _bounds(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and all(math.isfinite(float(v)) for v in value)
        and 0 <= float(value[0]) < float(value[1])
    )


COEF_BOUNDS = Satisfies(_bounds, "a pair [low, high] of finite numbers with 0 <= low < high", True)


def token_kl(log_probs: Tensor, ref_log_probs: Tensor, estimator: Estimator = "k1") -> Tensor:
    """Per-token estimate of ``KL(policy || reference)`` from the sampled tokens' log-probs
    (Schulman 2020, "Approximating KL divergence"): ``k1 = log r``, ``k2 = (log r)^2 / 2``,
    ``k3 = exp(-log r) + log r - 1`` with ``log r = logp - ref_logp``. k1 is unbiased but
    can be negative; k2 and k3 are non-negative (k3 unbiased)."""
    log_ratio = log_probs.float() - ref_log_probs.float()
    if estimator == "k1":
        return log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    return torch.exp(-log_ratio) + log_ratio - 1


@REWARD_MODELS.register("kl_penalty")
class ReferenceKLPenalty(RewardModel):
    """A per-token reward ``-coef * KL_t`` keeping the policy near the frozen reference model,
    with a fixed or adaptive coefficient (Ziegler et al. 2019, "Fine-Tuning Language Models
    from Human Preferences").

    ``KL_t`` is :func:`token_kl` (``estimator`` ``"k1"``, ``"k2"`` or ``"k3"``) on the
    completion tokens, zero elsewhere; ``[B, T]``. Reads ``log_probs``, ``ref_log_probs`` and
    ``completion_mask``; the rewards are constants (detached).

    With ``target``, :meth:`update` adapts the coefficient after every iteration as
    Ziegler et al. (section 2.2) and TRL's ``AdaptiveKLController`` do: with ``KL`` the mean
    over completions of the summed k1 estimate, ``e = clip(KL / target - 1, -0.2, 0.2)`` and
    ``coef *= 1 + e * B / horizon`` (``B`` completions), then clipped to ``clip_coef``
    ``[low, high]`` when given. The coefficient is saved with the module's state.
    """

    default_name = "kl"
    needs = ("log_probs", "ref_log_probs", "completion_mask")
    argument_rules: ClassVar[dict[str, Rule]] = {
        "coef": non_negative(),
        "target": positive(none=True),
        "horizon": count(1, integer=True),
        "estimator": OneOf(("k1", "k2", "k3")),
        "clip_coef": COEF_BOUNDS,
    }

    def __init__(
        self,
        coef: float = 0.05,
        target: float | None = None,
        horizon: int = 10000,
        estimator: Estimator = "k1",
        clip_coef: Sequence[float] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.coef = float(coef)
        self.target = None if target is None else float(target)
        self.horizon = int(horizon)
        self.estimator: Estimator = estimator
        self.clip_coef = None if clip_coef is None else (float(clip_coef[0]), float(clip_coef[1]))
        if self.clip_coef is not None:
            self.coef = min(max(self.coef, self.clip_coef[0]), self.clip_coef[1])

    def _mask(self, batch: TextBatch, like: Tensor) -> Tensor:
        assert batch.completion_mask is not None  # checked by score()
        mask = batch.completion_mask.to(device=like.device, dtype=torch.bool)
        if mask.shape != like.shape:
            raise ValueError(
                f"ReferenceKLPenalty ({self.name!r}): log_probs {tuple(like.shape)}, "
                f"ref_log_probs and completion_mask {tuple(mask.shape)} must have the same "
                "shape [B, T]"
            )
        return mask

    def token_kl(self, batch: TextBatch, estimator: Estimator | None = None) -> Tensor:
        """The per-token KL estimate ``[B, T]`` (zero outside the completion), detached."""
        assert batch.log_probs is not None and batch.ref_log_probs is not None
        log_probs = batch.log_probs.detach()
        ref_log_probs = batch.ref_log_probs.detach().to(log_probs.device)
        if ref_log_probs.shape != log_probs.shape:
            raise ValueError(
                f"ReferenceKLPenalty ({self.name!r}): log_probs {tuple(log_probs.shape)} and "
                f"ref_log_probs {tuple(ref_log_probs.shape)} must have the same shape [B, T]"
            )
        kl = token_kl(log_probs, ref_log_probs, estimator or self.estimator)
        # where, not a product: padded positions may hold -inf log-probabilities
        return torch.where(self._mask(batch, kl), kl, torch.zeros_like(kl))

    def forward(self, batch: TextBatch) -> Tensor:
        return -self.coef * self.token_kl(batch)

    def measured_kl(self, batch: TextBatch) -> float:
        """The KL the controller reads: the mean over completions of the summed k1 estimate."""
        return float(self.token_kl(batch, "k1").sum(dim=1).mean())

    def update(self, batch: TextBatch) -> dict[str, float]:
        """Adapt the coefficient to the batch's measured KL (with ``target``); returns
        ``{"kl": measured KL, "kl_coef": coefficient after the update}``."""
        missing = [f for f in self.needs if getattr(batch, f, None) is None]
        if missing:
            raise ValueError(
                f"reward model ReferenceKLPenalty ({self.name!r}) needs the batch field(s) "
                f"{', '.join(missing)} to update its coefficient, which this caller did not provide"
            )
        kl = self.measured_kl(batch)
        if self.target is not None and math.isfinite(kl):
            error = min(max(kl / self.target - 1.0, -0.2), 0.2)
            self.coef *= 1.0 + error * len(batch) / self.horizon
            if self.clip_coef is not None:
                self.coef = min(max(self.coef, self.clip_coef[0]), self.clip_coef[1])
        return {"kl": kl, "kl_coef": self.coef}

    def get_extra_state(self) -> Tensor:
        return torch.tensor([self.coef], dtype=torch.float64)

    def set_extra_state(self, state: Any) -> None:
        self.coef = float(state[0])

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, coef={self.coef}, target={self.target}, "
            f"estimator={self.estimator!r}"
        )


__all__ = ["ReferenceKLPenalty", "token_kl"]
