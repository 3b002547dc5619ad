"""Data-regularized Actor-Critic (DrAC; Raileanu et al. 2021, "Automatic Data Augmentation for
Generalization in Reinforcement Learning")."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from gymnasium.vector import VectorEnv

from rlkit.augmentations.base import Augmentation
from rlkit.augmentations.basic import RandomShift
from rlkit.prototypes import AGENTS
from rlkit.prototypes.base import _has_image
from rlkit.prototypes.on_policy import RolloutBatch, normalize
from rlkit.types import Obs

from .ppo import PPO, PPOConfig


@dataclasses.dataclass
class DrACConfig(PPOConfig):
    """DrAC hyperparameters (on top of :class:`PPOConfig`)."""

    #: weight of the augmentation regulariser (the paper's alpha_r).
    aug_coef: float = 0.1


@AGENTS.register("drac")
class DrAC(PPO):
    """PPO on clean observations plus DrAC's regulariser on augmented ones:
    ``aug_coef * (KL(pi(.|s) || pi(.|aug(s))) + (V(aug(s)) - V(s))^2)``, with the clean
    policy and value as fixed targets (no gradient through them).

    ``augmentation`` defaults to ``RandomShift(pad=4)`` for image observations; vector
    observations need an explicit one. Unlike RAD-style agents the augmentation is used only in
    the regulariser, never in the PPO loss.
    """

    Config = DrACConfig
    config: DrACConfig

    def __init__(
        self,
        env: VectorEnv,
        config: Any = None,
        *,
        augmentation: Augmentation | str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if augmentation is None:
            if not _has_image(env.single_observation_space):
                raise ValueError(
                    "DrAC: the default augmentation (RandomShift) needs image observations, but "
                    f"the env's observation space is {env.single_observation_space!r}; pass "
                    "augmentation=... (an Augmentation, a registered id or a spec)"
                )
            augmentation = RandomShift(pad=4)
        super().__init__(env, config, augmentation=augmentation, **kwargs)

    def minibatches(self) -> Iterator[RolloutBatch]:
        """Minibatches of clean observations (advantages normalised as in the base)."""
        cfg = self.config
        full = cfg.batch_size >= len(self.storage)
        for mb in self.storage.minibatches(cfg.batch_size, self._generator):
            if cfg.normalize_advantages and not full:
                mb = dataclasses.replace(mb, advantages=normalize(mb.advantages))
            yield mb

    def augmentation_loss(
        self, obs: Obs, values: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """DrAC's policy and value regularisers ``(G_pi, G_V)`` on a batch of clean ``obs``;
        ``values`` are the clean values if already computed (treated as constants)."""
        with torch.no_grad():
            target_dist, _ = self.policy.action_distribution(obs)
            target_values = self.policy.value(obs) if values is None else values.detach()
        out = self.policy(self.augment(obs))
        policy_reg = target_dist.kl(out.dist).mean()
        value_reg = F.mse_loss(out.value, target_values)
        return policy_reg, value_reg

    def update(self) -> dict[str, float]:
        cfg = self.config
        stats: dict[str, list[torch.Tensor]] = {}
        for epoch in range(cfg.num_epochs):
            last_epoch = epoch == cfg.num_epochs - 1
            for mb in self.minibatches():
                log_prob, entropy, values, _ = self.policy.evaluate_actions(mb.obs, mb.actions)
                log_ratio = log_prob - mb.old_log_probs
                ratio = log_ratio.exp()
                if cfg.target_kl is not None:
                    with torch.no_grad():
                        approx_kl = ((ratio - 1) - log_ratio).mean()
                    if approx_kl > 1.5 * cfg.target_kl:
                        return self._summary(stats, early_stop_epoch=epoch)
                adv = mb.advantages
                clipped_ratio = ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range)
                policy_loss = -torch.min(adv * ratio, adv * clipped_ratio).mean()
                if cfg.clip_range_vf is None:
                    value_loss = F.mse_loss(values, mb.returns)
                else:
                    clipped = mb.old_values + (values - mb.old_values).clamp(
                        -cfg.clip_range_vf, cfg.clip_range_vf
                    )
                    value_loss = torch.max(
                        (values - mb.returns).pow(2), (clipped - mb.returns).pow(2)
                    ).mean()
                policy_reg, value_reg = self.augmentation_loss(mb.obs, values)
                loss = (
                    policy_loss
                    + cfg.vf_coef * value_loss
                    - cfg.ent_coef * entropy.mean()
                    + cfg.aug_coef * (policy_reg + value_reg)
                )
                self.clip_and_step(loss)
                if last_epoch:
                    with torch.no_grad():
                        self._record(stats, policy_loss, value_loss, entropy, ratio, log_ratio)
                        stats.setdefault("loss/aug_policy", []).append(policy_reg.detach())
                        stats.setdefault("loss/aug_value", []).append(value_reg.detach())
        return self._summary(stats)


__all__ = ["DrAC", "DrACConfig"]
