"""Single-env wrappers rlkit's env families use (also usable alone)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import ObservationWrapper, spaces
from gymnasium.core import Env


class ChannelFirst(ObservationWrapper[Any, Any, Any]):
    """Transpose ``(H, W, C)`` image observations to the ``(C, H, W)`` layout encoders expect."""

    def __init__(self, env: Env[Any, Any]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Box) or len(space.shape) != 3:
            raise TypeError(f"ChannelFirst needs a 3-d Box observation space, got {space!r}")
        self.observation_space = spaces.Box(
            low=np.transpose(space.low, (2, 0, 1)),
            high=np.transpose(space.high, (2, 0, 1)),
            dtype=space.dtype,
        )

    def observation(self, observation: Any) -> Any:
        return np.ascontiguousarray(np.transpose(observation, (2, 0, 1)))


class Float32Action(gym.ActionWrapper[Any, Any, Any]):
    """A float64 ``Box`` action space (dm_control's) declared as float32, the dtype policies
    produce; actions are handed to the env as float64."""

    def __init__(self, env: Env[Any, Any]) -> None:
        super().__init__(env)
        space = env.action_space
        if isinstance(space, spaces.Box) and space.dtype == np.float64:
            self.action_space = spaces.Box(
                low=space.low.astype(np.float32),
                high=space.high.astype(np.float32),
                dtype=np.float32,
            )

    def action(self, action: Any) -> Any:
        return np.asarray(action, dtype=self.env.action_space.dtype)


class ActionRepeat(gym.Wrapper[Any, Any, Any, Any]):
    """Repeat each action ``repeat`` times, summing the rewards and stopping at an episode end
    (DMC's "action repeat": DrQ-v2 uses 2, PlaNet/Dreamer 2-8)."""

    def __init__(self, env: Env[Any, Any], repeat: int = 2) -> None:
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
            raise ValueError(f"ActionRepeat: repeat must be an integer >= 1, got {repeat!r}")
        super().__init__(env)
        self.repeat = repeat

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class Float32Observation(ObservationWrapper[Any, Any, Any]):
    """A float64 ``Box`` observation (MuJoCo's, dm_control's) as float32, the dtype networks
    compute in (bounds cast without gymnasium's precision warning)."""

    def __init__(self, env: Env[Any, Any]) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, spaces.Box):
            raise TypeError(f"Float32Observation needs a Box observation space, got {space!r}")
        self.observation_space = spaces.Box(
            low=space.low.astype(np.float32), high=space.high.astype(np.float32), dtype=np.float32
        )

    def observation(self, observation: Any) -> Any:
        return np.asarray(observation, dtype=np.float32)
