"""Soft Actor-Critic (Haarnoja et al. 2018) with automatic entropy tuning."""

from __future__ import annotations

import dataclasses

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.encoders.base import Encoder
from rlkit.losses import LossTerm, SACActorLoss, TDLoss, TemperatureLoss, soft_value, td_target
from rlkit.losses.temperature import ENTROPY_RULES, EntropyCoefficient, parse_target_entropy
from rlkit.policies.gsde import GSDEActorCritic
from rlkit.policies.twin_q import SquashedGaussianActorCritic
from rlkit.prototypes import AGENTS, GSDEConfig, OffPolicyAgent, OffPolicyConfig
from rlkit.storages.replay import ReplayBatch


@dataclasses.dataclass
class SACConfig(OffPolicyConfig, GSDEConfig):
    """SAC hyperparameters (Stable-Baselines3's names and defaults, except ``buffer_size``),
    gSDE's included."""

    #: entropy coefficient: a number (fixed), "auto" (learned from 1.0) or "auto_<initial>".
    ent_coef: float | str = "auto"
    #: target entropy of the learned coefficient; "auto" is -dim(A).
    target_entropy: float | str = "auto"

    rules = ENTROPY_RULES  # a class attribute (no annotation), not a field


@AGENTS.register("sac")
class SAC(OffPolicyAgent):
    """SAC: twin soft Q critics with Polyak targets, a tanh-Gaussian actor trained on the
    minimum of the critics, and a temperature tuned toward ``target_entropy``.

    Each update follows Stable-Baselines3's order: the temperature step (with the batch's
    fresh log-probabilities), the critic step against the soft target, then the actor step
    through the just-updated critics (whose weights take no gradient there).
    """

    Config = SACConfig
    config: SACConfig
    action_spaces = (spaces.Box,)
    policy_class = SquashedGaussianActorCritic
    policy: SquashedGaussianActorCritic

    def default_policy(self, encoder: Encoder | None) -> SquashedGaussianActorCritic:
        spaces_, cfg = (self.observation_space, self.action_space), self.config
        if cfg.use_sde:
            return GSDEActorCritic(
                *spaces_, encoder, cfg.hidden_sizes, log_std_init=cfg.log_std_init
            )
        return SquashedGaussianActorCritic(*spaces_, encoder, cfg.hidden_sizes)

    def setup(self) -> None:
        name, cfg, policy = type(self).__name__, self.config, self.policy
        self.critic_optimizer = self.add_optimizer("critic", policy.critic_modules())
        self.actor_optimizer = self.add_optimizer("actor", policy.actor_modules())
        self.target = self.add_target("target", policy, track=policy.critic_modules())
        self.ent_coef = EntropyCoefficient.from_setting(cfg.ent_coef, name)
        self.add_module("ent_coef", self.ent_coef)
        learned = self.ent_coef.learned
        self.ent_optimizer = self.add_optimizer("ent_coef", [self.ent_coef]) if learned else None
        self.target_entropy = parse_target_entropy(cfg.target_entropy, policy.action_dim, name)

    def loss_terms(self) -> dict[str, list[LossTerm]]:
        terms: dict[str, list[LossTerm]] = {
            "critic": [TDLoss("half_mse", name="critic")],
            "actor": [SACActorLoss()],
        }
        if self.ent_optimizer is not None:
            terms["ent_coef"] = [TemperatureLoss(self.target_entropy)]
        return terms

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        policy, target, gen = self.policy, self.target.net, self._generator
        features = policy.features(batch.obs)
        actions_pi, log_prob = policy.sample_with_log_prob(features.detach(), gen)
        alpha = self.ent_coef()
        metrics: dict[str, Tensor] = {"train/ent_coef": alpha}
        if self.ent_optimizer is not None:
            inputs = {"log_alpha": self.ent_coef.log_alpha, "log_prob": log_prob.detach()}
            self.clip_and_step(self.loss("ent_coef", inputs), self.ent_optimizer)
        with torch.no_grad():
            next_features = policy.features(batch.next_obs)
            next_actions, next_log_prob = policy.sample_with_log_prob(next_features, gen)
            next_q = target.q_values(target.features(batch.next_obs), next_actions)
            td = td_target(batch.rewards, batch.discounts, soft_value(next_q, next_log_prob, alpha))
        q = policy.q_values(features, policy.normalize_actions(batch.actions))
        self.clip_and_step(self.loss("critic", self.td_inputs(batch, q, td)), self.critic_optimizer)
        q_pi = policy.q_values(features.detach(), actions_pi, detach_params=True)
        actor_inputs = {"log_prob": log_prob, "q": q_pi, "alpha": alpha}
        self.clip_and_step(self.loss("actor", actor_inputs), self.actor_optimizer)
        return metrics
