"""Putting a training env back where it was, for bit-identical resume (action replay).

A gymnasium env cannot be serialised in general, but most are deterministic given the state of
their random generator: replaying the same reset and actions gives the same episode. So
:func:`~rlkit.envs.make_vec_env` wraps every sub-env in an :class:`ActionRecorder`, which keeps
how its last reset was made (the seed, or the RNG state right before it, same-step autoresets
included) and the actions taken since. :func:`vector_env_state` collects that (plus the vector
env's action-space RNGs and episode statistics) as JSON and arrays for a checkpoint;
:func:`restore_vector_env` puts a new env made the same way back: per sub-env, restore the RNG
(or reseed), reset, re-step the recorded actions, and check that the observation reached is the
one recorded (a digest), which catches envs that are not deterministic given their RNG.
Works for ``SyncVectorEnv`` and ``AsyncVectorEnv`` (through ``call``/``set_attr``).
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv, VectorWrapper
from gymnasium.vector.utils import concatenate, create_empty_array
from gymnasium.wrappers.vector import RecordEpisodeStatistics

#: key under ``VectorEnv.metadata`` set by :func:`~rlkit.envs.make_vec_env` when every sub-env
#: is wrapped in an :class:`ActionRecorder`.
RECORDER_KEY = "rlkit.action_recorder"
#: actions kept per episode; a longer episode is not restorable (the resume falls back to a
#: reset) rather than holding an unbounded list.
MAX_RECORDED_ACTIONS = 100_000

JSONState = dict[str, Any]


class ActionRecorder(gym.Wrapper[Any, Any, Any, Any]):
    """Records how this env's current episode was reached, so it can be replayed elsewhere.

    Keeps the last reset (its seed, or the env's RNG state right before it when unseeded, and
    its options) and every action since, up to ``max_actions`` (beyond that the episode is
    marked unrestorable until the next reset). Per step this costs a list append and a copy of
    the action. :meth:`resume_record` returns the record; :meth:`resume_replay` replays the
    record put in :attr:`resume_pending` (set through ``VectorEnv.set_attr``).
    """

    def __init__(self, env: gym.Env[Any, Any], max_actions: int = MAX_RECORDED_ACTIONS) -> None:
        super().__init__(env)
        if isinstance(max_actions, bool) or not isinstance(max_actions, int) or max_actions < 0:
            raise ValueError(
                f"ActionRecorder: max_actions must be an int >= 0, got {max_actions!r}"
            )
        self.max_actions = max_actions
        self._reset: JSONState | None = None
        self._actions: list[Any] | None = []
        self._last_obs: Any = None
        self._problem: str | None = "the env was never reset"
        #: a record to replay (set per sub-env by :func:`restore_vector_env`).
        self.resume_pending: JSONState | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        problem = None
        how: JSONState
        if seed is not None:
            how = {"seed": int(seed)}
        elif hasattr(self.env.np_random, "bit_generator"):
            # the raw state (made JSON only when a record is taken: resets stay cheap)
            how = {"rng": self.env.np_random.bit_generator.state}
        else:  # e.g. dm_control's RandomState: no state to put back
            how, problem = {}, "its random generator is not a numpy Generator"
        if options is not None:
            try:
                how["options"] = json.loads(json.dumps(options))
            except (TypeError, ValueError):
                problem = "it was reset with options that have no JSON form"
        obs, info = self.env.reset(seed=seed, options=options)
        self._reset, self._actions, self._last_obs, self._problem = how, [], obs, problem
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        actions = self._actions
        if actions is not None:
            if len(actions) < self.max_actions:
                # arrays may be views of the batch the vector env was given: copy them
                actions.append(action.copy() if isinstance(action, np.ndarray) else action)
            else:
                self._actions = None
                self._problem = f"its episode ran past {self.max_actions} recorded actions"
        out = self.env.step(action)
        self._last_obs = out[0]
        return out

    def resume_record(self) -> JSONState:
        """The current episode's record: ``reset`` (JSON), ``actions`` (an array with one row
        per step, or None when there are none), ``obs_digest`` and ``problem`` (why it cannot
        be replayed, or None)."""
        problem, actions = self._problem, None
        if problem is None and self._actions:
            try:
                actions = np.stack(self._actions)
            except ValueError:
                problem = "its actions are not arrays of one shape"
            if actions is not None and actions.dtype == object:
                actions, problem = None, "its actions are not numeric arrays"
        return {
            "reset": _to_json(self._reset),
            "actions": actions,
            "steps": 0 if self._actions is None else len(self._actions),
            "obs_digest": None if self._last_obs is None else obs_digest(self._last_obs),
            "problem": problem,
        }

    def resume_replay(self) -> tuple[Any, str | None]:
        """Replay :attr:`resume_pending`: reseed or restore the RNG, reset, re-step the
        actions. Returns the observation reached and None, or None and what went wrong (the
        record is unrestorable, an episode ended during the replay, or the observation reached
        is not the recorded one)."""
        record, self.resume_pending = self.resume_pending, None
        if record is None:
            return None, "nothing to replay"
        if record.get("problem"):
            return None, str(record["problem"])
        how = record["reset"]
        options = how.get("options")
        if "seed" in how:
            obs, _ = self.env.reset(seed=int(how["seed"]), options=options)
        else:
            set_rng_state(self.env.np_random, how["rng"])
            obs, _ = self.env.reset(options=options)
        actions = record.get("actions")
        rows = [] if actions is None else [actions[t] for t in range(len(actions))]
        for t, action in enumerate(rows):
            obs, _, terminated, truncated, _ = self.env.step(action)
            if terminated or truncated:
                return None, f"its episode ended during the replay (step {t + 1} of {len(rows)})"
        self._reset, self._actions, self._last_obs, self._problem = how, rows, obs, None
        if obs_digest(obs) != record.get("obs_digest"):
            return None, "the replay reached another observation than the recorded one"
        return obs, None


def is_recorded(env: VectorEnv) -> bool:
    """Whether every sub-env of ``env`` records its episode (``make_vec_env`` made it)."""
    if not env.metadata.get(RECORDER_KEY):
        return False
    base = env.unwrapped
    sub_envs = getattr(base, "envs", None)  # SyncVectorEnv: check; AsyncVectorEnv: trust
    if sub_envs is not None:
        return all(isinstance(e, ActionRecorder) for e in sub_envs)
    return callable(getattr(base, "call", None)) and callable(getattr(base, "set_attr", None))


def vector_env_state(env: VectorEnv) -> tuple[JSONState, dict[str, np.ndarray]]:
    """What :func:`restore_vector_env` needs to put a copy of ``env`` where ``env`` is now: a
    JSON part (per sub-env reset records and problems, action-space RNG states, episode counts)
    and arrays (each sub-env's actions ``actions.<i>``, episode statistics ``statistics.*``).
    ``env`` must be recorded (:func:`is_recorded`)."""
    if not is_recorded(env):
        raise ValueError(
            "vector_env_state: env has no action recorders; build it with rlkit.envs.make_vec_env"
        )
    records = env.unwrapped.call("resume_record")  # type: ignore[attr-defined]
    arrays: dict[str, np.ndarray] = {}
    subs: list[JSONState] = []
    for i, record in enumerate(records):
        if record["actions"] is not None:
            arrays[f"actions.{i}"] = record["actions"]
        subs.append({k: record[k] for k in ("reset", "steps", "obs_digest", "problem")})
    state: JSONState = {
        "num_envs": int(env.num_envs),
        "envs": subs,
        "action_space": space_rng_state(env.action_space),
        "single_action_space": space_rng_state(env.single_action_space),
    }
    stats = _episode_statistics(env)
    if stats is not None:
        state["statistics"] = {"episode_count": int(stats.episode_count)}
        arrays.update(
            {
                "statistics.episode_returns": np.asarray(stats.episode_returns),
                "statistics.episode_lengths": np.asarray(stats.episode_lengths),
                "statistics.prev_dones": np.asarray(stats.prev_dones),
                "statistics.return_queue": np.asarray(stats.return_queue, dtype=np.float64),
                "statistics.length_queue": np.asarray(stats.length_queue, dtype=np.int64),
            }
        )
    return state, arrays


def restore_vector_env(
    env: VectorEnv, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> tuple[Any, str | None]:
    """Put ``env`` (made like the env ``state`` was taken from) where that env was: replays
    every sub-env's episode, then restores the action-space RNGs and episode statistics.
    Returns the batched observation the env is now at and None, or None and why it could not
    be restored (the env is then in no particular state: reset it)."""
    if not is_recorded(env):
        return None, "the env was not made by rlkit.envs.make_vec_env (it has no action recorder)"
    n = int(env.num_envs)
    subs = list(state.get("envs", []))
    if int(state.get("num_envs", -1)) != n or len(subs) != n:
        return None, f"the env has {n} sub-envs, the checkpoint's had {state.get('num_envs')}"
    for i, sub in enumerate(subs):
        if sub.get("problem"):
            return None, f"sub-env {i} cannot be replayed: {sub['problem']}"
        if sub.get("steps", 0) and f"actions.{i}" not in arrays:
            return None, f"the actions of sub-env {i} are missing"
    pending = [{**sub, "actions": arrays.get(f"actions.{i}")} for i, sub in enumerate(subs)]
    base = env.unwrapped
    base.set_attr("resume_pending", pending)  # type: ignore[attr-defined]
    results = base.call("resume_replay")  # type: ignore[attr-defined]
    for i, (_, problem) in enumerate(results):
        if problem is not None:
            return None, f"sub-env {i}: {problem} (is the env deterministic given its RNG?)"
    space = env.single_observation_space
    out: Any = create_empty_array(space, n)
    obs = concatenate(space, [o for o, _ in results], out)
    set_space_rng_state(env.action_space, state.get("action_space"))
    set_space_rng_state(env.single_action_space, state.get("single_action_space"))
    stats = _episode_statistics(env)
    if stats is not None and "statistics" in state:
        stats.episode_count = int(state["statistics"]["episode_count"])
        stats.episode_returns = np.array(arrays["statistics.episode_returns"])
        stats.episode_lengths = np.array(arrays["statistics.episode_lengths"])
        stats.prev_dones = np.array(arrays["statistics.prev_dones"], dtype=bool)
        window = stats.return_queue.maxlen
        returns: Any = np.asarray(arrays["statistics.return_queue"], dtype=np.float64)
        lengths: Any = np.asarray(arrays["statistics.length_queue"], dtype=np.int64)
        stats.return_queue = deque(returns, maxlen=window)
        stats.length_queue = deque(lengths, maxlen=window)
    return obs, None


def _episode_statistics(env: VectorEnv) -> RecordEpisodeStatistics | None:
    """The (first) ``RecordEpisodeStatistics`` vector wrapper around ``env``'s base, if any."""
    current: Any = env
    while isinstance(current, VectorWrapper):
        if isinstance(current, RecordEpisodeStatistics):
            return current
        current = current.env
    return None


# ----------------------------------------------------------------------------- RNG states
def rng_state(generator: np.random.Generator) -> JSONState:
    """The state of a NumPy generator as JSON (arrays, as in MT19937's, become lists)."""
    return _to_json(generator.bit_generator.state)


def set_rng_state(generator: np.random.Generator, state: Mapping[str, Any]) -> None:
    """Restore (in place) what :func:`rng_state` returned."""
    generator.bit_generator.state = _from_json(state)


def space_rng_state(space: spaces.Space[Any]) -> JSONState:
    """The RNG states of a space and of its sub-spaces (Dict, Tuple, OneOf, Sequence, Graph)."""
    return {
        "rng": rng_state(space.np_random),
        "children": [space_rng_state(s) for s in _subspaces(space)],
    }


def set_space_rng_state(space: spaces.Space[Any], state: Mapping[str, Any] | None) -> None:
    """Restore (in place) what :func:`space_rng_state` returned; None leaves ``space`` alone."""
    if not state:
        return
    set_rng_state(space.np_random, state["rng"])
    for sub, sub_state in zip(_subspaces(space), state.get("children", []), strict=False):
        set_space_rng_state(sub, sub_state)


def _subspaces(space: spaces.Space[Any]) -> list[spaces.Space[Any]]:
    if isinstance(space, spaces.Dict):
        return list(space.spaces.values())
    if isinstance(space, spaces.Tuple | spaces.OneOf):
        return list(space.spaces)
    if isinstance(space, spaces.Sequence):
        return [space.feature_space]
    if isinstance(space, spaces.Graph):
        return [s for s in (space.node_space, space.edge_space) if s is not None]
    return []


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, Mapping):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {"array", "dtype"}:
            return np.asarray(value["array"], dtype=value["dtype"])
        return {k: _from_json(v) for k, v in value.items()}
    return value


def obs_digest(obs: Any) -> str:
    """A short hash of an observation (arrays, dicts and tuples of them): dtype, shape, bytes."""
    h = hashlib.sha256()
    _feed(h, obs)
    return h.hexdigest()[:32]


def _feed(h: Any, x: Any) -> None:
    if isinstance(x, Mapping):
        for k in sorted(x, key=str):
            h.update(str(k).encode())
            _feed(h, x[k])
    elif isinstance(x, tuple | list):
        for v in x:
            _feed(h, v)
    else:
        a = np.ascontiguousarray(x)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())


__all__ = [
    "MAX_RECORDED_ACTIONS",
    "RECORDER_KEY",
    "ActionRecorder",
    "is_recorded",
    "obs_digest",
    "restore_vector_env",
    "rng_state",
    "set_rng_state",
    "set_space_rng_state",
    "space_rng_state",
    "vector_env_state",
]
