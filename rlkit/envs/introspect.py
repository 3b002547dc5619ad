"""What a vector env's sub-envs are wrapped with, read without stepping them: their time limit
(for the step cap of evaluation loops) and their frame stack (for the replay store).

Serial envs (:class:`~gymnasium.vector.SyncVectorEnv`) are read through their wrapper chains;
subprocess envs through the gymnasium spec of each sub-env, which only envs made by
``gym.make`` have.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv, VectorEnv
from gymnasium.wrappers import FrameStackObservation, TimeLimit

#: the per-episode step cap of evaluation and recording when the env has no time limit of its
#: own: 108_000 steps, Atari's standard evaluation limit (27_000 agent steps x frame skip 4,
#: i.e. 30 minutes of play), so a policy that stands still cannot run an episode forever.
DEFAULT_EVAL_STEP_CAP = 108_000


def _wrapper_chains(env: VectorEnv) -> Iterator[list[gym.Env[Any, Any]]]:
    """Per serial sub-env, its wrappers from the outside in (the base env last)."""
    base = env.unwrapped
    if isinstance(base, SyncVectorEnv):
        for sub in base.envs:
            chain: list[gym.Env[Any, Any]] = []
            node: Any = sub
            while isinstance(node, gym.Wrapper):
                chain.append(node)
                node = node.env
            yield [*chain, node]


def _specs(env: VectorEnv) -> list[EnvSpec]:
    """The gymnasium specs of the sub-envs that have one (none for a custom VectorEnv)."""
    base = env.unwrapped
    if not isinstance(base, SyncVectorEnv | AsyncVectorEnv):
        return []
    return [spec for spec in base.get_attr("spec") if isinstance(spec, EnvSpec)]


def time_limit_of(env: VectorEnv) -> int | None:
    """The largest ``max_episode_steps`` of the sub-envs' own time limits (a
    :class:`~gymnasium.wrappers.TimeLimit` or the gymnasium spec), or None when none has one."""
    limits: list[int] = []
    for chain in _wrapper_chains(env):
        limits += [int(w._max_episode_steps) for w in chain if isinstance(w, TimeLimit)]
    if not limits:
        limits = [int(s.max_episode_steps) for s in _specs(env) if s.max_episode_steps]
    return max(limits) if limits else None


def episode_step_cap(env: VectorEnv, max_episode_steps: int | None = None) -> int:
    """The step cap of an evaluation episode: ``max_episode_steps`` when given, else the env's
    own time limit (:func:`time_limit_of`), else :data:`DEFAULT_EVAL_STEP_CAP`."""
    if max_episode_steps is not None:
        return int(max_episode_steps)
    limit = time_limit_of(env)
    return limit if limit is not None else DEFAULT_EVAL_STEP_CAP


def frame_stack_of(env: VectorEnv) -> int | None:
    """The ``stack_size`` of the (outermost) :class:`~gymnasium.wrappers.FrameStackObservation`
    around the sub-envs, or None when there is none. For serial envs the observations must
    keep the stacked frames whole and in order along their first axis (the stack as is, or
    ``(k, C, H, W)`` reshaped to ``(k * C, H, W)``); a wrapper that reorders axes after the
    stack gives None."""
    shape = tuple(env.single_observation_space.shape or ())
    for chain in _wrapper_chains(env):
        stacked = next((w for w in chain if isinstance(w, FrameStackObservation)), None)
        if stacked is None:
            return None
        k, inner = int(stacked.stack_size), tuple(stacked.observation_space.shape or ())
        whole = (
            len(shape) >= 1
            and math.prod(shape) == math.prod(inner)
            and shape[0] % k == 0
            and shape[1:] == inner[len(inner) - len(shape) + 1 :]
        )
        return k if whole else None
    for spec in _specs(env):
        for wrapper_spec in reversed(spec.additional_wrappers):  # outermost last in the spec
            if wrapper_spec.name == "FrameStackObservation" and wrapper_spec.kwargs:
                return int(wrapper_spec.kwargs["stack_size"])
        return None
    return None


__all__ = ["DEFAULT_EVAL_STEP_CAP", "episode_step_cap", "frame_stack_of", "time_limit_of"]
