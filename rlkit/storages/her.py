"""Hindsight experience replay (Andrychowicz et al. 2017): relabel sampled transitions with
goals their own episode achieved, so sparse-reward goal tasks give a learning signal."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from rlkit.configurable import Configurable
from rlkit.envs import goals
from rlkit.registry import Registry, UnknownIdError
from rlkit.trust import check_import

GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")
STRATEGIES = ("future", "final", "episode")

#: ``fn(achieved_goal, desired_goal, info) -> array``, vectorised over a leading batch axis.
GoalFn = Callable[[np.ndarray, np.ndarray, Any], Any]


class GoalFunctions:
    """Registered goal functions (HER's ``reward_fn`` / ``terminated_fn``) by id, so configs,
    checkpoints and replay files name them without importing anything.

    >>> @GOAL_FUNCTIONS.register("my_reward")
    ... def my_reward(achieved_goal, desired_goal, info): ...
    >>> HindsightRelabeler("my_reward")
    """

    def __init__(self) -> None:
        self._functions: dict[str, GoalFn] = {}

    def register(self, id: str) -> Callable[[GoalFn], GoalFn]:
        """Decorator registering a vectorised goal function under ``id``."""

        def decorator(fn: GoalFn) -> GoalFn:
            if not callable(fn):
                raise TypeError(f"goal function {id!r}: {fn!r} is not callable")
            existing = self._functions.get(id)
            if existing is not None and existing is not fn:
                raise ValueError(f"goal function id {id!r} is already registered to {existing!r}")
            self._functions[id] = fn
            return fn

        return decorator

    def get(self, id: str) -> GoalFn:
        """The function registered under ``id``; the error lists the known ids."""
        try:
            return self._functions[id]
        except KeyError:
            raise UnknownIdError(
                f"unknown goal function id {id!r}; registered: {self.known()}"
            ) from None

    def lookup(self, name: str) -> GoalFn | None:
        """The function registered under ``name``, or whose import path ``"module:function"``
        is ``name`` (so configs written with the path still resolve without an import)."""
        if name in self._functions:
            return self._functions[name]
        for fn in self._functions.values():
            if name == f"{fn.__module__}:{fn.__qualname__}":
                return fn
        return None

    def id_of(self, fn: Any) -> str | None:
        """The id ``fn`` is registered under, or None."""
        return next((k for k, v in self._functions.items() if v is fn), None)

    def known(self) -> str:
        """The registered ids, comma-separated (for error messages)."""
        return ", ".join(sorted(self._functions)) or "(none)"

    def __contains__(self, id: object) -> bool:
        return id in self._functions

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._functions))


#: goal functions configs and files may name; rlkit's goal tasks (:mod:`rlkit.envs.goals`)
#: ship theirs. Register yours with ``@GOAL_FUNCTIONS.register("<id>")``.
GOAL_FUNCTIONS = GoalFunctions()
for _fn in (
    goals.bit_flipping_reward,
    goals.bit_flipping_success,
    goals.point_goal_reward,
    goals.point_goal_success,
):
    GOAL_FUNCTIONS.register(_fn.__name__)(_fn)


def _resolve(fn: GoalFn | str | None, name: str) -> GoalFn | None:
    """A callable, a registered goal function id, or an import path ``"package.module:attr"``
    (imported only when given directly or read from a trusted file: see :mod:`rlkit.trust`)."""
    if fn is None or callable(fn):
        return fn
    if isinstance(fn, str):
        registered = GOAL_FUNCTIONS.lookup(fn)
        if registered is not None:
            return registered
    if isinstance(fn, str) and ":" in fn:
        check_import(
            fn,
            f"the HER {name}",
            f"name a registered goal function instead ({GOAL_FUNCTIONS.known()})",
        )
        module, _, attr = fn.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"HindsightRelabeler: {name}={fn!r} is not callable")
        return obj
    raise TypeError(
        f"HindsightRelabeler: {name} must be a callable or an import path 'module:function' "
        f"or a registered goal function id ({GOAL_FUNCTIONS.known()}), got {fn!r}"
    )


class HindsightRelabeler(Configurable):
    """Relabels a fraction ``k / (k + 1)`` of sampled transitions with an achieved goal.

    The new goal is the ``achieved_goal`` of a next observation of the same episode:

    * ``"future"``: a step from the sampled one to the episode's last stored step (the
      transition's own next state included);
    * ``"final"``: the episode's last step; transitions of episodes still running are left
      as they are (their final goal does not exist yet);
    * ``"episode"``: any stored step of the episode.

    ``desired_goal`` of ``obs`` and ``next_obs`` is replaced and the rewards are recomputed
    with ``reward_fn(achieved_goal, desired_goal, info)`` (vectorised, like gymnasium-robotics'
    ``compute_reward``; ``info`` is an array of empty dicts since infos are not stored), for
    every step of an n-step window. Termination is kept from the env unless
    ``terminated_fn`` (same signature, returns booleans) recomputes it for the new goal, as
    tasks that end on success need (e.g. ``rlkit/BitFlipping-v0``). Both may be callables,
    ids of :data:`GOAL_FUNCTIONS` (``"bit_flipping_reward"``) or import paths
    ``"package.module:function"``. Registered functions (as ids or objects) and import paths
    are written to configs; an import path read back from a checkpoint or replay file is only
    imported with ``trust_code=True`` (see :mod:`rlkit.trust`).
    """

    kind = "replay_relabeler"

    def __init__(
        self,
        reward_fn: GoalFn | str,
        strategy: str = "future",
        k: int = 4,
        terminated_fn: GoalFn | str | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(
                f"HindsightRelabeler: unknown strategy {strategy!r}; expected one of {STRATEGIES}"
            )
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
            raise ValueError(f"HindsightRelabeler: k must be an int >= 0, got {k!r}")
        reward = _resolve(reward_fn, "reward_fn")
        if reward is None:
            raise TypeError("HindsightRelabeler: reward_fn is required")
        self.reward_fn: GoalFn = reward
        self.terminated_fn = _resolve(terminated_fn, "terminated_fn")
        captured = self.__dict__.get("_init_args")
        if captured is not None:  # registered functions go to configs by id
            for key in ("reward_fn", "terminated_fn"):
                registered = GOAL_FUNCTIONS.id_of(captured.get(key))
                if registered is not None:
                    captured[key] = registered
        self.strategy = strategy
        self.k = int(k)

    @property
    def relabel_prob(self) -> float:
        """The fraction of eligible sampled transitions that get a new goal."""
        return self.k / (self.k + 1)

    @staticmethod
    def check_space(observation_space: spaces.Space[Any], owner: str) -> None:
        """Raise unless the space is a goal-conditioned Dict with matching goal shapes."""
        if not isinstance(observation_space, spaces.Dict) or not all(
            key in observation_space.spaces for key in GOAL_KEYS
        ):
            raise TypeError(
                f"{owner}: hindsight relabelling needs a goal-conditioned Dict observation space "
                f"with keys {GOAL_KEYS}, got {observation_space!r}"
            )
        achieved = observation_space.spaces["achieved_goal"]
        desired = observation_space.spaces["desired_goal"]
        if achieved.shape != desired.shape:
            raise ValueError(
                f"{owner}: achieved_goal {achieved.shape} and desired_goal {desired.shape} must "
                "have the same shape"
            )

    def choose(
        self,
        steps: np.ndarray,
        episode_start: np.ndarray,
        episode_end: np.ndarray,
        oldest: int,
        newest: int,
        generator: torch.Generator | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Which sampled transitions to relabel and the step whose achieved goal each gets.

        ``steps`` are the sampled transitions' env step numbers, ``episode_start`` and
        ``episode_end`` their episode's first and last step (``-1``: still running);
        ``oldest``/``newest`` the range of steps still stored. Returns ``(mask, goal_steps)``,
        ``goal_steps`` only meaningful where ``mask``.
        """
        b = len(steps)
        u = torch.rand(2, b, generator=generator, dtype=torch.float64).numpy()
        mask = u[0] < self.relabel_prob
        ended = episode_end >= 0
        last = np.where(ended, episode_end, newest)
        if self.strategy == "final":
            return mask & ended, last
        first = steps if self.strategy == "future" else np.maximum(episode_start, oldest)
        goal_steps = first + np.floor(u[1] * (last - first + 1)).astype(np.int64)
        return mask, np.minimum(goal_steps, last)

    def rewards(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        """``reward_fn`` on goal pairs ``[M, *goal_shape]``, as float32 ``[M]``."""
        return self._call(self.reward_fn, achieved, desired).astype(np.float32)

    def terminated(self, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray | None:
        """``terminated_fn`` on goal pairs as booleans ``[M]``, or ``None`` when not given."""
        if self.terminated_fn is None:
            return None
        return self._call(self.terminated_fn, achieved, desired).astype(bool)

    @staticmethod
    def _call(fn: GoalFn, achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
        count = len(achieved)
        info = np.array([{} for _ in range(count)], dtype=object)
        out = np.asarray(fn(achieved, desired, info))
        if out.shape != (count,):
            raise ValueError(
                f"HindsightRelabeler: the goal function returned shape {out.shape} for {count} "
                "goal pairs; it must be vectorised like compute_reward (one value per pair)"
            )
        return out


REPLAY_RELABELERS: Registry[HindsightRelabeler] = Registry("replay_relabeler", HindsightRelabeler)
REPLAY_RELABELERS.register("her")(HindsightRelabeler)

__all__ = [
    "GOAL_FUNCTIONS",
    "GOAL_KEYS",
    "REPLAY_RELABELERS",
    "STRATEGIES",
    "GoalFn",
    "GoalFunctions",
    "HindsightRelabeler",
]
