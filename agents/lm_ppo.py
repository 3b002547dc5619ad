"""PPO for language models, RLHF style (Ziegler et al. 2019; Stiennon et al. 2020;
Ouyang et al. 2022): one token per step, a per-token KL penalty in the reward, GAE over tokens."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from rlkit.config.rules import Rule, non_negative, positive, unit
from rlkit.losses import ClippedSurrogate, EntropyBonus, LossTerm, ValueLoss
from rlkit.prototypes import AGENTS, LanguageModelAgent, LanguageModelConfig
from rlkit.reward_models import ReferenceKLPenalty, RewardModel
from rlkit.storages.completions import CompletionBatch, masked_whiten, token_gae


@dataclasses.dataclass
class LMPPOConfig(LanguageModelConfig):
    """Token-level PPO hyperparameters (on top of :class:`LanguageModelConfig`)."""

    #: initial weight of the per-token KL penalty against the reference (TRL: 0.05).
    kl_coef: float = 0.05
    #: adapt kl_coef towards this KL per completion (Ziegler et al.'s controller); None: fixed.
    target_kl: float | None = None
    #: the controller's horizon in completions.
    kl_horizon: int = 10_000
    #: discount over tokens (1: undiscounted, as TRL).
    gamma: float = 1.0
    #: GAE lambda over tokens (TRL: 0.95).
    gae_lambda: float = 0.95
    #: value-loss weight (the loss is the squared error; TRL's 0.1 on half of it is 0.05).
    vf_coef: float = 0.05
    #: value clip around the old value (TRL: 0.2); None disables it.
    clip_range_vf: float | None = 0.2
    #: whiten advantages over the batch's tokens (TRL: yes).
    normalize_advantage: bool = True
    #: entropy bonus weight.
    ent_coef: float = 0.0
    #: passes over each batch (TRL: 4).
    epochs: int = 4

    rules: ClassVar[dict[str, Rule]] = {
        "kl_coef": non_negative(),
        "target_kl": positive(none=True),
        "kl_horizon": positive(),
        "gamma": unit(),
        "gae_lambda": unit(),
        "vf_coef": non_negative(),
        "clip_range_vf": positive(none=True),
        "ent_coef": non_negative(),
    }


@AGENTS.register("lm_ppo")
class LMPPO(LanguageModelAgent):
    """Token-level PPO: a value head on the policy's trunk (``value_head="shared"``), the
    reward model's score on the last token and ``-kl_coef * log(pi / pi_ref)`` on every token
    (adaptive with ``target_kl``), GAE over tokens, clipped surrogate and clipped value loss."""

    Config = LMPPOConfig
    config: LMPPOConfig
    value_head = "shared"

    def make_kl_penalty(self) -> RewardModel | None:
        cfg = self.config
        if cfg.kl_coef == 0:
            return None
        return ReferenceKLPenalty(
            coef=cfg.kl_coef, target=cfg.target_kl, horizon=cfg.kl_horizon, name="kl"
        )

    def loss_terms(self) -> list[LossTerm]:
        cfg = self.config
        return [
            ClippedSurrogate(cfg.clip_range),
            ValueLoss(cfg.vf_coef, clip_range=cfg.clip_range_vf),
            EntropyBonus(cfg.ent_coef),
        ]

    def compute_advantages(self, rollout: CompletionBatch) -> None:
        assert rollout.token_reward is not None and rollout.old_value is not None
        cfg = self.config
        mask = rollout.completion_mask
        advantage, returns = token_gae(
            rollout.token_reward, rollout.old_value, mask, cfg.gamma, cfg.gae_lambda
        )
        rollout.advantage = masked_whiten(advantage, mask) if cfg.normalize_advantage else advantage
        rollout.returns = returns
