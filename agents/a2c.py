"""Advantage Actor-Critic (synchronous A3C, Mnih et al. 2016)."""

from __future__ import annotations

import dataclasses

import torch

from rlkit.prototypes import AGENTS, OnPolicyAgent, OnPolicyConfig


@dataclasses.dataclass
class A2CConfig(OnPolicyConfig):
    """A2C defaults (Stable-Baselines3's): short rollouts, one full-batch step, RMSprop."""

    num_steps: int = 5
    batch_size: int = 1_000_000  # always the whole rollout
    num_epochs: int = 1
    lr: float = 7e-4
    gae_lambda: float = 1.0
    normalize_advantages: bool = False
    #: RMSprop smoothing constant and epsilon (TF-style A2C settings).
    rms_alpha: float = 0.99
    rms_eps: float = 1e-5


@AGENTS.register("a2c")
class A2C(OnPolicyAgent):
    """A2C: policy gradient with a learned baseline, entropy bonus, one update per rollout."""

    Config = A2CConfig
    config: A2CConfig

    def make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        return torch.optim.RMSprop(
            [self.flat_params], lr=cfg.lr, alpha=cfg.rms_alpha, eps=cfg.rms_eps
        )

    def update(self) -> dict[str, float]:
        cfg = self.config
        totals: dict[str, list[float]] = {"loss/policy": [], "loss/value": [], "loss/entropy": []}
        kernel = self.fused_kernel()
        for _ in range(cfg.num_epochs):
            for mb in self.minibatches():
                if kernel is not None:
                    # The same loss differentiated by hand: d/d log_prob = -A / B,
                    # d/d value = 2 vf_coef (v - R) / B, d/d entropy = -ent_coef / B.
                    ev = kernel.evaluate(mb.obs, mb.actions, entropy=True)
                    assert ev.entropy is not None
                    n = mb.advantages.shape[0]
                    value_error = ev.value - mb.returns
                    self.zero_grad()
                    kernel.backward(
                        ev,
                        mb.advantages * (-1.0 / n),
                        torch.full_like(ev.entropy, -cfg.ent_coef / n),
                        value_error * (2.0 * cfg.vf_coef / n),
                    )
                    self.apply_gradients()
                    losses = (
                        -(mb.advantages * ev.log_prob).mean(),
                        value_error.square().mean(),
                        -ev.entropy.mean(),
                    )
                    for key, value in zip(totals, losses, strict=True):
                        totals[key].append(float(value))
                    continue
                log_prob, entropy, values, _ = self.policy.evaluate_actions(mb.obs, mb.actions)
                policy_loss = -(mb.advantages * log_prob).mean()
                value_loss = (values - mb.returns).pow(2).mean()
                entropy_loss = -entropy.mean()
                self.clip_and_step(
                    policy_loss + cfg.vf_coef * value_loss + cfg.ent_coef * entropy_loss
                )
                for key, value in zip(totals, (policy_loss, value_loss, entropy_loss), strict=True):
                    totals[key].append(float(value.detach()))
        return {k: sum(v) / len(v) for k, v in totals.items() if v}
