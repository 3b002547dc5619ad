"""CrossQ (Bhatt et al. 2024, "CrossQ: Batch Normalization in Deep Reinforcement Learning for
Greater Sample Efficiency and Simplicity"): SAC without target networks, with batch-renormalised
wide critics."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Range, Rule, Sizes, count
from rlkit.encoders.base import Encoder
from rlkit.losses import LossTerm, SACActorLoss, TDLoss, TemperatureLoss, soft_value, td_target
from rlkit.losses.temperature import ENTROPY_RULES, EntropyCoefficient, parse_target_entropy
from rlkit.policies.batch_norm import BatchNormActorCritic
from rlkit.prototypes import AGENTS, OffPolicyAgent, OffPolicyConfig
from rlkit.storages.replay import ReplayBatch


@dataclasses.dataclass
class CrossQConfig(OffPolicyConfig):
    """CrossQ hyperparameters (the paper's and Stable-Baselines-Jax's, except ``buffer_size``).
    There is no target network: ``tau`` and ``target_update_interval`` do not apply."""

    #: learning rate of the actor's, critics' and temperature's Adam optimizers.
    lr: float = 1e-3
    #: env steps of uniformly random actions before the first update.
    learning_starts: int = 5_000
    #: critic updates per actor (and temperature) update.
    policy_delay: int = 3
    #: Adam's beta1 for every optimizer (the paper: 0.5; Adam's default 0.9).
    adam_beta1: float = 0.5
    #: hidden sizes of the default policy's critics (the actor's are ``hidden_sizes``).
    critic_hidden_sizes: list[int] = dataclasses.field(default_factory=lambda: [2048, 2048])
    #: momentum of the critics' batch renormalisation (running = m * running + (1 - m) * batch).
    bn_momentum: float = 0.99
    #: critic updates of plain batch normalisation before the renormalisation corrections.
    bn_warmup_steps: int = 100_000
    #: entropy coefficient: a number (fixed), "auto" (learned from 1.0) or "auto_<initial>".
    ent_coef: float | str = "auto"
    #: target entropy of the learned coefficient; "auto" is -dim(A).
    target_entropy: float | str = "auto"

    rules: ClassVar[dict[str, Rule]] = {
        **ENTROPY_RULES,
        "policy_delay": count(),
        "adam_beta1": Range(0, 1, high_open=True),
        "critic_hidden_sizes": Sizes(nonempty=True),
        "bn_momentum": Range(0, 1, high_open=True),
        "bn_warmup_steps": count(0),
    }


@AGENTS.register("crossq")
class CrossQ(OffPolicyAgent):
    """CrossQ: SAC's soft critics and actor, with no target network. The critic sees the batch
    ``(s, a)`` and ``(s', a' ~ pi(s'))`` concatenated in one forward pass in train mode, so
    both halves are normalised with the same batch statistics, and regresses its first half
    on the soft target from its second half (detached). Every ``policy_delay`` critic steps the
    actor ascends ``min_e Q_e(s, a~pi) - alpha log pi`` through the critics in eval mode, then
    the temperature steps with that actor's log-probabilities (Stable-Baselines-Jax's order).

    Batch-norm mode hygiene: the critics are in train mode only for the joint forward pass
    (batch statistics, running statistics updated), and in eval mode otherwise (the actor's
    loss, and anything outside an update); acting, evaluation and export use the actor alone.
    """

    Config = CrossQConfig
    config: CrossQConfig
    action_spaces = (spaces.Box,)
    policy_class = BatchNormActorCritic
    policy: BatchNormActorCritic

    def default_policy(self, encoder: Encoder | None) -> BatchNormActorCritic:
        cfg, spaces_ = self.config, (self.observation_space, self.action_space)
        return BatchNormActorCritic(
            *spaces_, encoder, cfg.hidden_sizes, cfg.critic_hidden_sizes,
            bn_momentum=cfg.bn_momentum, bn_warmup_steps=cfg.bn_warmup_steps,
        )  # fmt: skip

    def setup(self) -> None:
        name, cfg, policy = type(self).__name__, self.config, self.policy
        self.critic_optimizer = self.add_optimizer("critic", policy.critic_modules())
        self.actor_optimizer = self.add_optimizer("actor", policy.actor_modules())
        self.ent_coef = EntropyCoefficient.from_setting(cfg.ent_coef, name)
        self.add_module("ent_coef", self.ent_coef)
        learned = self.ent_coef.learned
        self.ent_optimizer = self.add_optimizer("ent_coef", [self.ent_coef]) if learned else None
        self.target_entropy = parse_target_entropy(cfg.target_entropy, policy.action_dim, name)

    def new_optimizer(
        self, params: Sequence[nn.Parameter], lr: float, eps: float = 1e-8
    ) -> torch.optim.Optimizer:
        """Adam with ``betas=(adam_beta1, 0.999)``."""
        optimizer = super().new_optimizer(params, lr, eps)
        for group in optimizer.param_groups:
            group["betas"] = (self.config.adam_beta1, 0.999)
        return optimizer

    def loss_terms(self) -> dict[str, list[LossTerm]]:
        terms: dict[str, list[LossTerm]] = {
            "critic": [TDLoss("half_mse", name="critic")],
            "actor": [SACActorLoss()],
        }
        if self.ent_optimizer is not None:
            terms["ent_coef"] = [TemperatureLoss(self.target_entropy)]
        return terms

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        policy, gen, critic = self.policy, self._generator, self.policy.critic
        alpha = self.ent_coef()
        features = policy.features(batch.obs)
        with torch.no_grad():
            next_features = policy.features(batch.next_obs)
            next_actions, next_log_prob = policy.sample_with_log_prob(next_features, gen)
        actions = torch.cat([policy.normalize_actions(batch.actions), next_actions])
        critic.train()  # one forward pass, one set of batch statistics for (s, a) and (s', a')
        q, next_q = policy.q_values(torch.cat([features, next_features]), actions).chunk(2, -1)
        critic.eval()
        with torch.no_grad():
            next_value = soft_value(next_q, next_log_prob, alpha)
            td = td_target(batch.rewards, batch.discounts, next_value)
        self.clip_and_step(self.loss("critic", self.td_inputs(batch, q, td)), self.critic_optimizer)
        metrics: dict[str, Tensor] = {"train/ent_coef": alpha}
        if self.num_updates % self.config.policy_delay == 0:
            detached = features.detach()
            actions_pi, log_prob = policy.sample_with_log_prob(detached, gen)
            q_pi = policy.q_values(detached, actions_pi, detach_params=True)
            inputs = {"log_prob": log_prob, "q": q_pi, "alpha": alpha}
            self.clip_and_step(self.loss("actor", inputs), self.actor_optimizer)
            if self.ent_optimizer is not None:
                ent = {"log_alpha": self.ent_coef.log_alpha, "log_prob": log_prob.detach()}
                self.clip_and_step(self.loss("ent_coef", ent), self.ent_optimizer)
        return metrics
