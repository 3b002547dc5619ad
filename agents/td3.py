"""Twin Delayed DDPG (Fujimoto et al. 2018): clipped double Q, delayed actor and target
updates, target policy smoothing."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import OneOf, Rule, count, non_negative
from rlkit.distributions.noise import NormalNoise
from rlkit.encoders.base import Encoder
from rlkit.losses import DeterministicActorLoss, LossTerm, TDLoss, clipped_double_q, td_target
from rlkit.losses.targets import smoothed_actions
from rlkit.policies.twin_q import DeterministicActorCritic
from rlkit.prototypes import AGENTS, OffPolicyAgent, OffPolicyConfig
from rlkit.storages.replay import ReplayBatch


@dataclasses.dataclass
class TD3Config(OffPolicyConfig):
    """TD3 hyperparameters (Stable-Baselines3's names and defaults, except ``buffer_size``).

    Noise scales are fractions of the action box's half-width. The targets move with the
    actor, every ``policy_delay`` updates (``target_update_interval`` must stay 1).
    """

    #: learning rate of the actor's and the critics' Adam optimizers.
    lr: float = 1e-3
    #: critic updates per actor (and target) update.
    policy_delay: int = 2
    #: std of the Gaussian exploration noise of the default policy.
    action_noise: float = 0.1
    #: std and clip of the noise added to the target action (target policy smoothing).
    target_policy_noise: float = 0.2
    #: clip of the target-action noise (fraction of the action half-width).
    target_noise_clip: float = 0.5

    rules: ClassVar[dict[str, Rule]] = {
        "policy_delay": count(),
        "action_noise": non_negative(),
        "target_policy_noise": non_negative(),
        "target_noise_clip": non_negative(),
        "target_update_interval": OneOf((1,), note="the targets move with the actor"),
    }


@AGENTS.register("td3")
class TD3(OffPolicyAgent):
    """TD3: the critics regress on ``r + g * min_i Q'_i(s', clip(mu'(s') + clipped noise))``;
    every ``policy_delay`` updates the actor ascends ``Q_1(s, mu(s))`` and the targets move."""

    Config = TD3Config
    config: TD3Config
    action_spaces = (spaces.Box,)
    policy_class = DeterministicActorCritic
    policy: DeterministicActorCritic
    #: critics in the default policy.
    num_critics = 2

    def default_policy(self, encoder: Encoder | None) -> DeterministicActorCritic:
        cfg, act_space = self.config, self.action_space
        noise = NormalNoise(act_space, sigma=cfg.action_noise)
        return DeterministicActorCritic(
            self.observation_space, act_space, encoder, noise, cfg.hidden_sizes,
            num_critics=self.num_critics,
        )  # fmt: skip

    def setup(self) -> None:
        policy = self.policy
        self.critic_optimizer = self.add_optimizer("critic", policy.critic_modules())
        self.actor_optimizer = self.add_optimizer("actor", policy.actor_modules())
        self.target = self.add_target("target", policy)

    def loss_terms(self) -> dict[str, list[LossTerm]]:
        return {"critic": [TDLoss("mse", name="critic")], "actor": [DeterministicActorLoss()]}

    def target_update_due(self) -> bool:
        return self.num_updates % self.config.policy_delay == 0

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        cfg, policy, target = self.config, self.policy, self.target.net
        smoothing = (cfg.target_policy_noise, cfg.target_noise_clip, self._generator)
        with torch.no_grad():
            next_features = target.features(batch.next_obs)
            next_actions = smoothed_actions(target.actor_action(next_features), *smoothing)
            next_q = target.q_values(next_features, next_actions)
            td = td_target(batch.rewards, batch.discounts, clipped_double_q(next_q))
        features = policy.features(batch.obs)
        q = policy.q_values(features, policy.normalize_actions(batch.actions))
        self.clip_and_step(self.loss("critic", self.td_inputs(batch, q, td)), self.critic_optimizer)
        if self.num_updates % cfg.policy_delay == 0:  # the delayed actor update (critic Q_1)
            detached = features.detach()
            actions = policy.actor_action(detached)
            q_pi = policy.q_values(detached, actions, detach_params=True, members=slice(0, 1))
            self.clip_and_step(self.loss("actor", {"q": q_pi}), self.actor_optimizer)
        return {}
