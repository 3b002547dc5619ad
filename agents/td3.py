"""Twin Delayed DDPG (Fujimoto et al. 2018): clipped double Q, delayed actor and target
updates, target policy smoothing."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor

from rlkit.distributions.noise import NormalNoise, OrnsteinUhlenbeckNoise
from rlkit.encoders.base import Encoder
from rlkit.policies.twin_q import DeterministicActorCritic
from rlkit.prototypes import AGENTS, OffPolicyAgent, OffPolicyConfig
from rlkit.storages.replay import ReplayBatch
from rlkit.types import Obs


@dataclasses.dataclass
class TD3Config(OffPolicyConfig):
    """TD3 hyperparameters (Stable-Baselines3's names and defaults, except ``buffer_size``).

    Noise scales are fractions of the action box's half-width. The targets move with the
    actor, every ``policy_delay`` updates (``target_update_interval`` must stay 1).
    """

    lr: float = 1e-3
    #: critic updates per actor (and target) update.
    policy_delay: int = 2
    #: std of the Gaussian exploration noise of the default policy.
    action_noise: float = 0.1
    #: std and clip of the noise added to the target action (target policy smoothing).
    target_policy_noise: float = 0.2
    target_noise_clip: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = {
            "policy_delay": self.policy_delay >= 1,
            "action_noise": self.action_noise >= 0,
            "target_policy_noise": self.target_policy_noise >= 0,
            "target_noise_clip": self.target_noise_clip >= 0,
            "target_update_interval": self.target_update_interval == 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                "invalid hyperparameter(s): "
                + ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
                + " (policy_delay >= 1; noise scales >= 0; target_update_interval must be 1: "
                "the targets move with the actor every policy_delay updates)"
            )


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
        return DeterministicActorCritic(
            self.observation_space,
            self.action_space,
            encoder=encoder,
            noise=NormalNoise(self.action_space, sigma=self.config.action_noise),
            hidden_sizes=self.config.hidden_sizes,
            num_critics=self.num_critics,
        )

    def setup(self) -> None:
        policy = self.policy
        self.critic_optimizer = self.add_optimizer("critic", policy.critic_modules())
        self.actor_optimizer = self.add_optimizer("actor", policy.actor_modules())
        self.target = self.add_target("target", policy)

    def explore(self, obs: Obs) -> np.ndarray:
        noise = self.policy.noise
        if isinstance(noise, OrnsteinUhlenbeckNoise):
            noise.step(self._generator)
        return super().explore(obs)

    def on_episode_end(self, dones: np.ndarray) -> None:
        super().on_episode_end(dones)
        noise = self.policy.noise
        if isinstance(noise, OrnsteinUhlenbeckNoise):
            noise.reset(dones)

    def target_update_due(self) -> bool:
        return self.num_updates % self.config.policy_delay == 0

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        cfg, policy, target = self.config, self.policy, self.target.net
        with torch.no_grad():
            next_features = target.features(batch.next_obs)
            next_actions = target.actor_action(next_features)
            if cfg.target_policy_noise > 0:
                noise = torch.randn(
                    next_actions.shape, generator=self._generator, device=next_actions.device
                ).mul_(cfg.target_policy_noise)
                noise.clamp_(-cfg.target_noise_clip, cfg.target_noise_clip)
                next_actions = (next_actions + noise).clamp_(-1.0, 1.0)
            next_q = target.q_values(next_features, next_actions).amin(0)
            td_target = batch.rewards + batch.discounts * next_q
        features = policy.features(batch.obs)
        q = policy.q_values(features, policy.normalize_actions(batch.actions))
        if self.prioritized:
            errors = q - td_target
            critic_loss = (batch.weights * errors.square()).mean(-1).sum()
            self.report_td_errors(batch, errors.detach().abs().mean(0))
        else:  # sum over critics of the mean squared error, in one kernel
            critic_loss = F.mse_loss(q, td_target.expand_as(q), reduction="sum")
            critic_loss = critic_loss / td_target.shape[0]
        self.critic_optimizer.step(critic_loss)
        metrics = {"loss/critic": critic_loss.detach()}
        if self.num_updates % cfg.policy_delay == 0:
            actor_features = features.detach()
            q_pi = policy.q_values(
                actor_features,
                policy.actor_action(actor_features),
                detach_params=True,
                members=slice(0, 1),
            )
            actor_loss = -q_pi.mean()
            self.actor_optimizer.step(actor_loss)
            metrics["loss/actor"] = actor_loss.detach()
        return metrics
