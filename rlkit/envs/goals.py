"""Goal-conditioned tasks for hindsight experience replay (HER), pure NumPy and fast.

Both follow the gymnasium-robotics ``GoalEnv`` convention: Dict observations with keys
``observation``, ``achieved_goal`` and ``desired_goal``, and a vectorised
``compute_reward(achieved_goal, desired_goal, info)`` that a HER relabeller calls on batches of
goals (``env.unwrapped.compute_reward``). Importing this module registers

* ``rlkit/BitFlipping-v0`` (:class:`BitFlipping`, Andrychowicz et al. 2017, Sec. 3.1): flip bits
  until the state equals the goal; hopeless for epsilon-greedy exploration beyond ~10 bits
  without HER.
* ``rlkit/PointGoal-v0`` (:class:`PointGoal`): steer a point in the plane to a goal disc
  (continuous actions, for SAC/TD3 + HER).

Their reward and success tests are also module functions (:func:`bit_flipping_reward`,
:func:`bit_flipping_success`, :func:`point_goal_reward`, :func:`point_goal_success`) that a
:class:`~rlkit.storages.HindsightRelabeler` can name by import path
(``"rlkit.envs.goals:bit_flipping_reward"``), so configs and checkpoints can record them.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

BIT_FLIPPING_ID = "rlkit/BitFlipping-v0"
POINT_GOAL_ID = "rlkit/PointGoal-v0"


def _goal_space(low: float, high: float, size: int) -> spaces.Box:
    return spaces.Box(low, high, shape=(size,), dtype=np.float32)


def _check_goal_arrays(
    achieved_goal: Any, desired_goal: Any, size: int, owner: str
) -> tuple[np.ndarray, np.ndarray]:
    achieved = np.asarray(achieved_goal, dtype=np.float32)
    desired = np.asarray(desired_goal, dtype=np.float32)
    if achieved.shape != desired.shape or achieved.shape[-1:] != (size,):
        raise ValueError(
            f"{owner}.compute_reward: achieved_goal and desired_goal must have the same shape "
            f"[..., {size}], got {achieved.shape} and {desired.shape}"
        )
    return achieved, desired


def bit_flipping_reward(achieved_goal: Any, desired_goal: Any, info: Any = None) -> np.ndarray:
    """:meth:`BitFlipping.compute_reward` as a module function, so configs can name it
    (``"rlkit.envs.goals:bit_flipping_reward"``): 0 where all bits match, -1 elsewhere."""
    achieved = np.asarray(achieved_goal, dtype=np.float32)
    desired = np.asarray(desired_goal, dtype=np.float32)
    return -np.any(achieved != desired, axis=-1).astype(np.float32)


def bit_flipping_success(achieved_goal: Any, desired_goal: Any, info: Any = None) -> np.ndarray:
    """Whether all bits match (BitFlipping terminates there): HER's ``terminated_fn``."""
    achieved = np.asarray(achieved_goal, dtype=np.float32)
    desired = np.asarray(desired_goal, dtype=np.float32)
    return np.all(achieved == desired, axis=-1)


def point_goal_reward(
    achieved_goal: Any, desired_goal: Any, info: Any = None, tolerance: float = 0.1
) -> np.ndarray:
    """:meth:`PointGoal.compute_reward` at the default ``tolerance`` as a module function
    (``"rlkit.envs.goals:point_goal_reward"``): 0 within ``tolerance``, -1 elsewhere."""
    return np.where(
        point_goal_success(achieved_goal, desired_goal, info, tolerance), 0.0, -1.0
    ).astype(np.float32)


def point_goal_success(
    achieved_goal: Any, desired_goal: Any, info: Any = None, tolerance: float = 0.1
) -> np.ndarray:
    """Whether the achieved goal is within ``tolerance`` of the desired goal (PointGoal
    terminates there): HER's ``terminated_fn``."""
    achieved = np.asarray(achieved_goal, dtype=np.float32)
    desired = np.asarray(desired_goal, dtype=np.float32)
    return np.linalg.norm(achieved - desired, axis=-1) <= tolerance


class BitFlipping(gym.Env[dict[str, Any], np.int64]):
    """``n`` bits start random; action ``i`` flips bit ``i``; the goal is another random bit
    string (never the start).

    Observations: ``observation`` and ``achieved_goal`` are the current bits, ``desired_goal``
    the goal, each a float32 ``Box(0, 1, (n,))`` of 0.0/1.0. Reward ``0`` when the bits equal the
    goal, ``-1`` otherwise. The episode terminates on success and is truncated after
    ``max_steps`` (default ``n``: enough for any goal, at most ``n`` flips are needed);
    ``info["is_success"]`` says whether the goal is reached. A uniformly random policy succeeds
    with probability about ``max_steps / 2**n`` (n = 15: ~0.05 %).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, n_bits: int = 10, max_steps: int | None = None) -> None:
        if not isinstance(n_bits, int | np.integer) or n_bits < 1:
            raise ValueError(f"BitFlipping: n_bits must be an int >= 1, got {n_bits!r}")
        steps = int(n_bits) if max_steps is None else max_steps
        if not isinstance(steps, int | np.integer) or steps < 1:
            raise ValueError(f"BitFlipping: max_steps must be an int >= 1, got {max_steps!r}")
        self.n_bits, self.max_steps = int(n_bits), int(steps)
        bits = _goal_space(0.0, 1.0, self.n_bits)
        self.observation_space = spaces.Dict(
            {"observation": bits, "achieved_goal": bits, "desired_goal": bits}
        )
        self.action_space = spaces.Discrete(self.n_bits)
        self._state = np.zeros(self.n_bits, dtype=np.float32)
        self._goal = np.zeros(self.n_bits, dtype=np.float32)
        self._t = 0

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any = None) -> np.ndarray:
        """``0.0`` where all bits match, ``-1.0`` elsewhere; any leading batch shape."""
        achieved, desired = _check_goal_arrays(
            achieved_goal, desired_goal, self.n_bits, "BitFlipping"
        )
        return bit_flipping_reward(achieved, desired, info)

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "observation": self._state.copy(),
            "achieved_goal": self._state.copy(),
            "desired_goal": self._goal.copy(),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._state = self.np_random.integers(0, 2, self.n_bits).astype(np.float32)
        goal = self.np_random.integers(0, 2, self.n_bits).astype(np.float32)
        if np.array_equal(goal, self._state):  # never start solved: flip one random bit
            i = int(self.np_random.integers(self.n_bits))
            goal[i] = 1.0 - goal[i]
        self._goal = goal
        self._t = 0
        return self._obs(), {"is_success": False}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not 0 <= a < self.n_bits:
            raise ValueError(f"BitFlipping: action must be in [0, {self.n_bits}), got {action!r}")
        self._state[a] = 1.0 - self._state[a]
        self._t += 1
        success = bool(np.array_equal(self._state, self._goal))
        truncated = not success and self._t >= self.max_steps
        return self._obs(), 0.0 if success else -1.0, success, truncated, {"is_success": success}


class PointGoal(gym.Env[dict[str, Any], np.ndarray]):
    """A point in ``[-1, 1]^2`` moves by ``max_speed * action`` per step (action
    ``Box(-1, 1, (2,))``, clipped at the walls) to reach a goal disc of radius ``tolerance``.

    Observations: ``observation`` and ``achieved_goal`` are the position, ``desired_goal`` the
    goal, each a float32 ``Box(-1, 1, (2,))``. Start and goal are uniform and at least
    ``2 * tolerance`` apart. Reward ``0`` inside the disc, ``-1`` outside (sparse, as the
    gymnasium-robotics tasks). The episode terminates on success and is truncated after
    ``max_steps`` (default 50); ``info["is_success"]`` as in gymnasium-robotics. A uniformly
    random policy succeeds in about 6 % of the episodes; a straight line to the goal needs at
    most ``2 * sqrt(2) / max_speed`` (~29) steps.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, max_steps: int = 50, tolerance: float = 0.1, max_speed: float = 0.1) -> None:
        if not isinstance(max_steps, int | np.integer) or max_steps < 1:
            raise ValueError(f"PointGoal: max_steps must be an int >= 1, got {max_steps!r}")
        if not 0 < tolerance < 0.5:
            raise ValueError(f"PointGoal: tolerance must be in (0, 0.5), got {tolerance!r}")
        if not 0 < max_speed <= 2:
            raise ValueError(f"PointGoal: max_speed must be in (0, 2], got {max_speed!r}")
        self.max_steps, self.tolerance, self.max_speed = int(max_steps), tolerance, max_speed
        point = _goal_space(-1.0, 1.0, 2)
        self.observation_space = spaces.Dict(
            {"observation": point, "achieved_goal": point, "desired_goal": point}
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._pos = np.zeros(2, dtype=np.float32)
        self._goal = np.zeros(2, dtype=np.float32)
        self._t = 0

    def compute_reward(self, achieved_goal: Any, desired_goal: Any, info: Any = None) -> np.ndarray:
        """``0.0`` where the achieved goal is within ``tolerance`` of the desired goal, ``-1.0``
        elsewhere; any leading batch shape."""
        achieved, desired = _check_goal_arrays(achieved_goal, desired_goal, 2, "PointGoal")
        return point_goal_reward(achieved, desired, info, self.tolerance)

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "observation": self._pos.copy(),
            "achieved_goal": self._pos.copy(),
            "desired_goal": self._goal.copy(),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        goal = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        while np.linalg.norm(goal - self._pos) < 2 * self.tolerance:
            goal = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        self._goal = goal
        self._t = 0
        return self._obs(), {"is_success": False}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float32)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"PointGoal: action must be 2 finite numbers, got {action!r}")
        step = self.max_speed * np.clip(a, -1.0, 1.0)
        self._pos = np.clip(self._pos + step, -1.0, 1.0).astype(np.float32)
        self._t += 1
        success = bool(point_goal_success(self._pos, self._goal, None, self.tolerance))
        truncated = not success and self._t >= self.max_steps
        return self._obs(), 0.0 if success else -1.0, success, truncated, {"is_success": success}


if BIT_FLIPPING_ID not in gym.registry:
    gym.register(id=BIT_FLIPPING_ID, entry_point="rlkit.envs.goals:BitFlipping")
if POINT_GOAL_ID not in gym.registry:
    gym.register(id=POINT_GOAL_ID, entry_point="rlkit.envs.goals:PointGoal")

__all__ = [
    "BIT_FLIPPING_ID",
    "POINT_GOAL_ID",
    "BitFlipping",
    "PointGoal",
    "bit_flipping_reward",
    "bit_flipping_success",
    "point_goal_reward",
    "point_goal_success",
]
