"""Memory testbeds: tasks a feed-forward policy cannot solve from the current observation.

Registered with gymnasium when this module is imported:

- ``rlkit/CartPoleNoVel-v1``: CartPole-v1 observing only the cart position and pole angle
  (the velocities are masked), the partially observed CartPole of rl-baselines3-zoo and
  sb3-contrib (``CartPoleNoVel-v1``); 500-step episodes. A policy must infer the velocities
  from consecutive observations.
- ``rlkit/PendulumNoVel-v1``: Pendulum-v1 observing ``(cos theta, sin theta)`` only (the
  angular velocity is masked), the partially observed Pendulum of the recurrent off-policy
  literature (Ni et al. 2022's "Pendulum-P"); 200-step episodes.
- ``rlkit/MountainCarContinuousNoVel-v0``: MountainCarContinuous-v0 observing the car's
  position only (the velocity is masked), rl-baselines3-zoo's ``MountainCarContinuousNoVel-v0``;
  999-step episodes.
- ``rlkit/CueRecall-v0``: a cue is shown on the first step, then ``memory_length`` blank steps,
  then a query; the agent is rewarded for answering the cue. The memory the task needs is the
  parameter ``memory_length`` (a T-maze without the walking).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv
from gymnasium.envs.classic_control.pendulum import PendulumEnv

CARTPOLE_NOVEL_ID = "rlkit/CartPoleNoVel-v1"
CUE_RECALL_ID = "rlkit/CueRecall-v0"
MOUNTAIN_CAR_CONTINUOUS_NOVEL_ID = "rlkit/MountainCarContinuousNoVel-v0"
PENDULUM_NOVEL_ID = "rlkit/PendulumNoVel-v1"


class CartPoleNoVel(CartPoleEnv):
    """CartPole observing ``(x, theta)`` only: the dynamics, reward and termination are
    CartPole-v1's (500-step time limit when made through gymnasium)."""

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode=render_mode)
        high = np.array([self.x_threshold * 2, self.theta_threshold_radians * 2], np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)

    @staticmethod
    def _positions(full: np.ndarray) -> np.ndarray:
        return np.array([full[0], full[2]], dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        full, info = super().reset(seed=seed, options=options)
        return self._positions(full), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        full, reward, terminated, truncated, info = super().step(action)
        return self._positions(full), float(reward), terminated, truncated, info


class PendulumNoVel(PendulumEnv):
    """Pendulum observing ``(cos theta, sin theta)`` only: the dynamics, reward and the
    200-step limit are Pendulum-v1's."""

    def __init__(self, render_mode: str | None = None, g: float = 10.0) -> None:
        super().__init__(render_mode=render_mode, g=g)
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        full, info = super().reset(seed=seed, options=options)
        return full[:2].astype(np.float32), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        full, reward, terminated, truncated, info = super().step(action)
        return full[:2].astype(np.float32), float(reward), terminated, truncated, info


class MountainCarContinuousNoVel(Continuous_MountainCarEnv):
    """MountainCarContinuous observing the position only: the dynamics, reward, goal and the
    999-step limit are MountainCarContinuous-v0's."""

    def __init__(self, render_mode: str | None = None, goal_velocity: float = 0.0) -> None:
        super().__init__(render_mode=render_mode, goal_velocity=goal_velocity)
        self.observation_space = spaces.Box(
            self.min_position, self.max_position, (1,), dtype=np.float32
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        full, info = super().reset(seed=seed, options=options)
        return full[:1].astype(np.float32), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        full, reward, terminated, truncated, info = super().step(action)
        return full[:1].astype(np.float32), float(reward), terminated, truncated, info


class CueRecall(gym.Env[np.ndarray, np.int64]):
    """Remember a cue over ``memory_length`` blank steps, then answer it.

    Step 0 shows one of ``num_cues`` cues (one-hot in the first ``num_cues`` entries); the
    next ``memory_length`` observations are all zero; the last observation raises the query
    flag (the final entry). Actions are ``Discrete(num_cues)``: only the answer at the query
    step counts, with reward ``1`` when it names the cue and ``0`` otherwise, and the episode
    terminates there (``memory_length + 2`` steps). Chance level is ``1 / num_cues``; a policy
    without memory cannot beat it, one that remembers scores 1.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, memory_length: int = 8, num_cues: int = 2) -> None:
        if isinstance(memory_length, bool) or not isinstance(memory_length, int | np.integer):
            raise TypeError(f"CueRecall: memory_length must be an int, got {memory_length!r}")
        if memory_length < 0:
            raise ValueError(f"CueRecall: memory_length must be >= 0, got {memory_length}")
        if isinstance(num_cues, bool) or not isinstance(num_cues, int | np.integer):
            raise TypeError(f"CueRecall: num_cues must be an int, got {num_cues!r}")
        if num_cues < 2:
            raise ValueError(f"CueRecall: num_cues must be >= 2, got {num_cues}")
        self.memory_length = int(memory_length)
        self.num_cues = int(num_cues)
        self.observation_space = spaces.Box(0.0, 1.0, (self.num_cues + 1,), np.float32)
        self.action_space = spaces.Discrete(self.num_cues)
        self._cue = 0
        self._t = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.num_cues + 1, dtype=np.float32)
        if self._t == 0:
            obs[self._cue] = 1.0
        elif self._t == self.memory_length + 1:
            obs[-1] = 1.0
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._cue = int(self.np_random.integers(self.num_cues))
        self._t = 0
        return self._obs(), {"cue": self._cue}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"CueRecall.step: action {action!r} is not in {self.action_space}")
        query = self._t == self.memory_length + 1
        reward = float(int(action) == self._cue) if query else 0.0
        self._t += 1
        return self._obs(), reward, query, False, {"cue": self._cue}


def _register() -> None:
    if CARTPOLE_NOVEL_ID not in gym.registry:
        gym.register(
            CARTPOLE_NOVEL_ID,
            entry_point="rlkit.envs.memory:CartPoleNoVel",
            max_episode_steps=500,
            reward_threshold=475.0,
        )
    if PENDULUM_NOVEL_ID not in gym.registry:
        gym.register(
            PENDULUM_NOVEL_ID, entry_point="rlkit.envs.memory:PendulumNoVel", max_episode_steps=200
        )
    if MOUNTAIN_CAR_CONTINUOUS_NOVEL_ID not in gym.registry:
        gym.register(
            MOUNTAIN_CAR_CONTINUOUS_NOVEL_ID,
            entry_point="rlkit.envs.memory:MountainCarContinuousNoVel",
            max_episode_steps=999,
            reward_threshold=90.0,
        )
    if CUE_RECALL_ID not in gym.registry:
        gym.register(CUE_RECALL_ID, entry_point="rlkit.envs.memory:CueRecall")


_register()

__all__ = [
    "CARTPOLE_NOVEL_ID",
    "CUE_RECALL_ID",
    "MOUNTAIN_CAR_CONTINUOUS_NOVEL_ID",
    "PENDULUM_NOVEL_ID",
    "CartPoleNoVel",
    "CueRecall",
    "MountainCarContinuousNoVel",
    "PendulumNoVel",
]
