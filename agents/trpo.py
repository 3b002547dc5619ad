"""Trust Region Policy Optimization (Schulman et al. 2015). Names and defaults follow
sb3-contrib's TRPO (github.com/Stable-Baselines-Team/stable-baselines3-contrib,
``sb3_contrib/trpo/trpo.py``)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from gymnasium.vector import VectorEnv
from torch import Tensor, nn
from torch.func import functional_call

from rlkit.config.rules import OneOf, Range, Rule, count, non_negative, positive
from rlkit.losses import EntropyBonus, Loss, LossPlan, LossTerm, PolicyKL, Surrogate, ValueLoss
from rlkit.losses import compute_loss as assemble
from rlkit.prototypes import AGENTS, FlatOptimizer, OnPolicyAgent, OnPolicyConfig
from rlkit.prototypes.learning import evaluate_actions
from rlkit.prototypes.on_policy import RolloutBatch, batch_inputs, normalize, record, summarize
from rlkit.utils.trust_region import TrustRegionStep, flat_grad


@dataclasses.dataclass
class TRPOConfig(OnPolicyConfig):
    """TRPO hyperparameters; ``lr``, ``batch_size`` and ``max_grad_norm`` are the critic's."""

    #: rollout length per env.
    num_steps: int = 2048
    #: minibatch size (samples) of the critic's Adam steps.
    batch_size: int = 128
    #: one trust-region step per rollout (the critic's passes are ``n_critic_updates``).
    num_epochs: int = 1
    #: learning rate of the critic's Adam optimizer.
    lr: float = 1e-3
    #: lambda of generalised advantage estimation.
    gae_lambda: float = 0.95
    #: weight of the critic's value loss.
    vf_coef: float = 1.0
    #: global gradient-norm clip of the critic's steps; None disables.
    max_grad_norm: float | None = None
    #: KL radius of the policy step (mean KL(pi_old || pi) over the batch).
    target_kl: float = 0.01
    #: conjugate-gradient iterations per policy step.
    cg_max_steps: int = 15
    #: added to the Fisher-vector products (F + damping I).
    cg_damping: float = 0.1
    #: step-size factor per backtracking line-search iteration.
    line_search_shrinking_factor: float = 0.8
    #: backtracking line-search iterations before the step is rejected.
    line_search_max_iter: int = 10
    #: epochs of critic minibatch steps per rollout.
    n_critic_updates: int = 10
    #: the policy step uses every k-th sample of the rollout.
    sub_sampling_factor: int = 1

    rules: ClassVar[dict[str, Rule]] = {
        "num_epochs": OneOf((1,), note="one trust-region step per rollout; see n_critic_updates"),
        "target_kl": positive(),
        "cg_max_steps": count(),
        "cg_damping": non_negative(),
        "line_search_shrinking_factor": Range(0, 1, low_open=True, high_open=True),
        "line_search_max_iter": count(),
        "n_critic_updates": count(0),
        "sub_sampling_factor": count(),
    }


@AGENTS.register("trpo")
class TRPO(OnPolicyAgent):
    """TRPO: per rollout one natural-gradient step on the surrogate ``-mean(r A)`` (plus the
    entropy bonus, as OpenAI Baselines' ``trpo_mpi``) inside ``mean KL(pi_old || pi) <=
    target_kl``, then ``n_critic_updates`` epochs of Adam minibatch steps on the critic.

    The policy step is :meth:`clip_and_step` with :attr:`trust_region`: the loss gradient,
    conjugate gradient on Fisher-vector products (the Hessian of :attr:`kl`, ``+ cg_damping``),
    the step to the KL radius, and a backtracking line search that accepts the first step that
    lowers the loss with KL <= target_kl (else the policy stays). The critic's steps leave the
    parameters the policy's distribution depends on alone (shared ones too, as sb3-contrib).
    """

    Config = TRPOConfig
    config: TRPOConfig

    def __init__(self, env: VectorEnv, config: Any = None, **kwargs: Any) -> None:
        super().__init__(env, config, **kwargs)
        cfg = self.config
        step = TrustRegionStep(
            [self.flat_params],
            cfg.target_kl,
            cfg.cg_damping,
            cfg.cg_max_steps,
            cfg.line_search_shrinking_factor,
            cfg.line_search_max_iter,
        )
        #: the policy step (stateless, so not checkpointed).
        self.trust_step = step
        self.trust_region = FlatOptimizer.over(self.flat_params, step)
        self.kl = PolicyKL(name="kl")
        self.value_terms = nn.ModuleList([ValueLoss(cfg.vf_coef)])
        self.add_module("value_terms", self.value_terms)
        self.actor_mask = torch.zeros_like(self.flat_params, dtype=torch.bool)

    #: the natural-gradient step sub-samples rows of the rollout, which would cut sequences.
    trains_recurrent_policies: ClassVar[bool] = False

    def loss_terms(self) -> list[LossTerm]:
        return [Surrogate(), EntropyBonus(self.config.ent_coef)]

    def update(self) -> dict[str, float]:
        cfg = self.config
        batch = next(self.storage.minibatches(len(self.storage)))
        batch = batch.select(
            torch.arange(0, len(self.storage), cfg.sub_sampling_factor, device=self.device)
        )
        if cfg.normalize_advantages:
            batch = dataclasses.replace(batch, advantages=normalize(batch.advantages))
        params = list(self.policy.parameters())
        frozen = {k: v.detach().clone() for k, v in self.policy.named_parameters()}
        with torch.no_grad():
            old_dist = functional_call(self.policy, frozen, (batch.obs,)).dist

        def kl() -> Tensor:
            dist, _ = self.policy.action_distribution(batch.obs)
            return self.kl({"old_dist": old_dist, "dist": dist})

        kl_grad, reached = flat_grad(kl(), params, create_graph=True)
        # the entries the distribution depends on: the critic's steps leave them alone
        masks = [
            torch.full_like(p, r, dtype=torch.bool) for p, r in zip(params, reached, strict=True)
        ]
        self.actor_mask = torch.cat([m.reshape(-1) for m in masks])

        def fisher_vector(v: Tensor) -> Tensor:
            return flat_grad(kl_grad @ v, params)[0]

        def evaluate() -> tuple[float, float]:
            with torch.no_grad():
                return float(self.policy_loss(batch).total), float(kl())

        loss = self.compute_loss(batch, diagnostics=True)
        self.trust_step.set_problem(fisher_vector, evaluate)
        self.clip_and_step(loss, self.trust_region)
        stats: dict[str, list[Tensor]] = {}
        record(stats, loss)
        plan = LossPlan(list(self.value_terms))  # type: ignore[arg-type]
        for _ in range(cfg.n_critic_updates):
            for mb in self.minibatches():
                inputs = {"value": self.policy.value(mb.obs), **batch_inputs(mb)}
                value_loss = plan(inputs)
                self.clip_and_step(value_loss)
                record(stats, value_loss)
        step = self.trust_step.last
        return {**summarize(stats), **{f"train/{k}": v for k, v in step.items()}}

    def policy_loss(self, batch: RolloutBatch) -> Loss:
        """The loss terms on ``batch`` through the policy module (the line search's loss)."""
        ev = evaluate_actions(self.policy, None, batch.obs, batch.actions)
        extra = self.extra_losses(batch, ev.outputs["value"])
        inputs = {**ev.outputs, **batch_inputs(batch)}
        return assemble(list(self.terms), inputs, extra=extra, closed_form=False)

    def apply_gradients(self) -> Tensor | None:
        """The critic's step: its gradient with the policy's entries zeroed, then Adam."""
        grad = self.flat_params.grad
        assert grad is not None
        grad.masked_fill_(self.actor_mask, 0.0)
        return super().apply_gradients()


__all__ = ["TRPO", "TRPOConfig"]
