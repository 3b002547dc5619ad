"""Proximal Policy Optimization (Schulman et al. 2017), clipped-surrogate variant."""

from __future__ import annotations

import dataclasses

import torch

from rlkit.prototypes import AGENTS, OnPolicyAgent, OnPolicyConfig


@dataclasses.dataclass
class PPOConfig(OnPolicyConfig):
    """PPO hyperparameters (on top of :class:`OnPolicyConfig`)."""

    #: policy-ratio clip.
    clip_range: float = 0.2
    #: value clip around the old value; None disables value clipping.
    clip_range_vf: float | None = None
    #: stop the epoch loop early once the approximate KL exceeds 1.5 * target_kl.
    target_kl: float | None = None


@AGENTS.register("ppo")
class PPO(OnPolicyAgent):
    """PPO: clipped surrogate, optional value clipping, entropy bonus, target-KL early stop.

    Value loss is the mean squared error to the GAE returns (as Stable-Baselines3), weighted
    by ``vf_coef``.
    """

    Config = PPOConfig
    config: PPOConfig

    def update(self) -> dict[str, float]:
        cfg = self.config
        stats: dict[str, list[torch.Tensor]] = {
            k: []
            for k in (
                "loss/policy",
                "loss/value",
                "loss/entropy",
                "train/approx_kl",
                "train/clip_fraction",
            )
        }
        stop = False
        for _ in range(cfg.num_epochs):
            for mb in self.minibatches():
                log_prob, entropy, values, _ = self.policy.evaluate_actions(mb.obs, mb.actions)
                adv = mb.advantages
                if cfg.normalize_advantages and adv.numel() > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                log_ratio = log_prob - mb.old_log_probs
                ratio = log_ratio.exp()
                policy_loss = torch.max(
                    -adv * ratio, -adv * ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range)
                ).mean()
                if cfg.clip_range_vf is None:
                    value_loss = (values - mb.returns).pow(2).mean()
                else:
                    clipped = mb.old_values + (values - mb.old_values).clamp(
                        -cfg.clip_range_vf, cfg.clip_range_vf
                    )
                    value_loss = torch.max(
                        (values - mb.returns).pow(2), (clipped - mb.returns).pow(2)
                    ).mean()
                entropy_loss = -entropy.mean()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - log_ratio).mean()
                    clip_frac = ((ratio - 1).abs() > cfg.clip_range).float().mean()
                if cfg.target_kl is not None and approx_kl > 1.5 * cfg.target_kl:
                    stop = True
                    break
                self.clip_and_step(
                    policy_loss + cfg.vf_coef * value_loss + cfg.ent_coef * entropy_loss
                )
                for key, value in zip(
                    stats,
                    (policy_loss, value_loss, entropy_loss, approx_kl, clip_frac),
                    strict=True,
                ):
                    stats[key].append(value.detach())
            if stop:
                break
        return {k: float(torch.stack(v).mean()) for k, v in stats.items() if v}
