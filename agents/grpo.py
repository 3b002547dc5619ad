"""Group Relative Policy Optimization (Shao et al. 2024, "DeepSeekMath", section 4.1)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from rlkit.config.rules import Rule, non_negative
from rlkit.losses import ClippedSurrogate, EntropyBonus, LossTerm, ReferenceKL
from rlkit.prototypes import AGENTS, LanguageModelAgent, LanguageModelConfig
from rlkit.storages.completions import CompletionBatch, group_advantages


@dataclasses.dataclass
class GRPOConfig(LanguageModelConfig):
    """GRPO hyperparameters (on top of :class:`LanguageModelConfig`)."""

    #: weight of the KL to the reference in the loss (the paper's 0.04; TRL's default is 0,
    #: which also skips the reference model).
    beta: float = 0.04
    #: divide each group's centred rewards by the group's standard deviation (the paper; Dr.
    #: GRPO, Liu et al. 2025, argues for False).
    scale_rewards: bool = True
    #: entropy bonus weight (0 in the paper).
    ent_coef: float = 0.0

    rules: ClassVar[dict[str, Rule]] = {"beta": non_negative(), "ent_coef": non_negative()}


@AGENTS.register("grpo")
class GRPO(LanguageModelAgent):
    """GRPO: ``G`` completions per prompt (the env's ``group_size``), each completion's
    advantage its reward standardised within its group, no critic; the clipped surrogate per
    token plus ``beta`` times the k3 estimate of the KL to the reference. Token-level mean over
    the minibatch (as TRL's default ``loss_type``; the paper averages per completion first)."""

    Config = GRPOConfig
    config: GRPOConfig
    min_group_size = 2

    def loss_terms(self) -> list[LossTerm]:
        cfg = self.config
        return [
            ClippedSurrogate(cfg.clip_range),
            ReferenceKL(cfg.beta),
            EntropyBonus(cfg.ent_coef),
        ]

    def compute_advantages(self, rollout: CompletionBatch) -> None:
        rollout.advantage = group_advantages(
            rollout.reward, self.group_size, self.config.scale_rewards
        )
