"""Soft Actor-Critic for discrete actions (Christodoulou 2019)."""

from __future__ import annotations

import dataclasses
import math

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.encoders.base import Encoder
from rlkit.policies.twin_q import CategoricalActorCritic
from rlkit.prototypes import AGENTS, OffPolicyAgent, OffPolicyConfig
from rlkit.storages.replay import ReplayBatch

from .sac import EntropyCoefficient, parse_ent_coef


@dataclasses.dataclass
class SACDiscreteConfig(OffPolicyConfig):
    """SAC-discrete hyperparameters. ``target_entropy_ratio`` sets the target entropy to that
    fraction of the maximum entropy ``log |A|`` (0.98 in the paper)."""

    ent_coef: float | str = "auto"
    target_entropy_ratio: float = 0.98

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.target_entropy_ratio <= 1.0:
            raise ValueError(
                f"invalid hyperparameter target_entropy_ratio={self.target_entropy_ratio!r}: "
                "in [0, 1]"
            )


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
        learned, initial = parse_ent_coef(cfg.ent_coef, type(self).__name__)
        self.ent_coef = EntropyCoefficient(initial)
        self.ent_coef.requires_grad_(learned)
        self.add_module("ent_coef", self.ent_coef)
        self.ent_optimizer = self.add_optimizer("ent_coef", [self.ent_coef]) if learned else None
        self.target_entropy = cfg.target_entropy_ratio * math.log(policy.num_actions)
        self.action_start = int(policy.distribution.start)

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        policy, target = self.policy, self.target.net
        actions = batch.actions - self.action_start if self.action_start else batch.actions
        alpha = self.ent_coef()
        with torch.no_grad():
            next_dist = policy.action_distribution(policy.features(batch.next_obs))
            next_q = target.q_values(target.features(batch.next_obs)).amin(0)
            next_v = (next_dist.probs * (next_q - alpha * next_dist.logits)).sum(-1)
            td_target = batch.rewards + batch.discounts * next_v
        features = policy.features(batch.obs)
        q_all = policy.q_values(features)
        index = actions.view(1, -1, 1).expand(q_all.shape[0], -1, 1)
        errors = q_all.gather(-1, index).squeeze(-1) - td_target
        if self.prioritized:
            critic_loss = 0.5 * (batch.weights * errors.pow(2)).mean(-1).sum()
            self.report_td_errors(batch, errors.detach().abs().mean(0))
        else:
            critic_loss = 0.5 * errors.pow(2).mean(-1).sum()
        self.critic_optimizer.step(critic_loss)

        dist = policy.action_distribution(features.detach())
        probs, log_probs = dist.probs, dist.logits
        with torch.no_grad():
            q_pi = policy.q_values(features.detach()).amin(0)
        actor_loss = (probs * (alpha * log_probs - q_pi)).sum(-1).mean()
        self.actor_optimizer.step(actor_loss)
        entropy = -(probs.detach() * log_probs.detach()).sum(-1)
        metrics = {
            "loss/critic": critic_loss.detach(),
            "loss/actor": actor_loss.detach(),
            "train/entropy": entropy.mean(),
            "train/ent_coef": alpha,
        }
        if self.ent_optimizer is not None:
            # sum_a pi(a|s) (log pi(a|s) + H_target) = H_target - H(pi(.|s))
            ent_loss = -(self.ent_coef.log_alpha * (self.target_entropy - entropy)).mean()
            self.ent_optimizer.step(ent_loss)
            metrics["loss/ent_coef"] = ent_loss.detach()
        return metrics
