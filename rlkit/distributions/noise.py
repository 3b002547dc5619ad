"""Exploration noise for deterministic actors (DDPG, TD3) as distribution families.

The head output is the actor's action, already inside the Box. ``sample()`` adds noise and clips
to the bounds; ``mode()`` is the action itself. Noise scales are in units of the Box half-width
``(high - low) / 2`` (TD3's ``max_action * expl_noise``), so ``sigma`` is the same number for any
bounds and equals the absolute scale on ``[-1, 1]``. Both families need finite bounds.

These are not densities: clipping puts point masses on the bounds, so ``log_prob``/``entropy``
raise ``TypeError`` (DDPG/TD3 losses never need them).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from rlkit.distributions.base import DISTRIBUTIONS, ActionDistribution, Distribution
from rlkit.distributions.squashed import _box_bounds
from rlkit.spaces import check_space


def _check_nonneg(name: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class _BoundedNoiseFamily(Distribution):
    """Shared Box checks and buffers: ``low``, ``high`` and the half-width ``scale``."""

    def _setup_box(self, action_space: spaces.Space[Any], owner: str) -> None:
        check_space(action_space, (spaces.Box,), "action space", owner)
        assert isinstance(action_space, spaces.Box)
        low, high = _box_bounds(action_space, owner, require_finite=True)
        self.space_shape = tuple(action_space.shape)
        self.dim = int(np.prod(action_space.shape))
        self.register_buffer("low", low)
        self.register_buffer("high", high)
        self.register_buffer("scale", (high - low) / 2)
        self.low: Tensor
        self.high: Tensor
        self.scale: Tensor

    @property
    def num_params(self) -> int:
        return self.dim

    @property
    def action_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def postprocess(self, actions: Tensor) -> Tensor:
        actions = torch.maximum(torch.minimum(actions, self.high), self.low)
        return actions.reshape(actions.shape[0], *self.space_shape)


class _NoNoiseDensity(ActionDistribution):
    def log_prob(self, actions: Tensor) -> Tensor:
        raise TypeError(
            f"{type(self).__name__} is exploration noise for a deterministic actor; it has no "
            "log_prob (clipping to the bounds leaves no density)"
        )

    def entropy(self) -> Tensor:
        raise TypeError(f"{type(self).__name__} is exploration noise; it has no entropy")


# --------------------------------------------------------------------------- Normal noise


class NormalNoiseDist(_NoNoiseDensity):
    """``clip(action + clip(sigma * scale * N(0, 1), -c, c), low, high)`` per row."""

    def __init__(
        self,
        action: Tensor,
        sigma: float,
        scale: Tensor,
        low: Tensor,
        high: Tensor,
        noise_clip: float | None = None,
    ) -> None:
        self.action = action
        self.sigma = sigma
        self.scale = scale
        self.low = low
        self.high = high
        self.noise_clip = noise_clip

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            noise = torch.randn(
                self.action.shape,
                generator=generator,
                device=self.action.device,
                dtype=self.action.dtype,
            )
            noise = noise * self.sigma
            if self.noise_clip is not None:
                noise = noise.clamp(-self.noise_clip, self.noise_clip)
            out = self.action + noise * self.scale
            return torch.maximum(torch.minimum(out, self.high), self.low)

    def mode(self) -> Tensor:
        return self.action


@DISTRIBUTIONS.register("normal_noise")
class NormalNoise(_BoundedNoiseFamily):
    """Gaussian action noise (TD3, Fujimoto et al. 2018): exploration and target smoothing.

    ``sigma`` (TD3: 0.1 for exploration, 0.2 for target smoothing) can be overridden per call,
    ``family(action, sigma=schedule(step))``; ``noise_clip`` (TD3: 0.5 for target smoothing)
    clips the normalised noise before it is added. Stateless.
    """

    def __init__(
        self,
        action_space: spaces.Space[Any],
        sigma: float = 0.1,
        noise_clip: float | None = None,
    ) -> None:
        super().__init__(action_space)
        self._setup_box(action_space, "NormalNoise")
        self.sigma = _check_nonneg("sigma", sigma)
        self.noise_clip = None if noise_clip is None else _check_nonneg("noise_clip", noise_clip)

    def forward(self, params: Tensor, sigma: float | None = None) -> NormalNoiseDist:
        sigma = self.sigma if sigma is None else _check_nonneg("sigma", sigma)
        return NormalNoiseDist(params, sigma, self.scale, self.low, self.high, self.noise_clip)

    def __call__(self, params: Tensor, sigma: float | None = None) -> NormalNoiseDist:
        return self.forward(params, sigma)


# --------------------------------------------------------------------------- Ornstein-Uhlenbeck


class OUNoiseDist(_NoNoiseDensity):
    """``clip(action + noise * scale, low, high)`` for a fixed, already drawn OU ``noise``.

    The noise is a snapshot taken when the family was called, so ``sample()`` is deterministic,
    ignores ``generator`` and never advances the process (that is
    :meth:`OrnsteinUhlenbeckNoise.step`).
    """

    def __init__(
        self, action: Tensor, noise: Tensor, scale: Tensor, low: Tensor, high: Tensor
    ) -> None:
        self.action = action
        self.noise = noise
        self.scale = scale
        self.low = low
        self.high = high

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        with torch.no_grad():
            out = self.action + self.noise * self.scale
            return torch.maximum(torch.minimum(out, self.high), self.low)

    def mode(self) -> Tensor:
        return self.action


@DISTRIBUTIONS.register("ou_noise")
class OrnsteinUhlenbeckNoise(_BoundedNoiseFamily):
    """Temporally correlated Ornstein-Uhlenbeck noise (Uhlenbeck & Ornstein 1930; DDPG, Lillicrap
    et al. 2016, theta=0.15, sigma=0.2).

    The process state ``x`` is an explicit buffer ``state`` of shape ``[num_envs, dim]`` (not
    saved in checkpoints), starting at 0. Only two methods change it, and the agent calls them:

    * :meth:`step` advances every env one Euler-Maruyama tick,
      ``x += theta * (mu - x) * dt + sigma * sqrt(dt) * N(0, 1)``; ``sigma`` may be passed per call.
    * :meth:`reset` zeroes the rows of the envs whose episode ended.

    Calling the family, ``family(action)``, snapshots the current state; the returned
    distribution's ``sample()`` adds it (times the Box half-width) and clips. The discrete
    process's stationary variance is ``sigma^2 / (theta * (2 - theta * dt))``, which tends to
    the continuous-time ``sigma^2 / (2 theta)`` as ``dt -> 0``.

    Typical loop: ``noise.step(); a = noise(actor(obs)).sample(); ...; noise.reset(done)``.
    """

    def __init__(
        self,
        action_space: spaces.Space[Any],
        num_envs: int = 1,
        theta: float = 0.15,
        sigma: float = 0.2,
        dt: float = 1e-2,
        mu: float = 0.0,
    ) -> None:
        super().__init__(action_space)
        self._setup_box(action_space, "OrnsteinUhlenbeckNoise")
        if not (isinstance(num_envs, int) and num_envs >= 1):
            raise ValueError(
                f"OrnsteinUhlenbeckNoise: num_envs must be an int >= 1, got {num_envs!r}"
            )
        self.num_envs = num_envs
        self.theta = _check_nonneg("theta", theta)
        self.sigma = _check_nonneg("sigma", sigma)
        self.dt = _check_nonneg("dt", dt)
        if self.dt == 0:
            raise ValueError("OrnsteinUhlenbeckNoise: dt must be > 0")
        if not math.isfinite(mu):
            raise ValueError(f"OrnsteinUhlenbeckNoise: mu must be finite, got {mu!r}")
        self.mu = float(mu)
        self.register_buffer("state", torch.zeros(num_envs, self.dim), persistent=False)
        self.state: Tensor

    @torch.no_grad()
    def step(self, generator: torch.Generator | None = None, sigma: float | None = None) -> Tensor:
        """Advance the process one tick for all envs (in place); return a copy of the new state."""
        sigma = self.sigma if sigma is None else _check_nonneg("sigma", sigma)
        x = self.state
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x.add_(self.theta * (self.mu - x) * self.dt + sigma * math.sqrt(self.dt) * noise)
        return x.clone()

    @torch.no_grad()
    def reset(self, env_mask: Tensor | np.ndarray | None = None) -> None:
        """Zero the state of the envs where ``env_mask`` ([num_envs] bool) is true; all if None."""
        if env_mask is None:
            self.state.zero_()
            return
        mask = torch.as_tensor(env_mask, device=self.state.device)
        if mask.shape != (self.num_envs,):
            raise ValueError(
                f"reset: env_mask must have shape ({self.num_envs},), got {tuple(mask.shape)}"
            )
        keep = (~mask.bool()).to(self.state.dtype).unsqueeze(-1)
        self.state.mul_(keep)

    def forward(self, params: Tensor, noise: Tensor | None = None) -> OUNoiseDist:
        """Wrap the actor's ``[num_envs, dim]`` actions with the current state (or ``noise``)."""
        if noise is None:
            if params.shape[0] != self.num_envs:
                raise ValueError(
                    f"OrnsteinUhlenbeckNoise holds state for {self.num_envs} envs but got "
                    f"{params.shape[0]} actions; pass noise=... explicitly for other batches"
                )
            noise = self.state.clone()
        return OUNoiseDist(params, noise, self.scale, self.low, self.high)

    def __call__(self, params: Tensor, noise: Tensor | None = None) -> OUNoiseDist:
        return self.forward(params, noise)
