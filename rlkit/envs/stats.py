"""Per-episode return/length statistics gathered from vector-env steps."""

from __future__ import annotations

from collections import deque
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

    @property
    def return_mean(self) -> float | None:
        return float(np.mean(self.returns)) if self.returns else None

    @property
    def length_mean(self) -> float | None:
        return float(np.mean(self.lengths)) if self.lengths else None
