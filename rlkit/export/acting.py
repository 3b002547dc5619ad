"""The deterministic acting path of an agent as one traceable module."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.backends.torch_private import assume_equal_sizes
from rlkit.export.metadata import ACTION_OUTPUT, EPISODE_START_INPUT, STATE_OUTPUT_SUFFIX
from rlkit.policies.base import Policy
from rlkit.policies.state import StateSpec
from rlkit.utils.tensors import torch_dtype_for

#: share of rows whose ``episode_start`` is 1 in :meth:`ActingPath.example_inputs`.
EXAMPLE_START_RATE = 0.25


class ActingPath(nn.Module):
    """``(normalise) -> encoder -> heads -> distribution mode -> post-processing``.

    Inputs are positional tensors: one for a Box observation, one per key (sorted) for a Dict
    observation, each in its storage dtype (uint8 images stay uint8, everything else float32).
    The output is the env-ready action batch (int64 for Discrete/MultiDiscrete, int8 for
    MultiBinary, float32 clipped to the bounds for Box). This is what exports trace.

    A recurrent policy's path also takes ``episode_start`` (float32 ``[B]``, 1 where an
    episode begins: that row's state is reset first) and one input per state tensor (named
    and laid out by the policy's :meth:`~rlkit.policies.base.Policy.state_spec`, batch-first),
    and returns ``(action, *next_state)`` (outputs ``action``, ``<name>_out``).
    """

    def __init__(
        self,
        policy: Policy,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        obs_normalizer: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.policy = policy
        self.obs_normalizer = obs_normalizer
        self.observation_space = observation_space
        self.action_space = action_space
        self.keys: list[str] | None = (
            sorted(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else None
        )
        #: the state tensors a recurrent policy takes and returns (empty when feed-forward).
        self.state_specs: tuple[StateSpec, ...] = (
            tuple(policy.state_spec()) if policy.recurrent else ()
        )
        name = getattr(type(policy), "registry_id", None) or type(policy).__name__
        if policy.recurrent and not self.state_specs:
            raise TypeError(
                f"ActingPath: the recurrent policy {name} declares no state tensors "
                "(state_spec() is empty)"
            )
        names = [*self.input_names, *self.output_names]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            raise ValueError(
                f"ActingPath: graph input/output names {clashes} are used twice (observation "
                f"keys must differ from {EPISODE_START_INPUT!r} and the state names)"
            )

    @property
    def recurrent(self) -> bool:
        """Whether the path takes and returns a recurrent state."""
        return bool(self.state_specs)

    @property
    def observation_names(self) -> list[str]:
        """The observation inputs' names: ``obs``, or the Dict observation's keys."""
        return list(self.keys) if self.keys is not None else ["obs"]

    @property
    def state_names(self) -> list[str]:
        """The state inputs' names (empty when feed-forward)."""
        return [s.name for s in self.state_specs]

    @property
    def input_names(self) -> list[str]:
        """Graph input names: the observations' (``obs`` or the Dict keys), then for a
        recurrent policy ``episode_start`` and the state tensors' names."""
        if not self.recurrent:
            return self.observation_names
        return [*self.observation_names, EPISODE_START_INPUT, *self.state_names]

    @property
    def output_names(self) -> list[str]:
        """Graph output names: ``action``, then for a recurrent policy ``<state name>_out``."""
        return [ACTION_OUTPUT, *(n + STATE_OUTPUT_SUFFIX for n in self.state_names)]

    def input_spaces(self) -> list[spaces.Space[Any]]:
        """The space of each observation input."""
        space = self.observation_space
        if isinstance(space, spaces.Dict):
            return [space.spaces[k] for k in self.observation_names]
        return [space]

    def forward(self, *inputs: Tensor) -> Tensor | tuple[Tensor, ...]:
        n_obs = len(self.observation_names)
        if self.recurrent and len(inputs) != len(self.input_names):
            raise TypeError(
                f"ActingPath: got {len(inputs)} inputs, expected {len(self.input_names)} "
                f"({', '.join(self.input_names)})"
            )
        obs: Tensor | dict[str, Tensor]
        observations = inputs[:n_obs] if self.recurrent else inputs
        obs = (
            dict(zip(self.observation_names, observations, strict=True))
            if self.keys is not None
            else inputs[0]
        )
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer(obs)
        if not self.recurrent:
            actions, _ = self.policy.act(obs, deterministic=True)
            return actions
        episode_start, state = inputs[n_obs], tuple(inputs[n_obs + 1 :])
        rows = inputs[0].shape[0]
        for x in inputs[1:]:  # one batch axis: lets torch.export see B // B == 1 for any B
            assume_equal_sizes(
                x.shape[0], rows, "ActingPath: every input must have the observations' batch size"
            )
        actions, next_state = self.policy.act(
            obs, deterministic=True, state=state, episode_start=episode_start
        )
        assert isinstance(next_state, tuple)
        return (actions, *next_state)

    def example_observations(self, batch_size: int, seed: int = 0) -> tuple[Tensor, ...]:
        """Random valid observations as the observation inputs (see
        :func:`sample_observations`)."""
        rng = np.random.default_rng(seed)
        return tuple(
            torch.as_tensor(sample_observations(space, batch_size, rng))
            for space in self.input_spaces()
        )

    def initial_state(self, batch_size: int) -> tuple[Tensor, ...]:
        """The state inputs of ``batch_size`` fresh episodes (zeros; empty when feed-forward)."""
        return tuple(spec.zeros(batch_size) for spec in self.state_specs)

    def example_inputs(self, batch_size: int, seed: int = 0) -> tuple[Tensor, ...]:
        """Random valid inputs: the observations (see :func:`sample_observations`) and, for a
        recurrent policy, random episode starts and a random state (see
        :func:`sample_state`)."""
        observations = self.example_observations(batch_size, seed)
        if not self.recurrent:
            return observations
        rng = np.random.default_rng([seed, 1])
        starts = (rng.random(batch_size) < EXAMPLE_START_RATE).astype(np.float32)
        state = sample_state(self.state_specs, batch_size, rng)
        return (*observations, torch.as_tensor(starts), *state)


def sample_state(
    specs: tuple[StateSpec, ...], batch_size: int, rng: np.random.Generator
) -> tuple[Tensor, ...]:
    """A random state laid out by ``specs``: floating tensors from a unit normal, booleans and
    integers 0 or 1."""
    out = []
    for spec in specs:
        shape = (batch_size, *spec.shape)
        if spec.dtype.is_floating_point:
            value = torch.as_tensor(rng.standard_normal(shape)).to(spec.dtype)
        else:
            value = torch.as_tensor(rng.integers(0, 2, size=shape)).to(spec.dtype)
        out.append(value)
    return tuple(out)


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
