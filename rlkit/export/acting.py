"""The deterministic acting path of an agent as one traceable module."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.policies.base import Policy
from rlkit.utils.tensors import torch_dtype_for


class ActingPath(nn.Module):
    """``(normalise) -> encoder -> heads -> distribution mode -> post-processing``.

    Inputs are positional tensors: one for a Box observation, one per key (sorted) for a Dict
    observation, each in its storage dtype (uint8 images stay uint8, everything else float32).
    The output is the env-ready action batch (int64 for Discrete/MultiDiscrete, int8 for
    MultiBinary, float32 clipped to the bounds for Box). This is what exports trace.
    """

    def __init__(
        self,
        policy: Policy,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        obs_normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if policy.recurrent:
            raise TypeError("ActingPath: recurrent policies need their state as an input")
        self.policy = policy
        self.obs_normalizer = obs_normalizer
        self.observation_space = observation_space
        self.action_space = action_space
        self.keys: list[str] | None = (
            sorted(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else None
        )

    @property
    def input_names(self) -> list[str]:
        """Graph input names: ``obs``, or the Dict observation's keys."""
        return list(self.keys) if self.keys is not None else ["obs"]

    def input_spaces(self) -> list[spaces.Space[Any]]:
        """The space of each positional input."""
        space = self.observation_space
        if isinstance(space, spaces.Dict):
            return [space.spaces[k] for k in self.input_names]
        return [space]

    def forward(self, *inputs: Tensor) -> Tensor:
        obs: Tensor | dict[str, Tensor]
        obs = dict(zip(self.keys, inputs, strict=True)) if self.keys is not None else inputs[0]
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer(obs)
        actions, _ = self.policy.act(obs, deterministic=True)
        return actions

    def example_inputs(self, batch_size: int, seed: int = 0) -> tuple[Tensor, ...]:
        """Random valid observations as the positional inputs (see :func:`sample_observations`)."""
        rng = np.random.default_rng(seed)
        return tuple(
            torch.as_tensor(sample_observations(space, batch_size, rng))
            for space in self.input_spaces()
        )


def sample_observations(
    space: spaces.Space[Any], batch_size: int, rng: np.random.Generator
) -> np.ndarray:
    """A batch of valid observations of a Box space in its storage dtype.

    Bounded dimensions are drawn uniformly within their bounds, unbounded ones from a unit
    normal, uint8 images uniformly over their range.
    """
    if not isinstance(space, spaces.Box):
        raise TypeError(f"sample_observations: expected a Box space, got {space!r}")
    shape = (batch_size, *space.shape)
    dtype = torch_dtype_for(space)
    if dtype == torch.uint8:
        low = np.broadcast_to(space.low, space.shape).astype(np.int64)
        high = np.broadcast_to(space.high, space.shape).astype(np.int64)
        return rng.integers(low, high + 1, size=shape).astype(np.uint8)
    low = np.broadcast_to(space.low, space.shape).astype(np.float64)
    high = np.broadcast_to(space.high, space.shape).astype(np.float64)
    bounded = np.isfinite(low) & np.isfinite(high)
    low, high = np.where(bounded, low, 0.0), np.where(bounded, high, 1.0)
    uniform = low + (high - low) * rng.random(shape)
    return np.where(bounded, uniform, rng.standard_normal(shape)).astype(np.float32)
