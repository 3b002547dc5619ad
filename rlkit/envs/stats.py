"""Per-episode return/length statistics gathered from vector-env steps."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np


class EpisodeTracker:
    """Keeps the last ``window`` finished episodes' returns and lengths.

    Uses ``info["episode"]`` from gymnasium's ``RecordEpisodeStatistics`` when the env has it
    (so env-side wrappers decide what a return is); otherwise sums the rewards it is given.
    """

    def __init__(self, num_envs: int, window: int = 100) -> None:
        self.returns: deque[float] = deque(maxlen=window)
        self.lengths: deque[int] = deque(maxlen=window)
        self.episodes = 0
        self._running_return = np.zeros(num_envs, dtype=np.float64)
        self._running_length = np.zeros(num_envs, dtype=np.int64)

    def step(self, rewards: np.ndarray, dones: np.ndarray, info: dict[str, Any]) -> None:
        """Record one vector step (``dones`` = terminated | truncated)."""
        self._running_return += rewards
        self._running_length += 1
        if not dones.any():
            return
        if "episode" in info and "_episode" in info:
            mask = np.asarray(info["_episode"], dtype=bool)
            finished_r = np.asarray(info["episode"]["r"])[mask]
            finished_l = np.asarray(info["episode"]["l"])[mask]
        else:
            finished_r = self._running_return[dones]
            finished_l = self._running_length[dones]
        self.returns.extend(float(r) for r in finished_r)
        self.lengths.extend(int(n) for n in finished_l)
        self.episodes += int(dones.sum())
        self._running_return[dones] = 0.0
        self._running_length[dones] = 0

    def state_dict(self) -> dict[str, np.ndarray]:
        """The recent episodes, the episode count and the running sums of the unfinished
        episodes, as arrays (checkpointed for exact resume)."""
        return {
            "returns": np.asarray(self.returns, dtype=np.float64),
            "lengths": np.asarray(self.lengths, dtype=np.int64),
            "episodes": np.asarray(self.episodes, dtype=np.int64),
            "running_return": self._running_return.copy(),
            "running_length": self._running_length.copy(),
        }

    def load_state_dict(self, state: Mapping[str, Any], running: bool = True) -> None:
        """Restore what :meth:`state_dict` returned; with ``running=False`` the unfinished
        episodes start from zero (their env was reset rather than restored)."""
        window = self.returns.maxlen
        self.returns = deque((float(x) for x in np.asarray(state["returns"])), maxlen=window)
        self.lengths = deque((int(x) for x in np.asarray(state["lengths"])), maxlen=window)
        self.episodes = int(np.asarray(state["episodes"]).reshape(-1)[0])
        if running and np.shape(state["running_return"]) == self._running_return.shape:
            self._running_return = np.array(state["running_return"], dtype=np.float64)
            self._running_length = np.array(state["running_length"], dtype=np.int64)
        else:
            self.reset_running()

    def reset_running(self) -> None:
        """Forget the unfinished episodes' sums (every env starts a new episode)."""
        self._running_return[:] = 0.0
        self._running_length[:] = 0

    @property
    def return_mean(self) -> float | None:
        return float(np.mean(self.returns)) if self.returns else None

    @property
    def length_mean(self) -> float | None:
        return float(np.mean(self.lengths)) if self.lengths else None
