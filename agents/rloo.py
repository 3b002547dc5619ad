"""REINFORCE Leave-One-Out (Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE
Style Optimization for Learning from Human Feedback in LLMs")."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from rlkit.config.rules import Rule, non_negative
from rlkit.losses import ClippedSurrogate, EntropyBonus, LossTerm
from rlkit.prototypes import AGENTS, LanguageModelAgent, LanguageModelConfig
from rlkit.reward_models import ReferenceKLPenalty, RewardModel
from rlkit.storages.completions import CompletionBatch, leave_one_out_advantages


@dataclasses.dataclass
class RLOOConfig(LanguageModelConfig):
    """RLOO hyperparameters (on top of :class:`LanguageModelConfig`)."""

    #: weight of the completion's KL to the reference subtracted from its reward (TRL: 0.05).
    kl_coef: float = 0.05
    #: entropy bonus weight.
    ent_coef: float = 0.0

    rules: ClassVar[dict[str, Rule]] = {
        "kl_coef": non_negative(),
        "ent_coef": non_negative(),
    }


@AGENTS.register("rloo")
class RLOO(LanguageModelAgent):
    """RLOO: ``k`` completions per prompt (the env's ``group_size``); each completion's reward,
    less ``kl_coef`` times its summed log-ratio to the reference, minus the mean reward of the
    other ``k - 1`` is its advantage; no critic. With one epoch and one minibatch the clipped
    surrogate is the paper's REINFORCE gradient; more epochs reuse samples PPO-style."""

    Config = RLOOConfig
    config: RLOOConfig
    min_group_size = 2

    def make_kl_penalty(self) -> RewardModel | None:
        coef = self.config.kl_coef
        return ReferenceKLPenalty(coef=coef, name="kl") if coef > 0 else None

    def loss_terms(self) -> list[LossTerm]:
        return [ClippedSurrogate(self.config.clip_range), EntropyBonus(self.config.ent_coef)]

    def compute_advantages(self, rollout: CompletionBatch) -> None:
        rollout.advantage = leave_one_out_advantages(rollout.reward, self.group_size)
