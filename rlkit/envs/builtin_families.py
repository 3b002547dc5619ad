"""The env families rlkit knows: Atari (ale-py), MuJoCo, Box2D, MiniGrid and DeepMind Control
(through shimmy). Each pipeline is the one its reference implementations train on; the
options are the family's constructor arguments (``preprocessing={...}``)."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlkit.envs.families import (
    ENV_FAMILIES,
    EnvFamily,
    channel_first_images,
    entry_point_of,
)

#: old-style ALE ids gymnasium knew before ``ALE/...-v5`` (``BreakoutNoFrameskip-v4``, ...).
_LEGACY_ATARI = re.compile(r"^[A-Z][A-Za-z0-9]*(NoFrameskip|Deterministic)-v[04]$")


@ENV_FAMILIES.register("atari")
class AtariFamily(EnvFamily):
    """Atari 2600 games (``ALE/Breakout-v5``, ``BreakoutNoFrameskip-v4``) with the Nature /
    CleanRL pipeline: ``noop_max`` random no-ops at reset, ``frame_skip`` with a max over the
    last two frames, ``screen_size`` grey frames, a lost life ends the training episode
    (``episodic_life``), FIRE after reset where the game has it (``fire_reset``), rewards
    clipped to their sign for training (``clip_rewards``), ``frame_stack`` frames stacked
    channel-first. The env's own frame skip is turned off (``frameskip=1``) so the max-pooled
    skip is the only one; v5's sticky actions (``repeat_action_probability=0.25``, Machado et
    al. 2018) stay as the id defines them (``NoFrameskip-v4`` has none). Evaluation plays
    whole games with true scores. RAM observations (``obs_type="ram"``) get the frame skip,
    life and reward handling, without the image steps and the random no-ops."""

    extra = "atari"
    modules = ("ale_py", "cv2")
    reports_games = True
    summary = "ALE/*-v5, *NoFrameskip-v4: Nature/CleanRL preprocessing, 84x84 grey, 4 frames"

    def __init__(
        self,
        noop_max: int = 30,
        frame_skip: int = 4,
        screen_size: int = 84,
        grayscale: bool = True,
        frame_stack: int = 4,
        episodic_life: bool = True,
        fire_reset: bool = True,
        clip_rewards: bool = True,
    ) -> None:
        check_integers(
            "AtariFamily",
            noop_max=(noop_max, 0),
            frame_skip=(frame_skip, 1),
            screen_size=(screen_size, 8),
            frame_stack=(frame_stack, 1),
        )
        self.noop_max, self.frame_skip, self.screen_size = noop_max, frame_skip, screen_size
        self.grayscale, self.frame_stack = bool(grayscale), frame_stack
        self.episodic_life, self.fire_reset = bool(episodic_life), bool(fire_reset)
        self.clip_rewards = bool(clip_rewards)

    @classmethod
    def matches(cls, env_id: str) -> bool:
        return env_id.startswith("ALE/") or bool(_LEGACY_ATARI.match(env_id))

    @classmethod
    def register(cls) -> None:
        super().register()
        import ale_py

        gym.register_envs(ale_py)

    def make(
        self, env_id: str, env_kwargs: Mapping[str, Any], evaluation: bool
    ) -> gym.Env[Any, Any]:
        self.register()
        kwargs = {"frameskip": 1, **dict(env_kwargs)}
        return self.wrap(gym.make(env_id, **kwargs), evaluation)

    def wrap(self, env: gym.Env[Any, Any], evaluation: bool) -> gym.Env[Any, Any]:
        from rlkit.envs.atari import (
            EpisodicLife,
            FireReset,
            GameStatistics,
            LifeLossRestart,
            MergeStack,
            SignReward,
        )

        image = len(env.observation_space.shape or ()) == 3
        if image:
            env = gym.wrappers.AtariPreprocessing(
                env,
                noop_max=self.noop_max,
                frame_skip=self.frame_skip,
                screen_size=self.screen_size,
                terminal_on_life_loss=False,
                grayscale_obs=self.grayscale,
                scale_obs=False,
            )
        else:  # RAM: the same max-pooled skip; no frames to resize (and no random no-ops)
            env = gym.wrappers.MaxAndSkipObservation(env, skip=self.frame_skip)
        env = GameStatistics(env)
        meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
        fire = self.fire_reset and len(meanings) >= 3 and meanings[1] == "FIRE"
        if self.episodic_life and not evaluation:
            env = EpisodicLife(env)
        elif self.episodic_life:  # whole games, restarted after a life as in training
            env = LifeLossRestart(env, fire)
        if fire:
            env = FireReset(env)
        if self.clip_rewards and not evaluation:
            env = SignReward(env)
        if image and not self.grayscale:
            env = channel_first_images(env)
        if self.frame_stack > 1:
            env = gym.wrappers.FrameStackObservation(env, self.frame_stack)
            if image and not self.grayscale:
                env = MergeStack(env)
        elif image and self.grayscale:  # one grey frame: a channel axis in front
            env = gym.wrappers.ReshapeObservation(env, (1, self.screen_size, self.screen_size))
        return env


def check_integers(owner: str, **values: tuple[Any, int]) -> None:
    """Raise one line for the first ``name=(value, lowest)`` whose value is not an integer of
    at least ``lowest``."""
    for name, (value, low) in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{owner}: {name} must be an integer >= {low}, got {value!r}")


def _entry_point_family(prefix: str) -> Any:
    def matches(cls: type[EnvFamily], env_id: str) -> bool:
        return entry_point_of(env_id).startswith(prefix)

    return classmethod(matches)


@ENV_FAMILIES.register("mujoco")
class MuJoCoFamily(EnvFamily):
    """Gymnasium's MuJoCo tasks (``Hopper-v5``, ``HalfCheetah-v5``, ...): no preprocessing
    (normalisation is the agent's: the presets turn it on), observations as float32."""

    extra = "mujoco"
    modules = ("mujoco",)
    summary = "Hopper-v5, HalfCheetah-v5, ...: float32 observations (presets normalise)"
    matches = _entry_point_family("gymnasium.envs.mujoco")

    def wrap(self, env: gym.Env[Any, Any], evaluation: bool) -> gym.Env[Any, Any]:
        return float32_observations(env)


@ENV_FAMILIES.register("box2d")
class Box2DFamily(EnvFamily):
    """Gymnasium's Box2D tasks (``LunarLander-v3``, ``BipedalWalker-v3``, ``CarRacing-v3``):
    no preprocessing besides channel-first frames for CarRacing."""

    extra = "box2d"
    modules = ("Box2D",)
    summary = "LunarLander-v3, BipedalWalker-v3, CarRacing-v3 (channel-first frames)"
    matches = _entry_point_family("gymnasium.envs.box2d")


@ENV_FAMILIES.register("minigrid")
class MiniGridFamily(EnvFamily):
    """MiniGrid and BabyAI (``MiniGrid-DoorKey-5x5-v0``, ``BabyAI-GoToRedBall-v0``): the
    ``image`` grid (object, colour, state indices scaled to [0, 1]), the ``direction`` one-hot
    and the ``mission`` as a hashed bag of words, flattened into one float vector for MLP
    policies (:class:`~rlkit.envs.dict_obs.FlattenDict`; ``mission_buckets=0`` drops the
    mission, for tasks whose mission never changes)."""

    extra = "minigrid"
    modules = ("minigrid",)
    summary = "MiniGrid-*, BabyAI-*: image + direction + mission as one float vector"

    def __init__(self, mission_buckets: int = 32) -> None:
        check_integers("MiniGridFamily", mission_buckets=(mission_buckets, 0))
        self.mission_buckets = mission_buckets

    @classmethod
    def matches(cls, env_id: str) -> bool:
        return env_id.startswith(("MiniGrid-", "BabyAI-"))

    @classmethod
    def register(cls) -> None:
        super().register()
        importlib.import_module("minigrid")  # registers its ids with gymnasium

    def wrap(self, env: gym.Env[Any, Any], evaluation: bool) -> gym.Env[Any, Any]:
        from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

        from rlkit.envs.dict_obs import FlattenDict

        largest = [max(OBJECT_TO_IDX.values()), max(COLOR_TO_IDX.values())]
        largest.append(max(STATE_TO_IDX.values()))
        drop = ("mission",) if self.mission_buckets == 0 else ()
        return FlattenDict(
            env,
            scales={"image": [float(x) for x in largest]},
            text_buckets=max(self.mission_buckets, 1),
            drop=drop,
        )


@ENV_FAMILIES.register("dmc")
class DMCFamily(EnvFamily):
    """DeepMind Control Suite through shimmy (``dm_control/cartpole-swingup-v0``). State: the
    observation dict flattened to float32. Pixels (``pixels=True``, DrQ-v2's setting): frames
    of ``size`` x ``size`` from ``camera_id``, ``frame_stack`` stacked channel-first. Both:
    ``action_repeat`` (rewards summed) and float32 actions. Pixels render with EGL when no
    display is set (``MUJOCO_GL=egl`` unless you set it)."""

    extra = "dmc"
    modules = ("shimmy", "dm_control")
    summary = "dm_control/DOMAIN-TASK-v0: state or pixels, action repeat, frame stack"

    def __init__(
        self,
        pixels: bool = False,
        size: int = 84,
        camera_id: int = 0,
        frame_stack: int = 3,
        action_repeat: int = 1,
    ) -> None:
        check_integers(
            "DMCFamily",
            size=(size, 8),
            camera_id=(camera_id, 0),
            frame_stack=(frame_stack, 1),
            action_repeat=(action_repeat, 1),
        )
        self.pixels, self.size, self.camera_id = bool(pixels), size, camera_id
        self.frame_stack, self.action_repeat = frame_stack, action_repeat

    @classmethod
    def matches(cls, env_id: str) -> bool:
        return env_id.startswith("dm_control/")

    @classmethod
    def register(cls) -> None:
        super().register()
        if not os.environ.get("DISPLAY"):
            os.environ.setdefault("MUJOCO_GL", "egl")  # read by dm_control when imported
        import shimmy

        gym.register_envs(shimmy)

    def make(
        self, env_id: str, env_kwargs: Mapping[str, Any], evaluation: bool
    ) -> gym.Env[Any, Any]:
        self.register()
        kwargs = dict(env_kwargs)
        if self.pixels:
            kwargs.setdefault("render_mode", "rgb_array")
            render = {"width": self.size, "height": self.size, "camera_id": self.camera_id}
            kwargs.setdefault("render_kwargs", render)
        return self.wrap(gym.make(env_id, **kwargs), evaluation)

    def wrap(self, env: gym.Env[Any, Any], evaluation: bool) -> gym.Env[Any, Any]:
        from rlkit.envs.wrappers import ActionRepeat, Float32Action

        env = Float32Action(env)
        if self.action_repeat > 1:
            env = ActionRepeat(env, self.action_repeat)
        if self.pixels:
            env = gym.wrappers.AddRenderObservation(env, render_only=True)
            env = channel_first_images(env)
            if self.frame_stack > 1:
                from rlkit.envs.atari import MergeStack

                env = MergeStack(gym.wrappers.FrameStackObservation(env, self.frame_stack))
            return env
        return float32_observations(gym.wrappers.FlattenObservation(env))


def float32_observations(env: gym.Env[Any, Any]) -> gym.Env[Any, Any]:
    """``env`` with float64 Box observations cast to float32 (what the networks compute in)."""
    from rlkit.envs.wrappers import Float32Observation

    space = env.observation_space
    if isinstance(space, spaces.Box) and space.dtype == np.float64:
        return Float32Observation(env)
    return env


__all__ = [
    "AtariFamily",
    "Box2DFamily",
    "DMCFamily",
    "MiniGridFamily",
    "MuJoCoFamily",
    "float32_observations",
]
