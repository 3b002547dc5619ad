"""What one iteration of language-model RL collects: completions of prompts with per-token
quantities, minibatches of whole completions, and the advantage estimators over them.

Tensors are ``[B, T]`` over completion tokens (``completion_mask`` True on the generated
tokens, end-of-sequence included) or ``[B]`` per completion. Rows ``g * G ... g * G + G - 1``
answer the same prompt when a group size ``G`` is used (GRPO, RLOO).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class CompletionBatch:
    """Completions and what training reads of them (optional fields None when unused)."""

    #: left-padded prompt ids and mask ``[B, P]``.
    prompt_ids: Tensor
    prompt_mask: Tensor
    #: right-padded completion ids ``[B, T]`` and the mask of generated tokens.
    completion_ids: Tensor
    completion_mask: Tensor
    #: log-probabilities at sampling ``[B, T]`` (None: the training pass gives them, see
    #: ``LanguageModelAgent.single_pass``).
    old_log_prob: Tensor | None
    #: reward per completion ``[B]`` (every part summed over its tokens).
    reward: Tensor
    #: reward per token ``[B, T]`` (what token-level PPO discounts), or None.
    token_reward: Tensor | None = None
    #: the frozen reference's log-probabilities ``[B, T]``, or None.
    ref_log_prob: Tensor | None = None
    #: values at sampling ``[B, T]``, or None without a critic.
    old_value: Tensor | None = None
    #: advantage ``[B, T]`` and value target ``[B, T]`` (filled by the algorithm).
    advantage: Tensor | None = None
    returns: Tensor | None = None

    def __len__(self) -> int:
        return int(self.completion_ids.shape[0])

    def select(self, rows: Tensor) -> CompletionBatch:
        """The completions at ``rows`` (every tensor field indexed alike)."""
        fields = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            fields[field.name] = value[rows] if isinstance(value, Tensor) else value
        return CompletionBatch(**fields)

    def minibatches(
        self, size: int, generator: torch.Generator | None = None
    ) -> Iterator[CompletionBatch]:
        """Shuffled minibatches of ``size`` whole completions (the last one may be smaller)."""
        order = torch.randperm(len(self), generator=generator).to(self.completion_ids.device)
        for start in range(0, len(self), size):
            yield self.select(order[start : start + size])


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` over the True entries of ``mask`` (0 when there are none)."""
    weights = mask.to(x.dtype)
    return (x * weights).sum() / weights.sum().clamp(min=1.0)


def masked_whiten(x: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """``x`` shifted and scaled to zero mean, unit variance over ``mask`` (0 elsewhere)."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return ((x - mean) * torch.rsqrt(var + eps)) * mask.to(x.dtype)


def group_advantages(
    reward: Tensor, group_size: int, scale: bool = True, eps: float = 1e-4
) -> Tensor:
    """GRPO's advantage per completion (Shao et al. 2024, section 4.1.2): the reward minus
    its group's mean, divided by the group's standard deviation (``scale``; sample std,
    ``eps`` added, as the authors' and TRL's code). ``reward`` is ``[B]`` with
    ``B = groups * group_size``."""
    groups = reward.reshape(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    if scale:
        centred = centred / (groups.std(dim=1, keepdim=True) + eps)
    return centred.reshape(-1)


def leave_one_out_advantages(reward: Tensor, group_size: int) -> Tensor:
    """RLOO's advantage (Ahmadian et al. 2024, eq. 6 after Kool et al. 2019): each reward
    minus the mean of the other ``group_size - 1`` rewards of its group."""
    if group_size < 2:
        raise ValueError(f"leave_one_out_advantages: group_size must be >= 2, got {group_size}")
    groups = reward.reshape(-1, group_size)
    others = (groups.sum(dim=1, keepdim=True) - groups) / (group_size - 1)
    return (groups - others).reshape(-1)


def token_gae(
    reward: Tensor, value: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    """GAE over the tokens of each completion (``[B, T]``, right-padded; the episode ends
    after the last masked token, so nothing is bootstrapped past it). Returns
    ``(advantage, return)``, both 0 outside ``mask``."""
    m = mask.to(reward.dtype)
    value = value * m
    advantage = torch.zeros_like(reward)
    last = torch.zeros_like(reward[:, 0])
    for t in range(reward.shape[1] - 1, -1, -1):
        next_value = value[:, t + 1] if t + 1 < reward.shape[1] else torch.zeros_like(last)
        delta = reward[:, t] + gamma * next_value - value[:, t]
        last = (delta + gamma * lam * last) * m[:, t]
        advantage[:, t] = last
    return advantage, (advantage + value) * m


def last_token_reward(reward: Tensor, mask: Tensor) -> Tensor:
    """A ``[B]`` reward placed on the last generated token of each completion ``[B, T]``."""
    out = torch.zeros(mask.shape, dtype=reward.dtype, device=reward.device)
    last = (mask.long().sum(dim=1) - 1).clamp(min=0)
    out[torch.arange(mask.shape[0], device=mask.device), last] = reward
    return out * mask.to(reward.dtype)


__all__ = [
    "CompletionBatch",
    "group_advantages",
    "last_token_reward",
    "leave_one_out_advantages",
    "masked_mean",
    "masked_whiten",
    "token_gae",
]
