"""Atari preprocessing as in the Nature DQN paper and CleanRL's ``ppo_atari``/``dqn_atari``:
no-op starts, frame skip with a max over the last two frames, 84x84 grey frames (gymnasium's
``AtariPreprocessing``), a life loss ends the training episode (not the game), FIRE after a
reset where the game needs it, rewards clipped to their sign for training, 4 stacked frames,
channel-first. Whole-game returns are reported under :data:`~rlkit.envs.families.GAME_KEY`.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from rlkit.envs.families import GAME_KEY


class EpisodicLife(gym.Wrapper[Any, Any, Any, Any]):
    """A lost life ends the episode for the learner (``terminated=True``) but not the game:
    the following ``reset`` continues the game with a no-op step instead of restarting it.
    Nature DQN's trick to make the value of dying visible (training only)."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def _ale_lives(self) -> int:
        return int(self.env.unwrapped.ale.lives())  # type: ignore[attr-defined]

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self._ale_lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if self.game_over or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:  # a life was lost: go on from where the game is
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        self.game_over = False
        self.lives = self._ale_lives()
        return obs, info


class LifeLossRestart(gym.Wrapper[Any, Any, Any, Any]):
    """Evaluation's counterpart of :class:`EpisodicLife` + :class:`FireReset`: after a lost
    life the game goes on within the episode, with the same actions the training pipeline
    takes at its life-loss reset (a no-op, then FIRE and the next action where the game has
    FIRE), so a policy that never learnt to press FIRE is not stuck waiting for the ball."""

    def __init__(self, env: gym.Env[Any, Any], fire: bool) -> None:
        super().__init__(env)
        self.actions = (0, 1, 2) if fire else (0,)
        self.lives = 0

    def _ale_lives(self) -> int:
        return int(self.env.unwrapped.ale.lives())  # type: ignore[attr-defined]

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = self._ale_lives()
        total = float(reward)
        if 0 < lives < self.lives and not (terminated or truncated):
            for restart in self.actions:
                obs, reward, terminated, truncated, info = self.env.step(restart)
                total += float(reward)
                if terminated or truncated:
                    break
        self.lives = self._ale_lives()
        return obs, total, terminated, truncated, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.lives = self._ale_lives()
        return obs, info


class FireReset(gym.Wrapper[Any, Any, Any, Any]):
    """Press FIRE (then the next action, as the reference wrappers do) after every reset, for
    games that wait for it (Breakout, ...)."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
        if len(meanings) < 3 or meanings[1] != "FIRE":
            raise ValueError(f"FireReset: the game has no FIRE action ({meanings})")

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        self.env.reset(seed=seed, options=options)
        for action in (1, 2):
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        return obs, info


class SignReward(gym.RewardWrapper[Any, Any]):
    """Rewards clipped to their sign (-1, 0, 1): one scale of TD errors across games."""

    def reward(self, reward: SupportsFloat) -> float:
        return float(np.sign(float(reward)))


class GameStatistics(gym.Wrapper[Any, Any, Any, Any]):
    """Adds ``info[GAME_KEY] = {"r": return, "l": length}`` when the underlying game ends, with
    the rewards and steps it sees, so training statistics count whole games with their true
    score although wrappers outside it end episodes on a lost life and clip rewards."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.game_return = 0.0
        self.game_length = 0

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_return += float(reward)
        self.game_length += 1
        if terminated or truncated:
            info = {**info, GAME_KEY: {"r": self.game_return, "l": self.game_length}}
            self.game_return, self.game_length = 0.0, 0
        return obs, reward, terminated, truncated, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        self.game_return, self.game_length = 0.0, 0
        return self.env.reset(seed=seed, options=options)


class MergeStack(gym.ObservationWrapper[Any, Any, Any]):
    """``(k, C, H, W)`` stacks of colour frames as ``(k * C, H, W)`` channels."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Box) and len(space.shape) == 4
        k, c, h, w = space.shape
        self.observation_space = gym.spaces.Box(
            low=space.low.reshape(k * c, h, w),
            high=space.high.reshape(k * c, h, w),
            dtype=space.dtype,
        )

    def observation(self, observation: Any) -> Any:
        return np.reshape(observation, self.observation_space.shape)


__all__ = [
    "EpisodicLife",
    "FireReset",
    "GameStatistics",
    "LifeLossRestart",
    "MergeStack",
    "SignReward",
]
