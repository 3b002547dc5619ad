"""Per-episode return/length statistics gathered from vector-env steps."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from rlkit.envs.families import GAME_KEY


class EpisodeTracker:
    """Keeps the last ``window`` finished episodes' returns and lengths.

    Uses ``info["episode"]`` from gymnasium's ``RecordEpisodeStatistics`` when the env has it
    (so env-side wrappers decide what a return is); otherwise sums the rewards it is given,
    unless ``info_only`` (see :func:`reports_games`).
    """

    def __init__(self, num_envs: int, window: int = 100, info_only: bool = False) -> None:
        #: count only the episodes ``info["episode"]`` reports (an env whose episodes are
        #: whole games spanning several learner episodes, see :class:`GameEpisodeStatistics`).
        self.info_only = bool(info_only)
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
        elif self.info_only:
            finished_r = finished_l = np.zeros(0)
        else:
            finished_r = self._running_return[dones]
            finished_l = self._running_length[dones]
        self.returns.extend(float(r) for r in finished_r)
        self.lengths.extend(int(n) for n in finished_l)
        self.episodes += len(finished_r)
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


class GameEpisodeStatistics(RecordEpisodeStatistics):
    """gymnasium's vector ``RecordEpisodeStatistics`` that, with ``games=True``, records an
    episode only where a sub-env reports a whole game under ``info[GAME_KEY]`` (with its true
    return and length), not at every ``terminated``/``truncated``: Atari's training pipeline
    ends episodes on a lost life and clips rewards, yet returns must be game scores. Needs
    same-step autoreset (what :func:`rlkit.envs.make_vec_env` builds)."""

    def __init__(self, env: Any, buffer_length: int = 100, games: bool = False) -> None:
        super().__init__(env, buffer_length=buffer_length)
        self.games = bool(games)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        if not self.games:
            return super().step(actions)
        obs, rewards, terminations, truncations, infos = self.env.step(actions)
        self.episode_returns += rewards
        self.episode_lengths += 1
        dones = np.logical_or(terminations, truncations)
        self.prev_dones = dones
        # same-step autoreset: the finished step's info is under "final_info"
        final = infos.get("final_info")
        final = final if isinstance(final, dict) else {}
        game = final.pop(GAME_KEY, None)
        mask = np.asarray(final.pop(f"_{GAME_KEY}", np.zeros_like(dones)), dtype=bool)
        if game is not None and mask.any():
            now = time.perf_counter()
            seconds = np.round(now - self.episode_start_times, 6)
            returns = np.where(mask, np.asarray(game["r"], dtype=np.float64), 0.0)
            lengths = np.where(mask, np.asarray(game["l"], dtype=np.int64), 0)
            infos[self._stats_key] = {"r": returns, "l": lengths, "t": np.where(mask, seconds, 0.0)}
            infos[f"_{self._stats_key}"] = mask
            self.episode_count += int(mask.sum())
            self.time_queue.extend(seconds[mask])
            self.return_queue.extend(returns[mask])
            self.length_queue.extend(lengths[mask])
            self.episode_start_times[mask] = now
        # the per-env sums restart with every (life-loss) episode, as the learner's do
        self.episode_returns[dones] = 0
        self.episode_lengths[dones] = 0
        return obs, rewards, terminations, truncations, infos


def reports_games(env: Any) -> bool:
    """Whether ``env``'s episode statistics count whole games rather than every
    ``terminated``/``truncated`` (a :class:`GameEpisodeStatistics` with ``games=True``)."""
    current = env
    while current is not None:
        if getattr(current, "episodes_in_info", False):  # e.g. multi-agent rows
            return True
        if isinstance(current, GameEpisodeStatistics):
            return current.games
        current = getattr(current, "env", None)
    return False
