"""Decoupled Advantage Actor-Critic (DAAC; Raileanu & Fergus 2021, "Decoupling Value and Policy
for Generalization in Reinforcement Learning"). Defaults follow the authors' code
(github.com/rraileanu/idaac, ``ppo_daac_idaac/arguments.py``): Procgen settings per sample."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from gymnasium.vector import VectorEnv
from torch import nn

from rlkit.config.rules import Rule, count, non_negative, positive
from rlkit.losses import ClippedSurrogate, EntropyBonus, LossPlan, LossTerm, ValueLoss
from rlkit.policies.base import ActorCriticPolicy
from rlkit.policies.decoupled import DecoupledActorCritic, SeparateActorCritic
from rlkit.prototypes import AGENTS, FlatOptimizer, OnPolicyAgent, OnPolicyConfig
from rlkit.prototypes.learning import PolicyEvaluation
from rlkit.prototypes.on_policy import RolloutBatch, record, summarize
from rlkit.utils.optim import flatten_parameters


@dataclasses.dataclass
class DAACConfig(OnPolicyConfig):
    """DAAC hyperparameters; ``num_epochs`` is the number of policy epochs (E_pi)."""

    #: rollout length per env.
    num_steps: int = 256
    #: 64 envs x 256 steps in 8 minibatches in the authors' runs.
    batch_size: int = 2048
    #: policy epochs per rollout (E_pi).
    num_epochs: int = 1
    #: learning rate of the policy's and the value network's Adam optimizers.
    lr: float = 5e-4
    #: discount factor of future rewards.
    gamma: float = 0.999
    #: weight of the entropy bonus in the policy loss.
    ent_coef: float = 0.01
    #: scales the (clipped) value loss of the value network; the authors' code uses 0.5.
    vf_coef: float = 0.5
    #: policy-ratio clip; also clips the value update around the old values (as the authors).
    clip_range: float = 0.2
    #: value clip around the old value; None disables value clipping.
    clip_range_vf: float | None = 0.2
    #: weight of the advantage-prediction loss of the policy network.
    adv_coef: float = 0.25
    #: epochs of value-network training (E_V) each time the value network is trained.
    value_epochs: int = 9
    #: train the value network every ``value_freq`` policy updates.
    value_freq: int = 1
    #: Adam's epsilon of both optimizers.
    adam_eps: float = 1e-5

    rules: ClassVar[dict[str, Rule]] = {
        "clip_range": positive(),
        "clip_range_vf": positive(none=True),
        "adv_coef": non_negative(),
        "value_epochs": count(0),
        "value_freq": count(),
        "adam_eps": positive(),
    }


def two_network_policy(
    owner: str,
    policy_id: str,
    policy: Any,
    encoder: Any,
    distribution: Any,
) -> Any:
    """The policy argument for an agent whose default policy is ``policy_id``: ``policy`` if
    given, else a spec that builds ``policy_id`` from the ``encoder``/``distribution`` parts
    (built by the agent after seeding, so the initialisation follows ``seed``)."""
    if policy is not None:
        if encoder is not None or distribution is not None:
            raise ValueError(
                f"{owner}: pass either policy= or encoder=/distribution= (which build the "
                "default policy), not both"
            )
        return policy
    return {"id": policy_id, "encoder": encoder, "distribution": distribution}


def check_policy(owner: str, policy: ActorCriticPolicy, cls: type[SeparateActorCritic]) -> None:
    """Raise unless ``policy`` is a ``cls``."""
    if not isinstance(policy, cls):
        raise TypeError(
            f"{owner} needs a {cls.__name__} policy (separate policy and value networks), got "
            f"{type(policy).__name__}"
        )


@AGENTS.register("daac")
class DAAC(OnPolicyAgent):
    """DAAC: the policy network is trained with the PPO surrogate, an entropy bonus and an
    advantage-prediction loss ``adv_coef * (A(s, a) - A_GAE)^2`` (normalised GAE targets);
    the value network is trained separately, ``value_epochs`` epochs every ``value_freq``
    updates, with its own optimizer (:attr:`value_terms`). Two flat parameter buffers, one
    per network."""

    Config = DAACConfig
    config: DAACConfig
    policy: DecoupledActorCritic

    def __init__(
        self,
        env: VectorEnv,
        config: Any = None,
        *,
        policy: Any = None,
        encoder: Any = None,
        distribution: Any = None,
        **kwargs: Any,
    ) -> None:
        spec = two_network_policy(
            type(self).__name__, "decoupled_actor_critic", policy, encoder, distribution
        )
        super().__init__(env, config, policy=spec, **kwargs)
        check_policy(type(self).__name__, self.policy, DecoupledActorCritic)
        cfg = self.config
        #: the value network's loss (its own optimizer, ``value_epochs`` epochs).
        self.value_terms = nn.ModuleList([ValueLoss(cfg.vf_coef, clip_range=cfg.clip_range_vf)])
        self.add_module("value_terms", self.value_terms)

    def loss_terms(self) -> list[LossTerm]:
        cfg = self.config
        return [
            ClippedSurrogate(cfg.clip_range),
            ValueLoss(
                cfg.adv_coef, prediction="advantage_pred", target="advantage", name="advantage"
            ),
            EntropyBonus(cfg.ent_coef),
        ]

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam for the policy network; :attr:`value_optimizer` for the value network."""
        check_policy(type(self).__name__, self.policy, DecoupledActorCritic)
        cfg = self.config
        # Re-lay the parameters as two flat buffers, one per network.
        self.actor_params = flatten_parameters(nn.ModuleList(self.policy.actor_modules()))
        self.value_group = FlatOptimizer(
            self.policy.critic_modules(),
            cfg.lr,
            cfg.max_grad_norm,
            optimizer=lambda params: self.new_optimizer(params, cfg.lr, eps=cfg.adam_eps),
        )
        self.critic_params, self.value_optimizer = self.value_group.flat, self.value_group.optimizer
        total = sum(p.numel() for p in self.policy.parameters() if p.requires_grad)
        if self.actor_params.numel() + self.critic_params.numel() != total:
            raise ValueError(
                f"{type(self).__name__}: the policy's actor and critic modules must partition "
                "its parameters"
            )
        self.flat_params = self.actor_params
        self.register_optimizer("value", self.value_optimizer)
        return self.new_optimizer([self.actor_params], cfg.lr, eps=cfg.adam_eps)

    def evaluate_minibatch(self, mb: RolloutBatch, need_entropy: bool = True) -> PolicyEvaluation:
        log_prob, entropy, adv_pred, _ = self.policy.evaluate_advantage(mb.obs, mb.actions)
        return PolicyEvaluation(
            {"log_prob": log_prob, "entropy": entropy, "advantage_pred": adv_pred}
        )

    def update(self) -> dict[str, float]:
        cfg = self.config
        stats: dict[str, list[torch.Tensor]] = {}
        for _ in range(cfg.num_epochs):
            for mb in self.minibatches():
                loss = self.compute_loss(mb)
                self.clip_and_step(loss)
                record(stats, loss)
        if self.num_updates % cfg.value_freq == 0:
            for group in self.value_optimizer.param_groups:  # follows anneal_lr
                group["lr"] = self.optimizer.param_groups[0]["lr"]
            plan = LossPlan(list(self.value_terms))  # type: ignore[arg-type]
            for _ in range(cfg.value_epochs):
                for mb in self.minibatches():
                    inputs = {
                        "value": self.policy.value(mb.obs),
                        "return": mb.returns,
                        "old_value": mb.old_values,
                    }
                    loss = plan(inputs)
                    self.clip_and_step(loss, self.value_group)
                    record(stats, loss)
        return summarize(stats)


__all__ = ["DAAC", "DAACConfig"]
