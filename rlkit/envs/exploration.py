"""Exploration testbeds: small sparse-reward tasks where undirected exploration fails.

Registered with gymnasium when this module is imported:

- ``rlkit/SparseGridMaze-v0``: a ``size x size`` grid (optionally four rooms joined by one-cell
  doorways) with a single reward in the corner farthest from the start.
- ``rlkit/DeepChain-v0``: a chain of ``length`` states where one hidden action per state moves
  on and the other sends the agent back to the start (a "combination lock"); the reward sits
  at the end.

Both are pure NumPy (a step costs microseconds), observe vectors (one-hot by default), and
keep ``visit_counts``, the visits per state since the env was made, so experiments can
measure how much of the state space an agent covered
(``vec_env.unwrapped.get_attr("visit_counts")``).
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

GRID_ID = "rlkit/SparseGridMaze-v0"
CHAIN_ID = "rlkit/DeepChain-v0"

ObsType = Literal["onehot", "coords"]

#: (row, col) moves of the actions: up, down, left, right.
_MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.int64)


def _check_obs_type(obs_type: str, owner: str) -> None:
    if obs_type not in ("onehot", "coords"):
        raise ValueError(f"{owner}: obs_type must be 'onehot' or 'coords', got {obs_type!r}")


class SparseGridMaze(gym.Env[np.ndarray, np.int64]):
    """Walk from the top-left cell to the bottom-right one; the only reward is there.

    Actions: ``Discrete(4)`` (up, down, left, right; moves into a wall or the border do
    nothing). Reward ``1`` on reaching the goal (the episode terminates), ``0`` otherwise;
    episodes are truncated after ``max_steps`` (default ``4 * size``). With ``rooms=True`` the
    grid is split into four rooms by a cross of walls with one doorway in each wall segment,
    so the goal room is two doorways away from the start.

    Observations: ``obs_type="onehot"`` (default) is a float32 one-hot vector of the agent's
    cell (``size * size`` entries, so every cell is equally far from every other one);
    ``"coords"`` is ``(row, col) / (size - 1)`` in ``[0, 1]^2``.

    A uniformly random policy stays near the start: on the default 10 x 10 open grid it
    reaches the goal in well under 1% of its 40-step episodes, while the shortest path takes
    18 steps.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}

    def __init__(
        self,
        size: int = 10,
        max_steps: int | None = None,
        rooms: bool = False,
        obs_type: ObsType = "onehot",
    ) -> None:
        if int(size) < 2:
            raise ValueError(f"SparseGridMaze: size must be >= 2, got {size}")
        if rooms and int(size) < 5:
            raise ValueError(f"SparseGridMaze: rooms=True needs size >= 5, got {size}")
        if max_steps is not None and int(max_steps) < 1:
            raise ValueError(f"SparseGridMaze: max_steps must be >= 1, got {max_steps}")
        _check_obs_type(obs_type, "SparseGridMaze")
        self.size = int(size)
        self.max_steps = int(max_steps) if max_steps is not None else 4 * self.size
        self.rooms = bool(rooms)
        self.obs_type = obs_type
        self.walls = self._make_walls()
        self.start = np.array([0, 0], dtype=np.int64)
        self.goal = np.array([self.size - 1, self.size - 1], dtype=np.int64)
        if obs_type == "onehot":
            self.observation_space = spaces.Box(0.0, 1.0, (self.size * self.size,), np.float32)
        else:
            self.observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(4)
        self.render_mode = "rgb_array"
        #: visits per cell (row-major) since the env was made, resets included.
        self.visit_counts = np.zeros(self.size * self.size, dtype=np.int64)
        self._pos = self.start.copy()
        self._t = 0

    def _make_walls(self) -> np.ndarray:
        walls = np.zeros((self.size, self.size), dtype=bool)
        if self.rooms:
            mid = self.size // 2
            walls[mid, :] = True
            walls[:, mid] = True
            # one doorway in each of the four wall segments
            for r, c in ((mid, mid // 2), (mid, (mid + self.size) // 2)):
                walls[r, c] = False
            for r, c in ((mid // 2, mid), ((mid + self.size) // 2, mid)):
                walls[r, c] = False
        return walls

    @property
    def num_states(self) -> int:
        """Cells the agent can stand on."""
        return int((~self.walls).sum())

    def cell_index(self, pos: np.ndarray) -> int:
        """Row-major index of a ``(row, col)`` cell."""
        return int(pos[0]) * self.size + int(pos[1])

    def _obs(self) -> np.ndarray:
        if self.obs_type == "onehot":
            out = np.zeros(self.size * self.size, dtype=np.float32)
            out[self.cell_index(self._pos)] = 1.0
            return out
        return (self._pos / (self.size - 1)).astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._pos = self.start.copy()
        self._t = 0
        self.visit_counts[self.cell_index(self._pos)] += 1
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not 0 <= a < 4:
            raise ValueError(f"SparseGridMaze: action must be in [0, 4), got {action!r}")
        new = np.clip(self._pos + _MOVES[a], 0, self.size - 1)
        if not self.walls[new[0], new[1]]:
            self._pos = new
        self._t += 1
        self.visit_counts[self.cell_index(self._pos)] += 1
        reached = bool((self._pos == self.goal).all())
        truncated = not reached and self._t >= self.max_steps
        return self._obs(), float(reached), reached, truncated, {}

    def render(self) -> np.ndarray:
        """The grid as ``(size * 8, size * 8, 3)`` RGB: walls grey, goal green, agent red."""
        image = np.full((self.size, self.size, 3), 255, dtype=np.uint8)
        image[self.walls] = (96, 96, 96)
        image[self.goal[0], self.goal[1]] = (0, 200, 0)
        image[self._pos[0], self._pos[1]] = (220, 0, 0)
        return np.repeat(np.repeat(image, 8, axis=0), 8, axis=1)


class DeepChain(gym.Env[np.ndarray, np.int64]):
    """A combination lock: ``length`` states in a row, start at state 0, reward at the end.

    Actions: ``Discrete(2)``. In each state one of the two actions (drawn once from
    ``lock_seed``, so every copy of the env shares the same lock) moves one state right; the
    other sends the agent back to state 0. Reaching state ``length - 1`` gives reward ``1`` and
    terminates; episodes are truncated after ``max_steps`` (default ``2 * length``). A random
    policy opens the lock with probability about ``2 ** -(length - 1)`` per attempt, so only
    directed exploration finds the reward.

    Observations: a float32 one-hot vector of the state (``obs_type="onehot"``, default) or its
    position ``state / (length - 1)`` as one number (``"coords"``).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        length: int = 10,
        max_steps: int | None = None,
        lock_seed: int = 0,
        obs_type: ObsType = "onehot",
    ) -> None:
        if int(length) < 2:
            raise ValueError(f"DeepChain: length must be >= 2, got {length}")
        if max_steps is not None and int(max_steps) < 1:
            raise ValueError(f"DeepChain: max_steps must be >= 1, got {max_steps}")
        _check_obs_type(obs_type, "DeepChain")
        self.length = int(length)
        self.max_steps = int(max_steps) if max_steps is not None else 2 * self.length
        self.obs_type = obs_type
        #: the action that moves right in each state.
        self.lock = np.random.default_rng(lock_seed).integers(0, 2, size=self.length)
        size = self.length if obs_type == "onehot" else 1
        self.observation_space = spaces.Box(0.0, 1.0, (size,), np.float32)
        self.action_space = spaces.Discrete(2)
        #: visits per state since the env was made, resets included.
        self.visit_counts = np.zeros(self.length, dtype=np.int64)
        self._state = 0
        self._t = 0

    @property
    def num_states(self) -> int:
        return self.length

    def _obs(self) -> np.ndarray:
        if self.obs_type == "onehot":
            out = np.zeros(self.length, dtype=np.float32)
            out[self._state] = 1.0
            return out
        return np.array([self._state / (self.length - 1)], dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._state = 0
        self._t = 0
        self.visit_counts[0] += 1
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not 0 <= a < 2:
            raise ValueError(f"DeepChain: action must be 0 or 1, got {action!r}")
        self._state = self._state + 1 if a == self.lock[self._state] else 0
        self._t += 1
        self.visit_counts[self._state] += 1
        reached = self._state == self.length - 1
        truncated = not reached and self._t >= self.max_steps
        return self._obs(), float(reached), reached, truncated, {}


for _id, _entry in ((GRID_ID, "SparseGridMaze"), (CHAIN_ID, "DeepChain")):
    if _id not in gym.registry:
        gym.register(id=_id, entry_point=f"rlkit.envs.exploration:{_entry}")

__all__ = ["CHAIN_ID", "GRID_ID", "DeepChain", "SparseGridMaze"]
