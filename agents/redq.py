"""Randomized Ensembled Double Q-learning (Chen et al. 2021, "Randomized Ensembled Double
Q-Learning: Learning Fast Without a Model"): SAC with an ensemble of ``N`` critics, a target
that takes the minimum over a random subset of ``M`` target critics, and ``G`` updates per env
step, following the authors' code (watchernyu/REDQ)."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from rlkit.config.rules import Rule, count
from rlkit.encoders.base import Encoder
from rlkit.losses import LossTerm, SACActorLoss, TDLoss, random_members, soft_value, td_target
from rlkit.policies.twin_q import SquashedGaussianActorCritic
from rlkit.prototypes import AGENTS
from rlkit.storages.replay import ReplayBatch

from .sac import SAC, SACConfig

REDQ_RULES: dict[str, Rule] = {"n_critics": count(), "num_min": count(), "policy_delay": count()}


@dataclasses.dataclass
class REDQConfig(SACConfig):
    """SAC's hyperparameters with the REDQ authors' defaults: ``n_critics`` N = 10,
    ``num_min`` M = 2, ``gradient_steps`` G = 20 per env step, the actor (and temperature)
    updated once per ``policy_delay`` = 20 critic updates, 5000 random warm-up steps; lr 3e-4,
    batch 256, (256, 256) layers, tau 0.005 and gamma 0.99 are SAC's defaults and theirs."""

    #: updates per round (G; one round per env step with train_freq 1).
    gradient_steps: int = 20
    #: env steps of uniformly random actions before the first update.
    learning_starts: int = 5000
    #: critics in the ensemble (N).
    n_critics: int = 10
    #: target critics drawn (without replacement) per update; the target is their minimum (M).
    num_min: int = 2
    #: critic updates per actor and temperature update (the authors' policy_update_delay).
    policy_delay: int = 20

    rules = REDQ_RULES  # a class attribute (no annotation), not a field


@AGENTS.register("redq")
class REDQ(SAC):
    """REDQ: every critic regresses on ``r + g (min_{i in S} Q'_i(s', a') - alpha log pi(a'|s'))``
    with ``S`` a fresh random subset of ``num_min`` target critics each update (drawn from the
    agent's seeded generator); every ``policy_delay`` updates the temperature and the actor,
    which ascends the mean of all critics, take a step."""

    Config = REDQConfig
    config: REDQConfig

    def default_policy(self, encoder: Encoder | None) -> SquashedGaussianActorCritic:
        cfg, spaces_ = self.config, (self.observation_space, self.action_space)
        return SquashedGaussianActorCritic(
            *spaces_, encoder, cfg.hidden_sizes, num_critics=cfg.n_critics
        )

    def setup(self) -> None:
        super().setup()
        num_min, critics = self.config.num_min, self.policy.num_critics
        if num_min > critics:
            raise ValueError(
                f"REDQ: num_min={num_min} exceeds the policy's {critics} critics; it must be "
                "<= n_critics"
            )

    def loss_terms(self) -> dict[str, list[LossTerm]]:
        # the authors' critic loss: mean squared error times N, i.e. summed over the critics
        critic, actor = TDLoss("mse", name="critic"), SACActorLoss("mean")
        return {**super().loss_terms(), "critic": [critic], "actor": [actor]}

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        cfg, policy, target, gen = self.config, self.policy, self.target.net, self._generator
        actor_due = self.num_updates % cfg.policy_delay == 0
        features = policy.features(batch.obs)
        alpha = self.ent_coef()
        if actor_due:
            actions_pi, log_prob = policy.sample_with_log_prob(features.detach(), gen)
            if self.ent_optimizer is not None:
                inputs = {"log_alpha": self.ent_coef.log_alpha, "log_prob": log_prob.detach()}
                self.clip_and_step(self.loss("ent_coef", inputs), self.ent_optimizer)
        with torch.no_grad():
            next_features = policy.features(batch.next_obs)
            next_actions, next_log_prob = policy.sample_with_log_prob(next_features, gen)
            next_q = target.q_values(target.features(batch.next_obs), next_actions)  # [N, B]
            subset = random_members(len(next_q), cfg.num_min, gen).to(next_q.device)
            value = soft_value(next_q[subset], next_log_prob, alpha)
            td = td_target(batch.rewards, batch.discounts, value)
        q = policy.q_values(features, policy.normalize_actions(batch.actions))
        self.clip_and_step(self.loss("critic", self.td_inputs(batch, q, td)), self.critic_optimizer)
        if actor_due:  # through the just-updated critics, whose weights take no gradient
            q_pi = policy.q_values(features.detach(), actions_pi, detach_params=True)
            actor_inputs = {"log_prob": log_prob, "q": q_pi, "alpha": alpha}
            self.clip_and_step(self.loss("actor", actor_inputs), self.actor_optimizer)
        return {"train/ent_coef": alpha}
