"""Registered env wrappers: what ``rlkit train --wrapper ID`` (or ``make_vec_env(...,
wrappers=["frame_stack", {"id": "time_limit", "max_episode_steps": 500}])``) applies, by
name, so the wrappers of a run are recorded in its checkpoint and rebuilt for evaluation.

An entry is any callable taking the env first and keyword options (a wrapper class or a
function); register your own with :func:`register_wrapper`. gymnasium's classes are entered
as they are (nothing is set on them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym

from rlkit.registry import UnknownArgumentError, UnknownIdError, arguments_of

WrapperFactory = Callable[..., gym.Env[Any, Any]]
#: a wrapper as ``make_vec_env`` accepts it: a callable ``env -> env``, an id or a spec dict.
WrapperLike = Callable[[gym.Env[Any, Any]], gym.Env[Any, Any]] | str | Mapping[str, Any]

_WRAPPERS: dict[str, WrapperFactory] = {}
_BUILTIN_LOADED = False


def register_wrapper(id: str) -> Callable[[WrapperFactory], WrapperFactory]:
    """Decorator entering a wrapper class or function ``(env, **options) -> env`` under
    ``id``."""

    def decorator(factory: WrapperFactory) -> WrapperFactory:
        existing = _WRAPPERS.get(id)
        if existing is not None and existing is not factory:
            raise ValueError(f"env wrapper id {id!r} is already registered to {existing!r}")
        _WRAPPERS[id] = factory
        return factory

    return decorator


def wrapper_ids() -> list[str]:
    """The registered wrapper ids, sorted."""
    _builtin()
    return sorted(_WRAPPERS)


def wrapper_factory(id: str) -> WrapperFactory:
    """The factory registered under ``id``; the error lists the known ids."""
    _builtin()
    if id not in _WRAPPERS:
        raise UnknownIdError(
            f"unknown env wrapper id {id!r}; known: {', '.join(sorted(_WRAPPERS))}"
        )
    return _WRAPPERS[id]


def check_wrapper_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` as ``{"id": ..., **options}``, checked against the factory's arguments."""
    given = {"id": spec} if isinstance(spec, str) else dict(spec)
    if not isinstance(given.get("id"), str):
        raise ValueError(
            f"env wrapper spec {spec!r} needs an 'id' (one of {', '.join(wrapper_ids())})"
        )
    factory = wrapper_factory(given["id"])
    signature = arguments_of(factory)  # type: ignore[arg-type]
    if signature is not None:
        options = [k for k in signature if k != "env"]
        unknown = [k for k in given if k != "id" and k not in signature]
        if unknown:
            raise UnknownArgumentError(
                f"env wrapper {given['id']!r} has no option(s) {', '.join(unknown)}; its "
                f"options: {', '.join(options) or '(none)'}"
            )
        missing = [k for k, req in signature.items() if req and k != "env" and k not in given]
        if missing:
            raise TypeError(f"env wrapper {given['id']!r} needs the option(s) {', '.join(missing)}")
    return given


def apply_wrapper(env: gym.Env[Any, Any], spec: str | Mapping[str, Any]) -> gym.Env[Any, Any]:
    """``env`` wrapped by the registered wrapper ``spec`` names."""
    given = check_wrapper_spec(spec)
    options = {k: v for k, v in given.items() if k != "id"}
    return wrapper_factory(given["id"])(env, **options)


def frame_stack(env: gym.Env[Any, Any], stack_size: int = 4) -> gym.Env[Any, Any]:
    """gymnasium's ``FrameStackObservation`` with rlkit's default of 4 frames."""
    return gym.wrappers.FrameStackObservation(env, int(stack_size))


def resize(env: gym.Env[Any, Any], shape: Sequence[int] = (84, 84)) -> gym.Env[Any, Any]:
    """gymnasium's ``ResizeObservation``, taking the shape as any sequence (YAML gives lists)."""
    return gym.wrappers.ResizeObservation(env, (int(shape[0]), int(shape[1])))


def _builtin() -> None:
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    from gymnasium import wrappers as gw

    from rlkit.envs.atari import EpisodicLife, FireReset, SignReward
    from rlkit.envs.dict_obs import FlattenDict
    from rlkit.envs.wrappers import ActionRepeat, ChannelFirst, Float32Action

    builtin: dict[str, WrapperFactory] = {
        "action_repeat": ActionRepeat,
        "channel_first": ChannelFirst,
        "clip_action": gw.ClipAction,
        "clip_reward": gw.ClipReward,
        "episodic_life": EpisodicLife,
        "fire_reset": FireReset,
        "flatten_dict": FlattenDict,
        "flatten_observation": gw.FlattenObservation,
        "float32_action": Float32Action,
        "frame_stack": frame_stack,
        "grayscale": gw.GrayscaleObservation,
        "max_and_skip": gw.MaxAndSkipObservation,
        "rescale_action": gw.RescaleAction,
        "resize": resize,
        "sign_reward": SignReward,
        "sticky_action": gw.StickyAction,
        "time_aware": gw.TimeAwareObservation,
        "time_limit": gw.TimeLimit,
    }
    for id, factory in builtin.items():
        _WRAPPERS.setdefault(id, factory)


__all__ = [
    "WrapperLike",
    "apply_wrapper",
    "check_wrapper_spec",
    "register_wrapper",
    "wrapper_factory",
    "wrapper_ids",
]
