"""Intrinsic Curiosity Module (Pathak et al. 2017, "Curiosity-driven Exploration by
Self-supervised Prediction"; authors' code ``pathak22/noreward-rl``)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Rule, unit
from rlkit.rewards.base import INTRINSIC_REWARDS, IntrinsicReward, RewardNorm, TransitionBatch
from rlkit.rewards.common import (
    ActionCoder,
    ObsWhitener,
    action_rows,
    check_batch,
    check_obs_space,
    check_positive,
    minibatches,
    obs_pair,
)
from rlkit.rewards.dynamics import ForwardModel, InverseModel, attach_dynamics_models


@INTRINSIC_REWARDS.register("icm")
class ICM(IntrinsicReward):
    """Bonus = forward-model error in a feature space learned by an inverse model.

    Features ``phi`` come from the paper's conv net (rlkit's ``PathakCNN``, 4 x conv 32 ELU,
    flat output) for images and a ReLU MLP for vectors. The inverse model predicts ``a_t`` from
    ``[phi(s_t), phi(s_t+1)]``; the forward model predicts ``phi(s_t+1)`` from
    ``[phi(s_t), a_t]``. The module minimises ``(1 - beta) * L_inverse + beta * L_forward``
    (``beta = 0.2``) with ``L_forward = 0.5 * ||f - phi(s_t+1)||^2`` (summed over features,
    averaged over samples, as ``0.5 * mean * 288`` in the authors' code, where the forward
    loss also trains the features). The bonus is the same per-sample
    ``0.5 * ||f(phi(s_t), a_t) - phi(s_t+1)||^2``; the paper's ``eta`` is ``coef``.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "beta": unit(),
    }

    # set by attach_dynamics_models
    actions: ActionCoder
    whitener: ObsWhitener
    encoder: nn.Module
    inverse: InverseModel
    forward_model: ForwardModel
    optimizer: torch.optim.Optimizer

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        coef: float = 1.0,
        coef_decay: float = 0.0,
        reward_norm: RewardNorm = "rms",
        obs_norm: bool = False,
        feature_dim: int = 128,
        hidden_dim: int = 256,
        beta: float = 0.2,
        lr: float = 1e-3,
        batch_size: int = 256,
    ) -> None:
        space = check_obs_space(observation_space, "ICM")
        super().__init__(observation_space, action_space, coef, coef_decay, reward_norm)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"ICM: beta must be in [0, 1], got {beta}")
        check_positive("ICM", lr=lr, batch_size=batch_size)
        self.beta = float(beta)
        self.batch_size = int(batch_size)
        self.obs_shape = tuple(space.shape or ())
        attach_dynamics_models(
            self, space, action_space, obs_norm, feature_dim, hidden_dim, lr, "ICM"
        )

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"icm": self.optimizer}

    def _losses(
        self, obs: Tensor, next_obs: Tensor, actions: Tensor, inverse: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """Per-sample forward loss ``[M]`` (the bonus) and, if asked, inverse loss ``[M]``."""
        phi = self.encoder(self.whitener(obs))
        phi_next = self.encoder(self.whitener(next_obs))
        forward = 0.5 * (self.forward_model(phi, actions) - phi_next).pow(2).sum(1)
        return forward, self.inverse.loss(phi, phi_next, actions) if inverse else None

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> Tensor:
        lead = check_batch(batch, "ICM")
        obs, next_obs = obs_pair(batch, lead, self.obs_shape)
        self.whitener.update(next_obs)
        forward, _ = self._losses(obs, next_obs, batch.actions, inverse=False)
        return forward.reshape(lead)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        lead = check_batch(batch, "ICM")
        obs, next_obs = obs_pair(batch, lead, self.obs_shape)
        actions = action_rows(batch.actions, lead)
        fwd_sum = inv_sum = total = 0.0
        count = 0
        for idx in minibatches(obs.shape[0], self.batch_size, obs.device):
            forward, inverse = self._losses(obs[idx], next_obs[idx], actions[idx])
            assert inverse is not None
            loss = (1.0 - self.beta) * inverse.mean() + self.beta * forward.mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            fwd_sum += float(forward.mean().detach())
            inv_sum += float(inverse.mean().detach())
            count += 1
        return {
            "icm_loss": total / count,
            "icm_forward_loss": fwd_sum / count,
            "icm_inverse_loss": inv_sum / count,
        }
