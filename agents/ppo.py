"""Proximal Policy Optimization (Schulman et al. 2017), clipped-surrogate variant."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from rlkit.prototypes import AGENTS, OnPolicyAgent, OnPolicyConfig
from rlkit.storages.rollout import RolloutBatch
from rlkit.utils.optim import FlatAdam


@dataclasses.dataclass
class PPOConfig(OnPolicyConfig):
    """PPO hyperparameters (on top of :class:`OnPolicyConfig`)."""

    #: policy-ratio clip.
    clip_range: float = 0.2
    #: value clip around the old value; None disables value clipping.
    clip_range_vf: float | None = None
    #: stop the epoch loop early once the approximate KL exceeds 1.5 * target_kl.
    target_kl: float | None = None
    #: Adam's epsilon (CleanRL and the PPO paper's code use 1e-5; Stable-Baselines3 1e-8).
    adam_eps: float = 1e-5


@AGENTS.register("ppo")
class PPO(OnPolicyAgent):
    """PPO: clipped surrogate, optional value clipping, entropy bonus, target-KL early stop.

    The value loss is the mean squared error to the GAE returns (as Stable-Baselines3),
    weighted by ``vf_coef``. Logged diagnostics (KL, clip fraction) are means over the last
    epoch's minibatches.
    """

    Config = PPOConfig
    config: PPOConfig

    def make_optimizer(self) -> torch.optim.Optimizer:
        return FlatAdam([self.flat_params], lr=self.config.lr, eps=self.config.adam_eps)

    def update(self) -> dict[str, float]:
        cfg = self.config
        stats: dict[str, list[torch.Tensor]] = {}
        for epoch in range(cfg.num_epochs):
            last_epoch = epoch == cfg.num_epochs - 1
            for mb in self.minibatches():
                log_prob, entropy, values, _ = self.policy.evaluate_actions(mb.obs, mb.actions)
                log_ratio = log_prob - mb.old_log_probs
                ratio = log_ratio.exp()
                if cfg.target_kl is not None:
                    with torch.no_grad():
                        approx_kl = ((ratio - 1) - log_ratio).mean()
                    if approx_kl > 1.5 * cfg.target_kl:
                        return self._summary(stats, early_stop_epoch=epoch)
                adv = mb.advantages
                clipped_ratio = ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range)
                policy_loss = -torch.min(adv * ratio, adv * clipped_ratio).mean()
                if cfg.clip_range_vf is None:
                    value_loss = F.mse_loss(values, mb.returns)
                else:
                    clipped = mb.old_values + (values - mb.old_values).clamp(
                        -cfg.clip_range_vf, cfg.clip_range_vf
                    )
                    value_loss = torch.max(
                        (values - mb.returns).pow(2), (clipped - mb.returns).pow(2)
                    ).mean()
                loss = policy_loss + cfg.vf_coef * value_loss
                if cfg.ent_coef != 0.0:
                    loss = loss - cfg.ent_coef * entropy.mean()
                extra = self.extra_losses(mb, values)
                for term in extra.values():
                    loss = loss + term
                self.clip_and_step(loss)
                if last_epoch:
                    with torch.no_grad():
                        self._record(stats, policy_loss, value_loss, entropy, ratio, log_ratio)
                        for name, term in extra.items():
                            stats.setdefault(f"loss/{name}", []).append(term.detach())
        return self._summary(stats)

    def extra_losses(self, mb: RolloutBatch, values: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted loss terms added to PPO's (none here): the hook for variants such as DrAC.

        Gets the minibatch and the values just computed on it; each returned term is added to
        the loss and logged as ``loss/<name>``.
        """
        return {}

    def _record(
        self,
        stats: dict[str, list[torch.Tensor]],
        policy_loss: torch.Tensor,
        value_loss: torch.Tensor,
        entropy: torch.Tensor,
        ratio: torch.Tensor,
        log_ratio: torch.Tensor,
    ) -> None:
        values = {
            "loss/policy": policy_loss.detach(),
            "loss/value": value_loss.detach(),
            "loss/entropy": -entropy.detach().mean(),
            "train/approx_kl": ((ratio - 1) - log_ratio).mean(),
            "train/clip_fraction": ((ratio - 1).abs() > self.config.clip_range).float().mean(),
        }
        for key, value in values.items():
            stats.setdefault(key, []).append(value)

    @staticmethod
    def _summary(
        stats: dict[str, list[torch.Tensor]], early_stop_epoch: int | None = None
    ) -> dict[str, float]:
        out = {k: float(torch.stack(v).mean()) for k, v in stats.items() if v}
        if early_stop_epoch is not None:
            out["train/early_stop_epoch"] = float(early_stop_epoch)
        return out
