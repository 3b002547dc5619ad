"""Proximal Policy Optimization (Schulman et al. 2017), clipped-surrogate variant."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from rlkit.policies.fused import FusedActorCritic
from rlkit.prototypes import AGENTS, OnPolicyAgent, OnPolicyConfig
from rlkit.storages.rollout import RolloutBatch, RolloutStorage
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
        kernel = self.fused_kernel()
        if kernel is not None and type(self).extra_losses is PPO.extra_losses:
            return self._fused_update(kernel)
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

    def _fused_update(self, kernel: FusedActorCritic) -> dict[str, float]:
        """:meth:`update` through the fused kernel: the same loss, differentiated by hand.

        With ``r = exp(log_prob - old_log_prob)`` and ``B`` samples, the clipped surrogate
        ``-mean(min(A r, A clip(r)))`` has derivative ``-A r / B`` with respect to ``log_prob``
        where the unclipped term is the minimum (ties included, as autograd splits them) and 0
        elsewhere; the value loss ``vf_coef * mean((v - R)^2)`` has ``2 vf_coef (v - R) / B``
        (with value clipping, the larger of the two squared errors carries the gradient, the
        clipped one only inside the clip range); the entropy bonus ``-ent_coef * mean(H)`` has
        ``-ent_coef / B``. ``tests/test_fused.py`` checks the result against autograd.
        """
        cfg = self.config
        stats: dict[str, list[torch.Tensor]] = {}
        lo, hi = 1 - cfg.clip_range, 1 + cfg.clip_range
        # A minibatch that is the whole rollout is the same every epoch; with the default
        # minibatch hooks (no shuffling, augmentation or randomness) take it once.
        fixed = (
            list(self.minibatches())
            if cfg.batch_size >= len(self.storage)
            and self.augmentation is None
            and type(self).minibatches is OnPolicyAgent.minibatches
            and type(self.storage).minibatches is RolloutStorage.minibatches
            else None
        )
        for epoch in range(cfg.num_epochs):
            last_epoch = epoch == cfg.num_epochs - 1
            for mb in fixed if fixed is not None else self.minibatches():
                need_entropy = cfg.ent_coef != 0.0 or last_epoch
                ev = kernel.evaluate(mb.obs, mb.actions, entropy=need_entropy)
                # NumPy on these [B] vectors: a fraction of torch's per-call cost on the CPU.
                adv, returns, values = mb.advantages.numpy(), mb.returns.numpy(), ev.value.numpy()
                n = adv.shape[0]
                log_ratio = ev.log_prob.numpy() - mb.old_log_probs.numpy()
                ratio = np.exp(log_ratio)
                if cfg.target_kl is not None:
                    approx_kl = float(((ratio - 1) - log_ratio).mean())
                    if approx_kl > 1.5 * cfg.target_kl:
                        return self._summary(stats, early_stop_epoch=epoch)
                surrogate = adv * ratio
                clipped_surrogate = adv * np.clip(ratio, lo, hi)
                d_log_prob = surrogate * (surrogate <= clipped_surrogate)
                d_log_prob *= -1.0 / n
                value_error = values - returns
                squares = value_error * value_error
                if cfg.clip_range_vf is None:
                    d_value = value_error * (2.0 * cfg.vf_coef / n)
                else:
                    clip_vf = cfg.clip_range_vf
                    old_values = mb.old_values.numpy()
                    delta = values - old_values
                    clipped_error = old_values + np.clip(delta, -clip_vf, clip_vf) - returns
                    clipped_squares = clipped_error * clipped_error
                    d_clipped = clipped_error * (np.abs(delta) <= clip_vf)
                    d_value = np.where(
                        squares > clipped_squares,
                        value_error,
                        np.where(
                            squares < clipped_squares, d_clipped, 0.5 * (value_error + d_clipped)
                        ),
                    )
                    d_value *= 2.0 * cfg.vf_coef / n
                    squares = np.maximum(squares, clipped_squares)
                d_entropy = None
                if cfg.ent_coef != 0.0:
                    d_entropy = torch.full((n,), -cfg.ent_coef / n)
                self.zero_grad()
                kernel.backward(
                    ev, torch.from_numpy(d_log_prob), d_entropy, torch.from_numpy(d_value)
                )
                self.apply_gradients()
                if last_epoch:
                    assert ev.entropy is not None
                    self._record(
                        stats,
                        torch.tensor(-float(np.minimum(surrogate, clipped_surrogate).mean())),
                        torch.tensor(float(squares.mean())),
                        ev.entropy,
                        torch.from_numpy(ratio),
                        torch.from_numpy(log_ratio),
                    )
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
