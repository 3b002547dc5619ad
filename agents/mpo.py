"""Maximum a Posteriori Policy Optimisation (Abdolmaleki et al. 2018, "Maximum a Posteriori
Policy Optimisation"; the decoupled M-step of Abdolmaleki et al. 2018b, "Relative Entropy
Regularized Policy Iteration") for continuous actions, following DeepMind Acme's MPO agent
(``acme/agents/tf/mpo``, loss ``acme/tf/losses/mpo.py``, defaults also in
``acme/agents/jax/mpo``)."""

from __future__ import annotations

import dataclasses

import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.config.rules import Rule, count, finite, positive
from rlkit.distributions.gaussian import DiagGaussianDist
from rlkit.encoders.base import Encoder
from rlkit.losses import LossTerm, TDLoss, td_target
from rlkit.losses.gaussian import decoupled_gaussians, gaussian_kl
from rlkit.losses.mpo import (
    KLConstraintDual,
    KLConstraintPenalty,
    MPODuals,
    TemperatureDual,
    WeightedLogLikelihood,
    nonparametric_kl,
    nonparametric_weights,
)
from rlkit.policies.twin_q import SquashedGaussianActorCritic
from rlkit.prototypes import AGENTS, OffPolicyAgent, OffPolicyConfig
from rlkit.storages.replay import ReplayBatch

MPO_RULES: dict[str, Rule] = {
    "num_samples": count(),
    "n_critics": count(),
    "epsilon": positive(),
    "epsilon_mean": positive(),
    "epsilon_stddev": positive(),
    "init_log_temperature": finite(),
    "init_log_alpha_mean": finite(),
    "init_log_alpha_stddev": finite(),
    "dual_lr": positive(),
}


@dataclasses.dataclass
class MPOConfig(OffPolicyConfig):
    """Acme's MPO defaults (TF agent and learner; the JAX ``MPOConfig`` and
    ``GaussianPolicyLossConfig`` hold the same numbers): batch 256, Adam 1e-4 for the actor
    and critic and 1e-2 for the dual variables, gradient norms clipped at 40, 5-step returns,
    20 sampled actions per state, hard target copies every 100 updates, 1000 transitions
    before the first update and one update per 8 of them (``samples_per_insert`` 32 at batch
    256). The dual variables' gradient is clipped too, as in Acme's JAX learner."""

    #: env steps of uniformly random actions before the first update.
    learning_starts: int = 1000
    #: vectorised env steps between two rounds of updates.
    train_freq: int = 8
    #: n-step returns (Acme's 5).
    n_step: int = 5
    #: target update coefficient (1.0: hard copy).
    tau: float = 1.0
    #: gradient steps between target-network copies.
    target_update_interval: int = 100
    #: learning rate of the actor's and the critic's Adam optimizers.
    lr: float = 1e-4
    #: gradient-norm clip of every optimizer (the dual variables' too); None disables.
    max_grad_norm: float | None = 40.0
    #: actions drawn from the target policy per next state (E-step samples and TD target).
    num_samples: int = 20
    #: critics (Acme: one); with several, each regresses on the target and the E-step and
    #: the target use their mean.
    n_critics: int = 1
    #: KL bound of the non-parametric policy to the target policy (E-step).
    epsilon: float = 0.1
    #: KL bounds of the fitted policy's mean and std to the target policy's (M-step).
    epsilon_mean: float = 2.5e-3
    #: KL bound of the fitted policy's std to the target policy's (M-step).
    epsilon_stddev: float = 1e-6
    #: bound each action dimension's KL separately (one multiplier per dimension).
    per_dim_constraining: bool = True
    #: initial dual variables in softplus space (softplus(10) = 10.00005).
    init_log_temperature: float = 10.0
    #: initial dual variable of the mean's KL bound (softplus space).
    init_log_alpha_mean: float = 10.0
    #: initial dual variable of the std's KL bound (softplus space).
    init_log_alpha_stddev: float = 1000.0
    #: Adam's learning rate for the dual variables.
    dual_lr: float = 1e-2

    rules = MPO_RULES  # a class attribute (no annotation), not a field


def pre_tanh_gaussian(policy: SquashedGaussianActorCritic, features: Tensor) -> DiagGaussianDist:
    """The Gaussian that the actor's tanh squashes. MPO's KLs and weighted likelihoods are
    taken on it: a KL is invariant under the bijection tanh, and ``log pi(tanh u) = log N(u) -
    sum log(1 - tanh(u)^2)`` differs from the Gaussian's by a term free of parameters, so the
    M-step's gradients are those of the squashed policy."""
    squashed = policy.action_distribution(features)
    return DiagGaussianDist(squashed.mean, squashed.log_std)


@AGENTS.register("mpo")
class MPO(OffPolicyAgent):
    """MPO: an E-step that weights ``N`` target-policy actions per state by
    ``softmax(Q'/eta)`` and an M-step that fits them by weighted maximum likelihood, the mean
    and the std each within a KL trust region of the target policy.

    The critic regresses on ``r + g^n mean_j Q'(s', a'_j)``; the same samples and values form
    the E-step at ``s'`` (as Acme's TF learner, which improves the policy at the next states).
    Actor and critic targets are hard copies every ``target_update_interval`` updates. The
    actor is SAC's tanh-squashed Gaussian, taken on its pre-tanh Gaussian
    (:func:`pre_tanh_gaussian`): its actions stay in the bounds, so Acme's penalty on
    out-of-bound actions (MO-MPO), made for an unsquashed Gaussian, has nothing to do here.
    """

    Config = MPOConfig
    config: MPOConfig
    action_spaces = (spaces.Box,)
    policy_class = SquashedGaussianActorCritic
    policy: SquashedGaussianActorCritic

    def default_policy(self, encoder: Encoder | None) -> SquashedGaussianActorCritic:
        cfg, spaces_ = self.config, (self.observation_space, self.action_space)
        return SquashedGaussianActorCritic(
            *spaces_, encoder, cfg.hidden_sizes, num_critics=cfg.n_critics
        )

    def setup(self) -> None:
        cfg, policy = self.config, self.policy
        self.critic_optimizer = self.add_optimizer("critic", policy.critic_modules())
        self.actor_optimizer = self.add_optimizer("actor", policy.actor_modules())
        self.duals = MPODuals(
            policy.action_dim, cfg.per_dim_constraining, cfg.init_log_temperature,
            cfg.init_log_alpha_mean, cfg.init_log_alpha_stddev,
        )  # fmt: skip
        self.add_module("duals", self.duals)
        self.dual_optimizer = self.add_optimizer("dual", [self.duals], lr=cfg.dual_lr)
        self.target = self.add_target("target", policy)  # the actor's and the critics'

    def loss_terms(self) -> dict[str, list[LossTerm]]:
        cfg = self.config
        return {
            "critic": [TDLoss("half_mse", name="critic")],  # Acme's trfl.td_learning
            "actor": [
                WeightedLogLikelihood("_mean"), WeightedLogLikelihood("_stddev"),
                KLConstraintPenalty("_mean"), KLConstraintPenalty("_stddev"),
            ],
            "dual": [
                TemperatureDual(cfg.epsilon),
                KLConstraintDual(cfg.epsilon_mean, "_mean"),
                KLConstraintDual(cfg.epsilon_stddev, "_stddev"),
            ],
        }  # fmt: skip

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        cfg, policy, target, duals = self.config, self.policy, self.target.net, self.duals
        features = policy.features(batch.obs)
        with torch.no_grad():  # E-step: N target-policy actions per next state and their values
            next_features = target.features(batch.next_obs)
            target_pi = pre_tanh_gaussian(target, next_features)
            noise = torch.randn((cfg.num_samples, *target_pi.mean.shape), generator=self._generator)
            u = torch.addcmul(target_pi.mean, target_pi.std, noise.to(target_pi.mean.device))
            q_next = target.q_values(
                next_features.repeat(cfg.num_samples, 1), torch.tanh(u).flatten(0, 1)
            ).mean(0).view(u.shape[:2])  # fmt: skip  # [N, B]
            td = td_target(batch.rewards, batch.discounts, q_next.mean(0))
            weights = nonparametric_weights(q_next, duals.temperature())
        q = policy.q_values(features, policy.normalize_actions(batch.actions))
        self.clip_and_step(self.loss("critic", self.td_inputs(batch, q, td)), self.critic_optimizer)
        # M-step at the same states; the online actor reads the target encoder's features (Acme)
        fixed_std, fixed_mean = decoupled_gaussians(
            pre_tanh_gaussian(policy, next_features), target_pi
        )
        kl_mean = gaussian_kl(target_pi, fixed_std, cfg.per_dim_constraining)  # [B, D] or [B, 1]
        kl_stddev = gaussian_kl(target_pi, fixed_mean, cfg.per_dim_constraining)
        actor_inputs = {
            "weights": weights,
            "log_prob_mean": fixed_std.log_prob(u),  # [N, B]
            "log_prob_stddev": fixed_mean.log_prob(u),
            "kl_mean": kl_mean, "alpha_mean": duals.alpha_mean(),
            "kl_stddev": kl_stddev, "alpha_stddev": duals.alpha_stddev(),
        }  # fmt: skip
        self.clip_and_step(self.loss("actor", actor_inputs), self.actor_optimizer)
        dual_inputs = {
            "log_temperature": duals.log_temperature, "q": q_next,
            "log_alpha_mean": duals.log_alpha_mean, "kl_mean": kl_mean.detach(),
            "log_alpha_stddev": duals.log_alpha_stddev, "kl_stddev": kl_stddev.detach(),
        }  # fmt: skip
        self.clip_and_step(self.loss("dual", dual_inputs), self.dual_optimizer)
        duals.clamp_()
        return {
            "train/temperature": duals.temperature().squeeze(0),
            "train/alpha_mean": duals.alpha_mean().mean(),
            "train/alpha_stddev": duals.alpha_stddev().mean(),
            "train/kl_q_rel": nonparametric_kl(weights).mean() / cfg.epsilon,
            "train/kl_mean_rel": kl_mean.detach().mean() / cfg.epsilon_mean,
            "train/kl_stddev_rel": kl_stddev.detach().mean() / cfg.epsilon_stddev,
        }
