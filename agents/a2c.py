"""Advantage Actor-Critic (synchronous A3C, Mnih et al. 2016)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from rlkit.config.rules import Range, Rule, positive
from rlkit.losses import EntropyBonus, LossTerm, PolicyGradient, ValueLoss
from rlkit.prototypes import AGENTS, OnPolicyAgent, OnPolicyConfig


@dataclasses.dataclass
class A2CConfig(OnPolicyConfig):
    """A2C defaults (Stable-Baselines3's): short rollouts, one full-batch step, RMSprop."""

    #: rollout length per env.
    num_steps: int = 5
    #: minibatch size (samples); larger than any rollout: one full batch.
    batch_size: int = 1_000_000  # always the whole rollout
    #: passes over each rollout (one RMSprop step per rollout).
    num_epochs: int = 1
    #: learning rate of the RMSprop optimizer (annealed to 0 when anneal_lr).
    lr: float = 7e-4
    #: GAE lambda; 1.0: plain n-step returns bootstrapped at the rollout's end.
    gae_lambda: float = 1.0
    #: normalise advantages to zero mean and unit std (off, as SB3's A2C).
    normalize_advantages: bool = False
    #: RMSprop smoothing constant and epsilon (TF-style A2C settings).
    rms_alpha: float = 0.99
    #: RMSprop's epsilon (added to the denominator for stability).
    rms_eps: float = 1e-5

    rules: ClassVar[dict[str, Rule]] = {
        "rms_alpha": Range(0, 1, high_open=True),
        "rms_eps": positive(),
    }


@AGENTS.register("a2c")
class A2C(OnPolicyAgent):
    """A2C: policy gradient with a learned baseline, entropy bonus, one update per rollout."""

    Config = A2CConfig
    config: A2CConfig

    def loss_terms(self) -> list[LossTerm]:
        cfg = self.config
        return [PolicyGradient(), ValueLoss(cfg.vf_coef), EntropyBonus(cfg.ent_coef)]

    def make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        return torch.optim.RMSprop(
            [self.flat_params], lr=cfg.lr, alpha=cfg.rms_alpha, eps=cfg.rms_eps
        )
