"""Observation and reward normalisation as modules (checkpointed and part of the acting path)."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.spaces import is_image_space
from rlkit.types import Obs
from rlkit.utils.running import RunningMeanStd

#: dict-observation keys that are flags or indices, never whitened: legal actions, the
#: multi-agent activity flag and agent ids.
UNNORMALIZED_KEYS = frozenset({"action_mask", "active", "agent_id"})


class ObsNormalizer(nn.Module):
    """Whitens non-image Box observations (and non-image keys of Dict ones) with running stats.

    Images pass through untouched (encoders scale them), as do the flag keys in
    :data:`UNNORMALIZED_KEYS`. ``clip`` bounds the result.
    """

    def __init__(self, observation_space: spaces.Space[Any], clip: float = 10.0) -> None:
        super().__init__()
        self.clip = float(clip)
        self.stats = nn.ModuleDict()
        self.is_dict = isinstance(observation_space, spaces.Dict)
        items = (
            observation_space.spaces.items()
            if isinstance(observation_space, spaces.Dict)
            else [("obs", observation_space)]
        )
        for key, space in items:
            if key in UNNORMALIZED_KEYS and self.is_dict:
                continue
            if isinstance(space, spaces.Box) and not is_image_space(space):
                self.stats[key] = RunningMeanStd(tuple(space.shape))

    @torch.no_grad()
    def update(self, obs: Obs) -> None:
        """Fold a batch of raw observations into the statistics."""
        for key, x in self._items(obs):
            if key in self.stats:
                self.stats[key].update(x)  # type: ignore[operator]

    def forward(self, obs: Obs) -> Obs:
        if isinstance(obs, dict):
            return {
                k: self.stats[k].normalize(v, self.clip) if k in self.stats else v  # type: ignore[operator]
                for k, v in obs.items()
            }
        if "obs" in self.stats:
            out: Tensor = self.stats["obs"].normalize(obs, self.clip)  # type: ignore[operator]
            return out
        return obs

    def _items(self, obs: Obs) -> list[tuple[str, Tensor]]:
        return list(obs.items()) if isinstance(obs, dict) else [("obs", obs)]


class RewardNormalizer(nn.Module):
    """Scales rewards by the running std of the discounted return (as SB3's VecNormalize)."""

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0) -> None:
        super().__init__()
        self.gamma = float(gamma)
        self.clip = float(clip)
        self.stats = RunningMeanStd(())
        self.register_buffer("returns", torch.zeros(num_envs, dtype=torch.float64))

    returns: Tensor

    @torch.no_grad()
    def forward(self, rewards: Tensor, dones: Tensor) -> Tensor:
        """Update with this step's rewards and return them scaled; ``dones`` end the return."""
        self.returns.mul_(self.gamma).add_(rewards.to(torch.float64))
        self.stats.update(self.returns)
        self.returns.mul_(1.0 - dones.to(torch.float64))
        scaled = rewards / torch.sqrt(self.stats.var + 1e-8).to(rewards.dtype)
        return scaled.clamp(-self.clip, self.clip)


class ValueNormalizer(nn.Module):
    """Running mean and std of value targets (MAPPO's ValueNorm, Yu et al. 2022): the critic
    predicts normalised values; :meth:`denormalize` maps them back to returns.

    The statistics are debiased exponential moving averages with decay ``beta`` (0.99999 as
    the MAPPO code), updated with each rollout's returns."""

    def __init__(self, beta: float = 0.99999, epsilon: float = 1e-5) -> None:
        super().__init__()
        self.beta = float(beta)
        self.epsilon = float(epsilon)
        self.register_buffer("running_mean", torch.zeros((), dtype=torch.float64))
        self.register_buffer("running_mean_sq", torch.zeros((), dtype=torch.float64))
        self.register_buffer("debiasing", torch.zeros((), dtype=torch.float64))

    running_mean: Tensor
    running_mean_sq: Tensor
    debiasing: Tensor

    def _stats(self) -> tuple[Tensor, Tensor]:
        weight = self.debiasing.clamp(min=self.epsilon)
        mean = self.running_mean / weight
        mean_sq = self.running_mean_sq / weight
        var = (mean_sq - mean**2).clamp(min=1e-2)
        return mean, var.sqrt()

    @torch.no_grad()
    def update(self, targets: Tensor) -> None:
        """Fold a batch of value targets into the statistics."""
        x = targets.detach().to(torch.float64).reshape(-1)
        if x.numel() == 0:
            return
        b = self.beta
        self.running_mean.mul_(b).add_(x.mean() * (1 - b))
        self.running_mean_sq.mul_(b).add_((x**2).mean() * (1 - b))
        self.debiasing.mul_(b).add_(1 - b)

    def normalize(self, values: Tensor) -> Tensor:
        """``(values - mean) / std`` in ``values``' dtype."""
        mean, std = self._stats()
        return (values - mean.to(values.dtype)) / std.to(values.dtype)

    def denormalize(self, values: Tensor) -> Tensor:
        """``values * std + mean`` in ``values``' dtype."""
        mean, std = self._stats()
        return values * std.to(values.dtype) + mean.to(values.dtype)
