"""Random Network Distillation (Burda et al. 2018)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.config.rules import Range, Rule
from rlkit.encoders.cnn import check_image_space, conv_output_dim
from rlkit.rewards.base import INTRINSIC_REWARDS, IntrinsicReward, RewardNorm, TransitionBatch
from rlkit.spaces import check_space, flat_dim, is_image_space
from rlkit.types import Obs
from rlkit.utils.running import RunningMeanStd


def _rnd_network(
    space: spaces.Space[Any], latent_dim: int, hidden: int, predictor: bool
) -> nn.Module:
    """The paper's conv net for images (leaky ReLU), an MLP for vectors."""
    if is_image_space(space):
        c, h, w = check_image_space(space, "RND")
        convs = nn.Sequential(
            nn.Conv2d(c, 32, 8, stride=4),
            nn.LeakyReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.LeakyReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.LeakyReLU(),
            nn.Flatten(),
        )
        n = conv_output_dim(convs, (c, h, w))
        if predictor:
            return nn.Sequential(
                convs,
                nn.Linear(n, 512),
                nn.ReLU(),
                nn.Linear(512, 512),
                nn.ReLU(),
                nn.Linear(512, latent_dim),
            )
        return nn.Sequential(convs, nn.Linear(n, latent_dim))
    layers: list[nn.Module] = [
        nn.Flatten(),
        nn.Linear(flat_dim(space), hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
    ]
    if predictor:
        layers += [nn.Linear(hidden, hidden), nn.ReLU()]
    layers.append(nn.Linear(hidden, latent_dim))
    return nn.Sequential(*layers)


@INTRINSIC_REWARDS.register("rnd")
class RND(IntrinsicReward):
    """Bonus = squared error of a trained predictor against a fixed random target network.

    Observations are whitened by running statistics and clipped to ``[-5, 5]`` (the paper's
    setting); the bonus is computed on the next observation of each transition; the predictor
    trains on a random ``update_proportion`` of each batch.
    """

    argument_rules: ClassVar[dict[str, Rule]] = {
        "update_proportion": Range(0, 1, low_open=True),
    }

    def __init__(
        self,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        coef: float = 1.0,
        coef_decay: float = 0.0,
        reward_norm: RewardNorm = "rms",
        obs_norm: bool = True,
        latent_dim: int = 128,
        hidden_dim: int = 256,
        lr: float = 1e-4,
        batch_size: int = 256,
        update_proportion: float = 0.25,
    ) -> None:
        check_space(observation_space, (spaces.Box,), "observation space", "RND")
        super().__init__(observation_space, action_space, coef, coef_decay, reward_norm)
        self.obs_norm = obs_norm
        self.batch_size = int(batch_size)
        self.update_proportion = float(update_proportion)
        self.obs_shape = tuple(observation_space.shape or ())
        self.obs_stats = RunningMeanStd(self.obs_shape)
        self.target = _rnd_network(observation_space, latent_dim, hidden_dim, predictor=False)
        self.predictor = _rnd_network(observation_space, latent_dim, hidden_dim, predictor=True)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=lr)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"predictor": self.optimizer}

    def _prepare(self, obs: Obs) -> Tensor:
        assert isinstance(obs, Tensor), "RND expects Box observations"
        x = obs.reshape(-1, *self.obs_shape).float()
        if self.obs_norm:
            x = self.obs_stats.normalize(x, clip=5.0)
        return x

    def _errors(self, x: Tensor) -> Tensor:
        return (self.predictor(x) - self.target(x)).pow(2).mean(-1)

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> Tensor:
        assert isinstance(batch.next_obs, Tensor)
        if self.obs_norm:
            self.obs_stats.update(batch.next_obs.reshape(-1, *self.obs_shape))
        return self._errors(self._prepare(batch.next_obs)).reshape(batch.dones.shape)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        x = self._prepare(batch.next_obs)
        perm = torch.randperm(x.shape[0], device=x.device)
        losses = []
        for start in range(0, x.shape[0], self.batch_size):
            idx = perm[start : start + self.batch_size]
            err = self._errors(x[idx])
            keep = (torch.rand(err.shape, device=err.device) < self.update_proportion).float()
            loss = (err * keep).sum() / keep.sum().clamp(min=1.0)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
        return {"rnd_loss": sum(losses) / max(len(losses), 1)}
