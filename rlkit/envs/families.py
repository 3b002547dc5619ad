"""Env families: groups of env ids that share a package, an install extra and a standard
preprocessing pipeline, so ``make_vec_env("ALE/Breakout-v5")`` (and ``rlkit train --env``)
gives the env researchers train on, not the raw one.

A family is a primitive (kind ``env_family``, registry :data:`ENV_FAMILIES`): its constructor
arguments are the pipeline's options (``make_vec_env(..., preprocessing={"frame_stack": 2})``),
:meth:`EnvFamily.matches` claims ids, :meth:`EnvFamily.register` imports the package (or raises
:class:`MissingExtraError` naming the extra to install) and :meth:`EnvFamily.make` builds one
wrapped env, with ``evaluation=True`` leaving out what only training wants (reward clipping,
life loss as episode end). A new family (Procgen, a lab simulator) is a subclass registered
under an id; the first registered family whose :meth:`~EnvFamily.matches` says yes is used.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
from gymnasium import spaces

from rlkit.configurable import Configurable
from rlkit.envs.wrappers import ChannelFirst
from rlkit.registry import Registry

#: info key under which family pipelines report whole episodes (see :mod:`rlkit.envs.stats`).
GAME_KEY = "rlkit.game"


class MissingExtraError(ImportError):
    """An env family's package is not installed; the message names the extra to install."""


class EnvFamily(Configurable):
    """A group of env ids with their package and standard preprocessing (see module doc)."""

    kind = "env_family"
    #: the rlkit extra that installs what the family needs (``pip install "rlkit[EXTRA]"``).
    extra: ClassVar[str] = ""
    #: importable modules the family needs, checked by :meth:`register`.
    modules: ClassVar[tuple[str, ...]] = ()
    #: one line for ``rlkit list`` and the docs.
    summary: ClassVar[str] = ""
    #: whether training episodes are parts of games reported under :data:`GAME_KEY` (so
    #: statistics count games, see :class:`rlkit.envs.stats.GameEpisodeStatistics`).
    reports_games: ClassVar[bool] = False

    @classmethod
    def matches(cls, env_id: str) -> bool:
        """Whether ``env_id`` belongs to this family (no import of the family's package)."""
        return False

    @classmethod
    def register(cls) -> None:
        """Import the family's package and register its ids with gymnasium; a missing package
        is a :class:`MissingExtraError` naming the extra."""
        missing = [m for m in cls.modules if importlib.util.find_spec(m) is None]
        if missing:
            raise MissingExtraError(
                f"{cls.__name__.removesuffix('Family')} envs need {', '.join(missing)}: "
                f'pip install "rlkit[{cls.extra}]"'
            )

    def make(
        self, env_id: str, env_kwargs: Mapping[str, Any], evaluation: bool
    ) -> gym.Env[Any, Any]:
        """One env of ``env_id`` with this family's pipeline; ``evaluation`` leaves out the
        training-only parts."""
        self.register()
        return self.wrap(gym.make(env_id, **dict(env_kwargs)), evaluation)

    def wrap(self, env: gym.Env[Any, Any], evaluation: bool) -> gym.Env[Any, Any]:
        """The family's wrappers around a made env (hook; default: image observations are
        made channel-first)."""
        return channel_first_images(env)


ENV_FAMILIES: Registry[EnvFamily] = Registry("env_family", EnvFamily)


def channel_first_images(env: gym.Env[Any, Any]) -> gym.Env[Any, Any]:
    """``env`` with ``(H, W, 3)`` uint8 image observations made ``(3, H, W)``; others as is."""
    space = env.observation_space
    if isinstance(space, spaces.Box) and len(space.shape) == 3 and space.shape[-1] in (1, 3, 4):
        return ChannelFirst(env)
    return env


def entry_point_of(env_id: str) -> str:
    """The gymnasium entry point registered for ``env_id`` as a string ('' if unknown)."""
    spec = gym.registry.get(env_id)
    if spec is None:
        return ""
    entry: Any = spec.entry_point
    if isinstance(entry, str):
        return entry
    entry = getattr(entry, "func", entry)  # functools.partial (shimmy's ids)
    return f"{getattr(entry, '__module__', '')}:{getattr(entry, '__qualname__', '')}"


def family_for(env_id: str) -> type[EnvFamily] | None:
    """The registered family claiming ``env_id``, or None (plain ``gym.make``)."""
    _import_builtin_families()
    classes = [cls for _, cls in ENV_FAMILIES.items()]
    # a family registered outside rlkit is asked first, so it can take over ids
    classes.sort(key=lambda cls: cls.__module__.startswith("rlkit."))
    return next((cls for cls in classes if cls.matches(env_id)), None)


def build_family(env_id: str, preprocessing: bool | Mapping[str, Any] | None) -> EnvFamily | None:
    """The family object for ``env_id`` built with the ``preprocessing`` options (a mapping;
    ``True``/None = the family's defaults; ``False`` = no family, plain ``gym.make``). A
    mapping with an ``"id"`` names the family explicitly."""
    if preprocessing is False:
        return None
    options = dict(preprocessing) if isinstance(preprocessing, Mapping) else {}
    if "id" in options:
        _import_builtin_families()
        return ENV_FAMILIES.build(options)
    cls = family_for(env_id)
    if cls is None:
        if options:
            raise ValueError(
                f"preprocessing options {sorted(options)} were given, but no env family "
                f"claims {env_id!r}; name one with 'id' (known: {', '.join(ENV_FAMILIES)})"
            )
        return None
    return ENV_FAMILIES.build({"id": cls.registry_id, **options})


def _import_builtin_families() -> None:
    importlib.import_module("rlkit.envs.builtin_families")


__all__ = [
    "ENV_FAMILIES",
    "GAME_KEY",
    "EnvFamily",
    "MissingExtraError",
    "build_family",
    "channel_first_images",
    "entry_point_of",
    "family_for",
]
