"""V-MPO (Song et al. 2019, "V-MPO: On-Policy Maximum a Posteriori Policy Optimization for
Discrete and Continuous Control"): EM-style policy improvement on a learned state value, with
learned temperature and KL multipliers instead of policy gradients, clipping or entropy bonuses.

What this follows: the paper's losses (policy evaluation, E-step, M-step) as DeepMind's rlax
implements them (``vmpo_loss`` in ``rlax/_src/mpo_ops.py``; see :mod:`rlkit.losses.vmpo`),
the paper's projection of the dual variables to ``>= 1e-8`` after each step, its decoupled
mean/covariance KL for Gaussian policies and its initial multipliers (``eta`` 1; ``alpha`` 5
for discrete actions, ``alpha_mu = alpha_sigma = 1`` for Gaussians). The bounds' defaults
(``epsilon_eta`` 0.01, ``epsilon_alpha`` 0.01, ``epsilon_alpha_mu`` 0.01,
``epsilon_alpha_sigma`` 5e-5) are the values reimplementations quote from the paper's tables
(rlkit/presets/vmpo.yaml says which).

Departures: advantages and value targets are the on-policy prototype's GAE (``gae_lambda`` 1
gives the paper's n-step returns bootstrapped at the rollout's end), normalised per minibatch
by default (``normalize_advantages``; the paper uses raw advantages, PopArt-scaled in its
multi-task runs); updates may take several epochs of minibatches (the paper takes one step per
batch; the top-half selection and the softmax run per minibatch); ``pi_old`` is the policy
that collected the rollout, fixed for its update (the paper's is a target network updated
every few learner steps); the duals have an Adam optimizer of their own (``dual_lr``, by
default the network's ``lr``); rlax's restarting weights (dropping each episode's first step)
and PopArt are not used.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from torch import Tensor
from torch.func import functional_call

from rlkit.config.rules import Range, Rule, positive
from rlkit.losses import (
    EntropyBonus,
    GaussianCovarianceKLConstraint,
    GaussianMeanKLConstraint,
    KLConstraint,
    LagrangeMultiplier,
    LossTerm,
    TopKTemperatureDual,
    TopKWeightedLikelihood,
    ValueLoss,
)
from rlkit.prototypes import AGENTS, OnPolicyAgent, OnPolicyConfig
from rlkit.prototypes.learning import PolicyEvaluation
from rlkit.prototypes.on_policy import RolloutBatch
from rlkit.utils.compiling import eager_only
from rlkit.utils.optim import optimizer_step


@dataclasses.dataclass
class VMPOConfig(OnPolicyConfig):
    """V-MPO hyperparameters (on top of :class:`OnPolicyConfig`); ``vf_coef`` 0.5 is the
    paper's ``1/2`` in the value loss."""

    #: the fraction of each minibatch (largest advantages) the policy is fitted to.
    top_k_fraction: float = 0.5
    #: bound on KL(psi || uniform) of the E-step weights (the temperature's constraint).
    epsilon_eta: float = 0.01
    #: initial temperature eta.
    eta_init: float = 1.0
    #: bound on mean KL(pi_old || pi) (non-Gaussian policies: discrete actions).
    epsilon_alpha: float = 0.01
    #: initial KL multiplier alpha (non-Gaussian policies).
    alpha_init: float = 5.0
    #: bound on the mean part of the decoupled Gaussian KL (Box actions).
    epsilon_alpha_mu: float = 0.01
    #: bound on the covariance part of the decoupled Gaussian KL (Box actions).
    epsilon_alpha_sigma: float = 5e-5
    #: initial multipliers of the mean and covariance constraints (Box actions).
    alpha_mu_init: float = 1.0
    #: initial multiplier of the covariance constraint (Box actions).
    alpha_sigma_init: float = 1.0
    #: Adam learning rate of the dual variables; None: ``lr``.
    dual_lr: float | None = None

    rules: ClassVar[dict[str, Rule]] = {
        "top_k_fraction": Range(0, 1, low_open=True),
        "epsilon_eta": positive(),
        "eta_init": positive(),
        "epsilon_alpha": positive(),
        "alpha_init": positive(),
        "epsilon_alpha_mu": positive(),
        "epsilon_alpha_sigma": positive(),
        "alpha_mu_init": positive(),
        "alpha_sigma_init": positive(),
        "dual_lr": positive(none=True),
    }


@AGENTS.register("vmpo")
class VMPO(OnPolicyAgent):
    """V-MPO: per minibatch, weighted maximum likelihood of the top-half-advantage samples
    (weights ``softmax(A / eta)``), the temperature's dual loss, Lagrangian KL constraints to the
    behaviour policy (one on the full KL; mean and covariance parts for Box actions) and the
    value regression ``vf_coef (V - R)^2``.

    ``pi_old`` is the policy that collected the rollout: its parameters are frozen at the
    start of :meth:`update` and the old distributions of each minibatch come from them. The
    minibatch is evaluated through the policy module (not a kernel), since the KL terms read
    whole distributions. Each :meth:`clip_and_step` also takes one Adam step on the dual
    variables (the terms' :class:`~rlkit.losses.LagrangeMultiplier` modules, optimizer
    ``dual``) and projects them to ``>= 1e-8``. Logged: ``train/eta``, ``train/weights_kl``,
    and per constraint ``train/<name>`` (its KL) and ``train/<name>_alpha``.
    """

    Config = VMPOConfig
    config: VMPOConfig

    def __init__(self, env: VectorEnv, config: Any = None, **kwargs: Any) -> None:
        super().__init__(env, config, **kwargs)
        cfg = self.config
        #: the dual variables of every term, stepped with the policy.
        self.multipliers = [m for m in self.terms.modules() if isinstance(m, LagrangeMultiplier)]
        self.dual_lr = cfg.dual_lr if cfg.dual_lr is not None else cfg.lr
        #: their Adam (checkpointed as ``dual``); None when no term has a multiplier.
        self.duals = (
            self.add_optimizer("dual", self.multipliers, self.dual_lr) if self.multipliers else None
        )
        temperatures = [t for t in self.terms if isinstance(t, TopKTemperatureDual)]
        if not temperatures:
            raise ValueError(f"{type(self).__name__}: loss_terms() needs a TopKTemperatureDual")
        self.temperature = temperatures[0]
        #: pi_old's parameters (the behaviour policy's), refreshed by :meth:`update`.
        self.behaviour = {k: v.detach().clone() for k, v in self.policy.named_parameters()}

    def loss_terms(self) -> list[LossTerm]:
        cfg = self.config
        if isinstance(self.action_space, spaces.Box):  # Gaussian policies: decoupled KL
            kl: list[LossTerm] = [
                GaussianMeanKLConstraint(cfg.epsilon_alpha_mu, cfg.alpha_mu_init),
                GaussianCovarianceKLConstraint(cfg.epsilon_alpha_sigma, cfg.alpha_sigma_init),
            ]
        else:
            kl = [KLConstraint(cfg.epsilon_alpha, cfg.alpha_init)]
        return [
            TopKWeightedLikelihood(cfg.top_k_fraction),
            TopKTemperatureDual(cfg.epsilon_eta, cfg.eta_init, cfg.top_k_fraction),
            *kl,
            ValueLoss(cfg.vf_coef),
            EntropyBonus(cfg.ent_coef),
        ]

    def update(self) -> dict[str, float]:
        with torch.no_grad():  # pi_old: the policy that collected this rollout
            for name, param in self.policy.named_parameters():
                self.behaviour[name].copy_(param)
        self.backend_report.record(
            "policy evaluation", "nn.Module + autograd", "V-MPO's KL terms read distributions"
        )
        return super().update()

    def anneal_lr(self) -> None:
        """With ``anneal_lr``, the duals' rate decays like the network's, from ``dual_lr``."""
        super().anneal_lr()
        if self.duals is not None and self.config.anneal_lr:
            scale = self.optimizer.param_groups[0]["lr"] / self.config.lr
            for group in self.duals.optimizer.param_groups:
                group["lr"] = self.dual_lr * scale

    def evaluate_minibatch(self, mb: RolloutBatch, need_entropy: bool = True) -> PolicyEvaluation:
        """The policy's outputs plus ``dist`` (now), ``old_dist`` (pi_old) and
        ``temperature`` (eta, without gradient)."""
        state = mb.states if mb.states else None
        log_prob, entropy, value, dist = self.policy.evaluate_actions(
            mb.obs, mb.actions, state, mb.episode_starts
        )
        with torch.no_grad():
            old = functional_call(
                self.policy, self.behaviour, (mb.obs, state, mb.episode_starts)
            ).dist
        outputs: dict[str, Any] = {
            "log_prob": log_prob,
            "entropy": entropy,
            "value": value,
            "dist": dist,
            "old_dist": old,
            "temperature": self.temperature.eta().detach(),
        }
        return PolicyEvaluation(outputs)

    @eager_only
    def zero_grad(self) -> None:
        super().zero_grad()
        if self.duals is not None:
            self.duals.zero_grad()

    @eager_only
    def apply_gradients(self) -> Tensor | None:
        """The policy's step, then the duals' Adam step and projection."""
        norm = super().apply_gradients()
        if self.duals is not None:
            optimizer_step(self.duals.optimizer)
            for multiplier in self.multipliers:
                multiplier.project()
        return norm


__all__ = ["VMPO", "VMPOConfig"]
