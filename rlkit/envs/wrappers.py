"""Single-env observation wrappers."""

from __future__ import annotations

from typing import Any

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
