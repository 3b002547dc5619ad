"""Intrinsic reward contract: exploration bonuses computed on collected transitions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import OneOf, Range, Rule, check_arguments, count, non_negative, positive
from rlkit.configurable import Configurable
from rlkit.registry import Registry
from rlkit.types import Obs
from rlkit.utils.running import RunningMeanStd

RewardNorm = Literal["rms", "minmax", "none"]


@dataclass
class TransitionBatch:
    """Transitions shaped ``[T, N, ...]`` (a rollout) or ``[B, ...]`` (a replay sample).

    ``next_obs`` is the true next observation (the final one where an episode ended); ``dones``
    marks steps that ended an episode.
    """

    obs: Obs
    actions: Tensor
    next_obs: Obs
    dones: Tensor


class IntrinsicReward(Configurable, nn.Module, ABC):
    """Base of exploration bonuses.

    ``compute(batch)`` returns the raw bonus, one value per transition (``[T, N]``);
    :meth:`reward` normalises it and applies the weight schedule
    ``coef * (1 - coef_decay) ** step``; ``update(batch)`` trains the module on the same data and
    returns its metrics. Episodic modules override :meth:`reset_episodes`.
    """

    kind = "intrinsic_reward"
    #: arguments shared by the bonuses (each applies where the class takes it); a module adds
    #: its own.
    argument_rules: ClassVar[dict[str, Rule]] = {
        "coef": non_negative(),
        "coef_decay": Range(0, 1, high_open=True),
        "reward_norm": OneOf(("rms", "minmax", "none")),
        "lr": positive(),
        "batch_size": count(integer=True),
        "feature_dim": count(integer=True),
        "hidden_dim": count(integer=True),
        "latent_dim": count(integer=True),
        "embedding_dim": count(integer=True),
        "k": count(integer=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        coef: float = 1.0,
        coef_decay: float = 0.0,
        reward_norm: RewardNorm = "rms",
    ) -> None:
        super().__init__()
        # Also checked here for subclasses that pass their own values (not their arguments).
        check_arguments(type(self).__name__, locals(), IntrinsicReward.argument_rules)
        self.observation_space = observation_space
        self.action_space = action_space
        self.coef = float(coef)
        self.coef_decay = float(coef_decay)
        self.reward_norm = reward_norm
        self.reward_stats = RunningMeanStd(())

    @abstractmethod
    def compute(self, batch: TransitionBatch) -> Tensor:
        """Raw bonus per transition, shaped like ``batch.dones``."""

    @abstractmethod
    def update(self, batch: TransitionBatch) -> dict[str, float]:
        """Train on ``batch``; return metrics (losses) for logging."""

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The module's own optimizers (checkpointed with the agent); none by default."""
        return {}

    def reset_episodes(self, env_mask: Tensor) -> None:
        """Clear episodic memory of the envs where ``env_mask`` is true (no-op by default)."""

    def weight(self, step: int) -> float:
        """The bonus coefficient at global env step ``step``."""
        return self.coef * (1.0 - self.coef_decay) ** step

    @torch.no_grad()
    def reward(self, batch: TransitionBatch, step: int) -> Tensor:
        """Normalised, weighted bonus to add to the extrinsic reward."""
        raw = self.compute(batch).float()
        if self.reward_norm == "rms":
            self.reward_stats.update(raw.reshape(-1))
            raw = raw / (self.reward_stats.std.to(raw.dtype) + 1e-8)
        elif self.reward_norm == "minmax":
            lo, hi = raw.min(), raw.max()
            raw = (raw - lo) / (hi - lo + 1e-8)
        return self.weight(step) * raw


INTRINSIC_REWARDS: Registry[IntrinsicReward] = Registry("intrinsic_reward", IntrinsicReward)
