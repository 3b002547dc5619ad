"""Truncated Quantile Critics (Kuznetsov et al. 2020, "Controlling Overestimation Bias with
Truncated Mixture of Continuous Distributional Quantile Critics"): SAC whose critics predict
return quantiles; the target pools every critic's next-state quantiles and drops the largest."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from rlkit.config.rules import Rule, count
from rlkit.encoders.base import Encoder
from rlkit.losses import (
    LossTerm,
    QuantileHuberLoss,
    SACActorLoss,
    quantile_midpoints,
    td_target,
    truncated_quantiles,
)
from rlkit.policies.gsde import GSDEQuantileActorCritic
from rlkit.policies.quantile_critic import QuantileActorCritic
from rlkit.prototypes import AGENTS
from rlkit.storages.replay import ReplayBatch

from .sac import SAC, SACConfig

TQC_RULES: dict[str, Rule] = {
    "n_critics": count(),
    "n_quantiles": count(),
    "top_quantiles_to_drop_per_net": count(0),
}


@dataclasses.dataclass
class TQCConfig(SACConfig):
    """SAC's hyperparameters (sb3-contrib's TQC names and defaults) plus the critics:
    ``n_critics`` critics of ``n_quantiles`` quantiles (the paper's 5 x 25; sb3-contrib's policy
    defaults to 2 critics) and ``top_quantiles_to_drop_per_net`` (``d``: the target drops the
    ``d * n_critics`` largest of the pooled atoms; 2, as both)."""

    #: quantile critics in the ensemble.
    n_critics: int = 5
    #: quantiles predicted by each critic.
    n_quantiles: int = 25
    #: largest pooled target atoms dropped per critic (d; d * n_critics in all).
    top_quantiles_to_drop_per_net: int = 2

    rules = TQC_RULES  # a class attribute (no annotation), not a field


@AGENTS.register("tqc")
class TQC(SAC):
    """TQC: every critic regresses all its quantiles on the truncated mixture
    ``r + g (sorted(theta'_e,i(s', a') for all e, i)[:kept] - alpha log pi(a'|s'))`` with the
    quantile Huber loss (kappa 1); the actor ascends the mean of every critic's quantiles.

    Updates follow SAC's (and sb3-contrib's) order: temperature, critics, actor.
    """

    Config = TQCConfig
    config: TQCConfig
    policy_class = QuantileActorCritic
    policy: QuantileActorCritic

    def default_policy(self, encoder: Encoder | None) -> QuantileActorCritic:
        cfg, spaces_ = self.config, (self.observation_space, self.action_space)
        if cfg.use_sde:
            return GSDEQuantileActorCritic(
                *spaces_, encoder, cfg.hidden_sizes, num_critics=cfg.n_critics,
                n_quantiles=cfg.n_quantiles, log_std_init=cfg.log_std_init,
            )  # fmt: skip
        return QuantileActorCritic(
            *spaces_, encoder, cfg.hidden_sizes,
            num_critics=cfg.n_critics, n_quantiles=cfg.n_quantiles,
        )  # fmt: skip

    def setup(self) -> None:
        super().setup()
        per_net, n = self.config.top_quantiles_to_drop_per_net, self.policy.n_quantiles
        if per_net >= n:
            raise ValueError(
                f"TQC: top_quantiles_to_drop_per_net={per_net} would drop every one of the "
                f"{n} quantiles per critic; it must be < n_quantiles"
            )
        self.drop = per_net * self.policy.num_critics  # atoms dropped from the pooled target

    def loss_terms(self) -> dict[str, list[LossTerm]]:
        # QuantileHuberLoss sums over the E*N predicted quantiles; sb3-contrib (and the authors'
        # code) average over them: coef 1 / (E N) gives their loss and gradient exactly.
        atoms = self.policy.num_critics * self.policy.n_quantiles
        critic = QuantileHuberLoss(kappa=1.0, coef=1.0 / atoms, name="critic")
        return {**super().loss_terms(), "critic": [critic], "actor": [SACActorLoss("mean")]}

    def update(self, batch: ReplayBatch) -> dict[str, Tensor]:
        policy, target, gen = self.policy, self.target.net, self._generator
        features = policy.features(batch.obs)
        actions_pi, log_prob = policy.sample_with_log_prob(features.detach(), gen)
        alpha = self.ent_coef()
        if self.ent_optimizer is not None:
            inputs = {"log_alpha": self.ent_coef.log_alpha, "log_prob": log_prob.detach()}
            self.clip_and_step(self.loss("ent_coef", inputs), self.ent_optimizer)
        with torch.no_grad():
            next_features = policy.features(batch.next_obs)
            next_actions, next_log_prob = policy.sample_with_log_prob(next_features, gen)
            next_quantiles = target.quantiles(target.features(batch.next_obs), next_actions)
            kept = truncated_quantiles(next_quantiles, self.drop)  # [B, E N - drop]
            soft = kept - alpha * next_log_prob.unsqueeze(1)
            atoms = td_target(batch.rewards.unsqueeze(1), batch.discounts.unsqueeze(1), soft)
        quantiles = policy.quantiles(features, policy.normalize_actions(batch.actions))
        taus = quantile_midpoints(policy.n_quantiles, quantiles.device).repeat(policy.num_critics)
        critic_inputs = {  # q, target: the means; with PER the weights (and new priorities)
            **self.td_inputs(batch, quantiles.mean(-1), atoms.mean(-1)),
            "quantiles": quantiles.transpose(0, 1).flatten(1),  # [B, E N]: every critic's
            "target_quantiles": atoms,
            "taus": taus,
        }
        self.clip_and_step(self.loss("critic", critic_inputs), self.critic_optimizer)
        q_pi = policy.q_values(features.detach(), actions_pi, detach_params=True)
        actor_inputs = {"log_prob": log_prob, "q": q_pi, "alpha": alpha}
        self.clip_and_step(self.loss("actor", actor_inputs), self.actor_optimizer)
        return {"train/ent_coef": alpha}
