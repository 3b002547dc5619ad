"""Soft Actor-Critic (Haarnoja et al. 2018) with automatic entropy tuning."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.encoders.base import Encoder
from rlkit.policies.twin_q import SquashedGaussianActorCritic
from rlkit.prototypes import AGENTS, OffPolicyAgent, OffPolicyConfig
from rlkit.storages.replay import ReplayBatch


class EntropyCoefficient(nn.Module):
    """SAC's temperature ``alpha``, learned as ``log_alpha`` (a module so it is checkpointed)."""

    def __init__(self, initial: float = 1.0) -> None:
        super().__init__()
        if not initial > 0:
            raise ValueError(f"the initial entropy coefficient must be > 0, got {initial}")
        self.log_alpha = nn.Parameter(torch.tensor(math.log(initial)))

    def forward(self) -> Tensor:
        """``alpha`` without gradient (what the critic and actor losses use)."""
        return self.log_alpha.detach().exp()


def parse_ent_coef(value: float | str, owner: str) -> tuple[bool, float]:
    """``(learned, initial value)`` from SB3-style ``ent_coef``: a number (fixed), ``"auto"``
    (learned from 1.0) or ``"auto_0.1"`` (learned from 0.1)."""
    if isinstance(value, str):
        if value == "auto":
            return True, 1.0
        if value.startswith("auto_"):
            try:
                initial = float(value[5:])
            except ValueError:
                initial = float("nan")
            if initial > 0:
                return True, initial
        try:
            value = float(value)
        except ValueError:
            raise ValueError(
                f"{owner}: ent_coef must be a number > 0, 'auto' or 'auto_<initial>', got {value!r}"
            ) from None
    if not value > 0:
        raise ValueError(f"{owner}: ent_coef must be > 0, got {value!r}")
    return False, float(value)


@dataclasses.dataclass
class SACConfig(OffPolicyConfig):
    """SAC hyperparameters (Stable-Baselines3's names and defaults, except ``buffer_size``)."""

    #: entropy coefficient: a number (fixed), "auto" (learned from 1.0) or "auto_<initial>".
    ent_coef: float | str = "auto"
    #: target entropy of the learned coefficient; "auto" is -dim(A).
    target_entropy: float | str = "auto"


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
        return SquashedGaussianActorCritic(
            self.observation_space,
            self.action_space,
            encoder=encoder,
            hidden_sizes=self.config.hidden_sizes,
        )

    def setup(self) -> None:
        name, cfg, policy = type(self).__name__, self.config, self.policy
        self.critic_optimizer = self.add_optimizer("critic", policy.critic_modules())
        self.actor_optimizer = self.add_optimizer("actor", policy.actor_modules())
        self.target = self.add_target("target", policy, track=policy.critic_modules())
        learned, initial = parse_ent_coef(cfg.ent_coef, name)
        self.ent_coef = EntropyCoefficient(initial)
        self.ent_coef.requires_grad_(learned)
        self.add_module("ent_coef", self.ent_coef)
        self.ent_optimizer = self.add_optimizer("ent_coef", [self.ent_coef]) if learned else None
        if cfg.target_entropy == "auto":
            self.target_entropy = -float(policy.action_dim)
        else:
            try:
                self.target_entropy = float(cfg.target_entropy)
            except ValueError:
                raise ValueError(
                    f"{name}: target_entropy must be a number or 'auto', got {cfg.target_entropy!r}"
                ) from None

    def explore_numpy(self, obs: Any) -> np.ndarray | None:
        if not self.use_fused_kernels or type(self.policy) is not SquashedGaussianActorCritic:
            return None  # (a subclass may act differently)
        actions = self.policy.act_numpy(obs)
        return None if actions is None else actions.astype(self.action_space.dtype, copy=False)

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        if self.fused_kernels_apply("sac", self._manual_path_applies):
            return self._manual_update(batch)
        policy, target, gen = self.policy, self.target.net, self._generator
        features = policy.features(batch.obs)
        actor_features = features.detach()
        actions_pi, log_prob = policy.sample_with_log_prob(actor_features, gen)
        alpha = self.ent_coef()
        metrics: dict[str, Tensor] = {"train/ent_coef": alpha}
        if self.ent_optimizer is not None:
            # d/d log_alpha of -mean(log_alpha * (log_prob + target)): set by hand, no graph
            gap = (log_prob.detach() + self.target_entropy).mean()
            self.ent_optimizer.step_with_grad(-gap)
            metrics["loss/ent_coef"] = -self.ent_coef.log_alpha.detach() * gap

        with torch.no_grad():
            next_actions, next_log_prob = policy.sample_with_log_prob(
                policy.features(batch.next_obs), gen
            )
            next_q = target.q_values(target.features(batch.next_obs), next_actions).amin(0)
            next_v = next_q - alpha * next_log_prob
            td_target = torch.addcmul(batch.rewards, batch.discounts, next_v)
        q = policy.q_values(features, policy.normalize_actions(batch.actions))
        if self.prioritized:
            errors = q - td_target
            critic_loss = 0.5 * (batch.weights * errors.square()).mean(-1).sum()
            self.report_td_errors(batch, errors.detach().abs().mean(0))
        else:  # 0.5 * sum over critics of the mean squared error, in one kernel
            scale = 0.5 / td_target.shape[0]
            critic_loss = F.mse_loss(q, td_target.expand_as(q), reduction="sum") * scale
        self.critic_optimizer.step(critic_loss)

        q_pi = policy.q_values(actor_features, actions_pi, detach_params=True).amin(0)
        actor_loss = (alpha * log_prob - q_pi).mean()
        self.actor_optimizer.step(actor_loss)
        metrics["loss/critic"] = critic_loss.detach()
        metrics["loss/actor"] = actor_loss.detach()
        return metrics

    def _manual_path_applies(self) -> bool:
        """The default policy class (a subclass may change what the hand-written update
        assumes) with the layout it supports."""
        policy = self.policy
        return type(policy) is SquashedGaussianActorCritic and policy.supports_manual_gradients()

    def _manual_update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        """:meth:`update` with every gradient written out by hand (ReLU MLPs, flattening
        encoder, float32 on the CPU): the same losses, order and noise draws, a fraction of
        the tensor operations, and the actor runs once on ``obs`` and ``next_obs`` stacked."""
        policy, gen = self.policy, self._generator
        actor, critic = policy.actor.kernel(), policy.critic.kernel()
        size, dim = batch.rewards.shape[0], policy.action_dim
        with torch.no_grad():
            features = policy.features(batch.obs)
            next_features = policy.features(batch.next_obs)
            head, actor_cache = actor.forward(torch.cat([features, next_features]))
            eps = torch.cat(  # drawn as update() draws them: obs rows first, in two calls
                [torch.randn((size, dim), generator=gen), torch.randn((size, dim), generator=gen)]
            )
            both_actions, both_log_probs, both_cache = policy.squash(head, eps)
            actions_pi, next_actions = both_actions[:size], both_actions[size:]
            log_prob, next_log_prob = both_log_probs[:size], both_log_probs[size:]
            squash_cache = tuple(x[:size] for x in both_cache)
        alpha = self.ent_coef()
        metrics: dict[str, Tensor] = {"train/ent_coef": alpha}
        if self.ent_optimizer is not None:
            gap = (log_prob + self.target_entropy).mean()
            self.ent_optimizer.step_with_grad(-gap)
            metrics["loss/ent_coef"] = -self.ent_coef.log_alpha.detach() * gap

        with torch.no_grad():
            next_in = torch.cat([next_features, next_actions], dim=-1)
            next_q = self.target.net.critic.kernel().forward(next_in, keep=False)[0]
            next_v = next_q.squeeze(-1).amin(0).sub_(alpha * next_log_prob)
            td_target = torch.addcmul(batch.rewards, batch.discounts, next_v)
            critic_in = torch.cat([features, policy.normalize_actions(batch.actions)], dim=-1)
            q, critic_cache = critic.forward(critic_in)
            errors = q.squeeze(-1) - td_target
            if self.prioritized:
                self.report_td_errors(batch, errors.abs().mean(0))
                grad_q = errors * (batch.weights / size)
                critic_loss = 0.5 * (batch.weights * errors.square()).mean(-1).sum()
            else:
                grad_q = errors / size
                critic_loss = 0.5 * errors.square().mean(-1).sum()
        self.critic_optimizer.step_manual(
            lambda: critic.backward(critic_cache, grad_q.unsqueeze(-1))
        )

        with torch.no_grad():
            q_pi, pi_cache = critic.forward(torch.cat([features, actions_pi], dim=-1))
            min_q = q_pi.amin(0, keepdim=True)
            chosen = (q_pi == min_q).float()  # ties share the gradient, as amin's backward does
            grad_q_pi = chosen.div_(chosen.sum(0, keepdim=True)).mul_(-1.0 / size)
            columns = slice(features.shape[-1], None)
            grad_actions = critic.backward(pi_cache, grad_q_pi, False, True, columns)
            assert grad_actions is not None
            grad_head = policy.squash_backward(squash_cache, grad_actions, float(alpha) / size)
            actor_loss = (alpha * log_prob - min_q.reshape(-1)).mean()
        obs_rows = [[h[:size] for h in actor_cache[0]]]
        self.actor_optimizer.step_manual(lambda: actor.backward(obs_rows, grad_head))
        metrics["loss/critic"] = critic_loss
        metrics["loss/actor"] = actor_loss
        return metrics
