"""Soft Actor-Critic for discrete actions (Christodoulou 2019)."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import Rule, unit
from rlkit.encoders.base import Encoder
from rlkit.losses import DiscreteSACActorLoss, LossTerm, TDLoss, TemperatureLoss, td_target
from rlkit.losses.targets import expected_soft_value
from rlkit.losses.temperature import ENT_COEF, EntropyCoefficient
from rlkit.policies.twin_q import CategoricalActorCritic
from rlkit.prototypes import AGENTS, OffPolicyAgent, OffPolicyConfig
from rlkit.storages.replay import ReplayBatch


@dataclasses.dataclass
class SACDiscreteConfig(OffPolicyConfig):
    """SAC-discrete hyperparameters. ``target_entropy_ratio`` sets the target entropy to that
    fraction of the maximum entropy ``log |A|`` (0.98 in the paper)."""

    #: entropy coefficient: a number (fixed), "auto" (learned from 1.0) or "auto_<initial>".
    ent_coef: float | str = "auto"
    #: target entropy as a fraction of the maximum entropy log |A|.
    target_entropy_ratio: float = 0.98

    rules: ClassVar[dict[str, Rule]] = {"ent_coef": ENT_COEF, "target_entropy_ratio": unit()}


@AGENTS.register("sac_discrete")
class SACDiscrete(OffPolicyAgent):
    """SAC-discrete: critics output ``Q(s, .)`` for every action, so the soft value and the
    actor's objective are exact expectations over the categorical policy (no sampling):

    ``V(s') = sum_a pi(a|s') (min_i Q'_i(s', a) - alpha log pi(a|s'))``,
    ``J_pi = E_s sum_a pi(a|s) (alpha log pi(a|s) - min_i Q_i(s, a))``,
    ``J_alpha = E_s sum_a pi(a|s) (-alpha (log pi(a|s) + H_target))``.
    """

    Config = SACDiscreteConfig
    config: SACDiscreteConfig
    action_spaces = (spaces.Discrete,)
    policy_class = CategoricalActorCritic
    policy: CategoricalActorCritic

    def default_policy(self, encoder: Encoder | None) -> CategoricalActorCritic:
        return CategoricalActorCritic(
            self.observation_space,
            self.action_space,
            encoder=encoder,
            hidden_sizes=self.config.hidden_sizes,
        )

    def setup(self) -> None:
        cfg, policy = self.config, self.policy
        self.critic_optimizer = self.add_optimizer("critic", policy.critic_modules())
        self.actor_optimizer = self.add_optimizer("actor", policy.actor_modules())
        self.target = self.add_target("target", policy, track=policy.critic_modules())
        self.ent_coef = EntropyCoefficient.from_setting(cfg.ent_coef, type(self).__name__)
        self.add_module("ent_coef", self.ent_coef)
        learned = self.ent_coef.learned
        self.ent_optimizer = self.add_optimizer("ent_coef", [self.ent_coef]) if learned else None
        self.target_entropy = cfg.target_entropy_ratio * math.log(policy.num_actions)
        self.action_start = int(policy.distribution.start)

    def loss_terms(self) -> dict[str, list[LossTerm]]:
        terms: dict[str, list[LossTerm]] = {
            "critic": [TDLoss("half_mse", name="critic")],
            "actor": [DiscreteSACActorLoss()],
        }
        if self.ent_optimizer is not None:
            terms["ent_coef"] = [TemperatureLoss(self.target_entropy)]
        return terms

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        policy, target = self.policy, self.target.net
        actions = batch.actions - self.action_start
        alpha = self.ent_coef()
        with torch.no_grad():
            next_logits = policy.actor(policy.features(batch.next_obs))
            next_q = target.q_values(target.features(batch.next_obs))
            next_v = expected_soft_value(next_logits, next_q, alpha)
            td = td_target(batch.rewards, batch.discounts, next_v)
        features = policy.features(batch.obs)
        q_all = policy.q_values(features)
        q = q_all.gather(-1, actions.view(1, -1, 1).expand(q_all.shape[0], -1, 1)).squeeze(-1)
        self.clip_and_step(self.loss("critic", self.td_inputs(batch, q, td)), self.critic_optimizer)

        logits = policy.actor(features.detach())
        with torch.no_grad():
            q_pi = policy.q_values(features.detach()).amin(0)
        actor_inputs = {"logits": logits, "q": q_pi, "alpha": alpha}
        self.clip_and_step(self.loss("actor", actor_inputs), self.actor_optimizer)
        log_probs = torch.log_softmax(logits.detach(), dim=-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        if self.ent_optimizer is not None:
            inputs = {"log_alpha": self.ent_coef.log_alpha, "log_prob": -entropy}
            self.clip_and_step(self.loss("ent_coef", inputs), self.ent_optimizer)
        return {"train/entropy": entropy.mean(), "train/ent_coef": alpha}
