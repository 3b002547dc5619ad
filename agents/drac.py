"""Data-regularized Actor-Critic (DrAC; Raileanu et al. 2021, "Automatic Data Augmentation for
Generalization in Reinforcement Learning")."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from gymnasium.vector import VectorEnv

from rlkit.augmentations.base import Augmentation
from rlkit.augmentations.basic import RandomShift
from rlkit.config.rules import Rule, non_negative
from rlkit.losses import PolicyKL, ValueLoss
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

    rules: ClassVar[dict[str, Rule]] = {"aug_coef": non_negative()}


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
        coef = self.config.aug_coef
        #: the regulariser terms: ``KL(pi(.|s) || pi(.|aug(s)))`` and ``(V(aug(s)) - V(s))^2``.
        self.regularisers = (
            PolicyKL(coef, name="aug_policy"),
            ValueLoss(coef, prediction="aug_value", target="value_target", name="aug_value"),
        )

    #: the regularisers run the policy on single augmented observations, without their state.
    trains_recurrent_policies: ClassVar[bool] = False

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
        """DrAC's policy and value regularisers ``(G_pi, G_V)`` on a batch of clean ``obs``
        (unweighted); ``values`` are the clean values if already computed (constants)."""
        with torch.no_grad():
            target_dist, _ = self.policy.action_distribution(obs)
            target_values = self.policy.value(obs) if values is None else values.detach()
        out = self.policy(self.augment(obs))
        inputs = {
            "old_dist": target_dist,
            "dist": out.dist,
            "aug_value": out.value,
            "value_target": target_values,
        }
        policy_term, value_term = self.regularisers
        return policy_term(inputs), value_term(inputs)

    def extra_losses(self, mb: RolloutBatch, values: torch.Tensor) -> dict[str, torch.Tensor]:
        """The regularisers, weighted by ``aug_coef`` (logged as ``loss/aug_policy`` and
        ``loss/aug_value``)."""
        policy_reg, value_reg = self.augmentation_loss(mb.obs, values)
        coef = self.config.aug_coef
        return {"aug_policy": coef * policy_reg, "aug_value": coef * value_reg}


__all__ = ["DrAC", "DrACConfig"]
