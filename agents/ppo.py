"""Proximal Policy Optimization (Schulman et al. 2017), clipped-surrogate variant."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from rlkit.config.rules import Rule, positive
from rlkit.losses import ClippedSurrogate, EntropyBonus, Loss, LossTerm, ValueLoss
from rlkit.prototypes import AGENTS, OnPolicyAgent, OnPolicyConfig


@dataclasses.dataclass
class PPOConfig(OnPolicyConfig):
    """PPO hyperparameters (on top of :class:`OnPolicyConfig`)."""

    #: policy-ratio clip.
    clip_range: float = 0.2
    #: value clip around the old value; None disables value clipping.
    clip_range_vf: float | None = None
    #: stop the epoch loop early once the approximate KL exceeds 1.5 * target_kl.
    target_kl: float | None = None
    #: Adam's epsilon (1e-5 as CleanRL, the PPO paper's code and Stable-Baselines3's PPO).
    adam_eps: float = 1e-5
    #: linearly anneal clip_range to 0 over ``train(total_steps)`` (rl-baselines3-zoo's
    #: ``lin_0.2``).
    anneal_clip_range: bool = False

    rules: ClassVar[dict[str, Rule]] = {
        "clip_range": positive(),
        "clip_range_vf": positive(none=True),
        "target_kl": positive(none=True),
        "adam_eps": positive(),
    }


@AGENTS.register("ppo")
class PPO(OnPolicyAgent):
    """PPO: clipped surrogate, optional value clipping, entropy bonus, target-KL early stop.

    The value loss is the mean squared error to the GAE returns (as Stable-Baselines3),
    weighted by ``vf_coef``. Logged diagnostics (KL, clip fraction) are means over the last
    epoch's minibatches.
    """

    Config = PPOConfig
    config: PPOConfig

    def loss_terms(self) -> list[LossTerm]:
        cfg = self.config
        return [
            ClippedSurrogate(cfg.clip_range),
            ValueLoss(cfg.vf_coef, clip_range=cfg.clip_range_vf),
            EntropyBonus(cfg.ent_coef),
        ]

    def anneal_lr(self) -> None:
        """The learning-rate schedule, and with ``anneal_clip_range`` the clip range's."""
        super().anneal_lr()
        remaining = self.progress_remaining()
        if self.config.anneal_clip_range and remaining is not None:
            for term in self.terms:
                if isinstance(term, ClippedSurrogate):
                    term.clip_range = self.config.clip_range * remaining

    def make_optimizer(self) -> torch.optim.Optimizer:
        return self.new_optimizer([self.flat_params], self.config.lr, eps=self.config.adam_eps)

    def diagnostics_needed(self) -> bool:
        return self.config.target_kl is not None

    def stop_early(self, loss: Loss, epoch: int) -> bool:
        """Stop before a step whose minibatch has drifted past 1.5 * target_kl."""
        kl = loss.metrics.get("approx_kl")
        target = self.config.target_kl
        return target is not None and kl is not None and float(kl) > 1.5 * target
