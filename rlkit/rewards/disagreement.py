"""Self-Supervised Exploration via Disagreement (Pathak, Gandhi & Gupta 2019; authors' code
``pathak22/exploration-by-disagreement``)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Range, Rule, count
from rlkit.rewards.base import INTRINSIC_REWARDS, IntrinsicReward, RewardNorm, TransitionBatch
from rlkit.rewards.common import (
    ActionCoder,
    ObsWhitener,
    action_rows,
    check_batch,
    check_obs_space,
    check_positive,
    embedding_net,
    minibatches,
    obs_pair,
    rows,
)
from rlkit.rewards.dynamics import ForwardModel


@INTRINSIC_REWARDS.register("disagreement")
class Disagreement(IntrinsicReward):
    """Bonus = variance across an ensemble of forward models, averaged over feature dims.

    Features ``phi`` come from a fixed random encoder (the random-feature setting the paper
    builds on; observations whitened by running statistics, as the authors' ``ob_mean`` /
    ``ob_std``). ``ensemble_size`` forward models (default 5) predict ``phi(s_t+1)`` from
    ``[phi(s_t), a_t]`` through residual blocks that see the action at every layer; each is
    trained on squared error to the (fixed) target features, with its own random
    ``keep_prob`` (0.8) share of every minibatch (the code's dropout on per-sample losses) so
    the members differ. The bonus ``mean_d Var_m f_m(phi(s), a)_d`` is non-negative and does
    not need the next observation, so it is immune to stochastic ("noisy TV") transitions.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "ensemble_size": count(2, integer=True),
        "num_blocks": count(integer=True),
        "keep_prob": Range(0, 1, low_open=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        coef: float = 1.0,
        coef_decay: float = 0.0,
        reward_norm: RewardNorm = "rms",
        obs_norm: bool = True,
        feature_dim: int = 64,
        hidden_dim: int = 128,
        ensemble_size: int = 5,
        num_blocks: int = 2,
        keep_prob: float = 0.8,
        lr: float = 1e-3,
        batch_size: int = 256,
    ) -> None:
        space = check_obs_space(observation_space, "Disagreement")
        super().__init__(observation_space, action_space, coef, coef_decay, reward_norm)
        check_positive("Disagreement", lr=lr, batch_size=batch_size)
        if int(ensemble_size) < 2:
            raise ValueError(f"Disagreement: ensemble_size must be >= 2, got {ensemble_size}")
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"Disagreement: keep_prob must be in (0, 1], got {keep_prob}")
        self.keep_prob = float(keep_prob)
        self.batch_size = int(batch_size)
        self.obs_shape = tuple(space.shape or ())
        self.actions = ActionCoder(action_space, "Disagreement")
        self.whitener = ObsWhitener(space, obs_norm)
        self.encoder = embedding_net(self.whitener.encoder_space(), feature_dim, hidden_dim)
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        dim = int(self.encoder.feature_dim)  # type: ignore[arg-type]
        self.models = nn.ModuleList(
            ForwardModel(dim, self.actions, hidden_dim, num_blocks)
            for _ in range(int(ensemble_size))
        )
        self.optimizer = torch.optim.Adam(self.models.parameters(), lr=lr)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"ensemble": self.optimizer}

    def _features(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.encoder(self.whitener(x))

    def predictions(self, obs: Tensor, actions: Tensor) -> Tensor:
        """Each member's predicted next features ``[ensemble, M, D]``."""
        phi = self._features(obs)
        return torch.stack([model(phi, actions) for model in self.models])

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> Tensor:
        lead = check_batch(batch, "Disagreement")
        obs = rows(batch.obs, lead, self.obs_shape)
        self.whitener.update(rows(batch.next_obs, lead, self.obs_shape))
        preds = self.predictions(obs, action_rows(batch.actions, lead))
        return preds.var(0, unbiased=False).mean(1).reshape(lead)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        lead = check_batch(batch, "Disagreement")
        obs, next_obs = obs_pair(batch, lead, self.obs_shape)
        actions = action_rows(batch.actions, lead)
        total, count = 0.0, 0
        for idx in minibatches(obs.shape[0], self.batch_size, obs.device):
            target = self._features(next_obs[idx])
            errors = (self.predictions(obs[idx], actions[idx]) - target).pow(2).mean(2)  # [E, m]
            keep = (torch.rand(errors.shape, device=errors.device) < self.keep_prob).float()
            loss = ((errors * keep).sum(1) / keep.sum(1).clamp(min=1.0)).sum()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(errors.mean().detach())
            count += 1
        return {"disagreement_forward_loss": total / count}
