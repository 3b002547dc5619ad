"""PixelReach: a small, fast pixel task for image-based agents and tests.

Registered with gymnasium as ``rlkit/PixelReach-v0`` when this module is imported.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ENV_ID = "rlkit/PixelReach-v0"

#: (row, col) moves of the actions: up, down, left, right.
_MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.int64)


class PixelReach(gym.Env[np.ndarray, np.int64]):
    """Move a red dot onto a green target on a ``grid x grid`` board drawn as a uint8
    ``(3, grid * cell, grid * cell)`` frame (default 5 x 8 = 40 pixels).

    Actions: ``Discrete(4)`` (up, down, left, right; moves into a wall do nothing). Reward
    ``1`` on reaching the target (the episode terminates), ``0`` otherwise; episodes are
    truncated after ``max_steps`` (default 20). Start and target cells are drawn uniformly
    (distinct), so the policy must read both positions from the pixels. A uniformly random
    policy reaches the target in about a third of the episodes; an optimal one always, in at
    most ``2 * (grid - 1)`` steps.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}

    def __init__(self, grid: int = 5, cell: int = 8, max_steps: int = 20) -> None:
        if grid < 2 or cell < 2 or max_steps < 1:
            raise ValueError(
                f"PixelReach: need grid >= 2, cell >= 2, max_steps >= 1; got {grid}, {cell}, "
                f"{max_steps}"
            )
        self.grid, self.cell, self.max_steps = int(grid), int(cell), int(max_steps)
        size = self.grid * self.cell
        self.observation_space = spaces.Box(0, 255, shape=(3, size, size), dtype=np.uint8)
        self.action_space = spaces.Discrete(4)
        self.render_mode = "rgb_array"
        self._agent = np.zeros(2, dtype=np.int64)
        self._target = np.zeros(2, dtype=np.int64)
        self._t = 0

    def _frame(self) -> np.ndarray:
        size, c = self.grid * self.cell, self.cell
        frame = np.full((3, size, size), 30, dtype=np.uint8)
        m = max(1, c // 8)  # margin inside the cell
        for pos, channel in ((self._target, 1), (self._agent, 0)):
            r, col = int(pos[0]) * c, int(pos[1]) * c
            frame[:, r + m : r + c - m, col + m : col + c - m] = 0
            frame[channel, r + m : r + c - m, col + m : col + c - m] = 255
        return frame

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        cells = self.np_random.choice(self.grid * self.grid, size=2, replace=False)
        self._agent = np.array(divmod(int(cells[0]), self.grid), dtype=np.int64)
        self._target = np.array(divmod(int(cells[1]), self.grid), dtype=np.int64)
        self._t = 0
        return self._frame(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not 0 <= a < 4:
            raise ValueError(f"PixelReach: action must be in [0, 4), got {action!r}")
        self._agent = np.clip(self._agent + _MOVES[a], 0, self.grid - 1)
        self._t += 1
        reached = bool((self._agent == self._target).all())
        truncated = not reached and self._t >= self.max_steps
        return self._frame(), float(reached), reached, truncated, {}

    def render(self) -> np.ndarray:
        """The current frame as ``(H, W, 3)`` RGB."""
        return np.ascontiguousarray(self._frame().transpose(1, 2, 0))


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="rlkit.envs.pixel:PixelReach")

__all__ = ["ENV_ID", "PixelReach"]
