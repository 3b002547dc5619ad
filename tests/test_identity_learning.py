"""Every action kind learns an identity task, and every observation kind trains end to end.

Identity envs (as in Stable-Baselines3's test suite): the observation shows a random target,
the reward says how well the action matched it. A policy that learns them exercises sampling,
log-probabilities, post-processing (offsets, clipping) and the update for that action kind.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.agents import A2C, PPO
from rlkit.envs import make_vec_env

EPISODE = 10


class IdentityEnv(gym.Env[np.ndarray, Any]):
    """Observation = target (encoded as a float vector); reward in [0, 1] per step."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "discrete":
            self.action_space: spaces.Space[Any] = spaces.Discrete(3, start=1)
            dim = 3
        elif kind == "multi_discrete":
            self.action_space = spaces.MultiDiscrete([2, 3])
            dim = 5
        elif kind == "multi_binary":
            self.action_space = spaces.MultiBinary(3)
            dim = 3
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
            dim = 2
        self.observation_space = spaces.Box(-1.0, 1.0, (dim,), np.float32)
        self._t = 0

    def _draw(self) -> np.ndarray:
        rng = self.np_random
        if self.kind == "discrete":
            self.target: Any = int(rng.integers(3))
            return np.eye(3, dtype=np.float32)[self.target]
        if self.kind == "multi_discrete":
            self.target = np.array([rng.integers(2), rng.integers(3)])
            return np.concatenate([np.eye(2)[self.target[0]], np.eye(3)[self.target[1]]]).astype(
                np.float32
            )
        if self.kind == "multi_binary":
            self.target = rng.integers(2, size=3)
            return self.target.astype(np.float32) * 2 - 1
        self.target = rng.uniform(-0.8, 0.8, size=2).astype(np.float32)
        return self.target.copy()

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._t = 0
        return self._draw(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self.action_space.contains(action), (action, self.action_space)
        if self.kind == "discrete":
            reward = float(action - 1 == self.target)
        elif self.kind in ("multi_discrete", "multi_binary"):
            reward = float(np.mean(np.asarray(action) == self.target))
        else:
            reward = float(1.0 - np.abs(np.asarray(action) - self.target).mean())
        self._t += 1
        return self._draw(), reward, False, self._t >= EPISODE, {}


@pytest.mark.parametrize(
    ("kind", "threshold"),
    [("discrete", 9.0), ("multi_discrete", 9.0), ("multi_binary", 9.0), ("box", 8.5)],
)
def test_ppo_learns_identity_for_every_action_kind(kind: str, threshold: float) -> None:
    env = make_vec_env(lambda: IdentityEnv(kind), num_envs=4, seed=0)
    agent = PPO(env, seed=0, num_steps=64, batch_size=64, num_epochs=4, lr=3e-3)
    agent.train(12_000, progress_bar=False)
    result = agent.evaluate(episodes=10, env=make_vec_env(lambda: IdentityEnv(kind), 2, seed=1))
    assert result["return_mean"] >= threshold, result  # random play scores ~3.3 to 5


class ImageTargetEnv(gym.Env[Any, Any]):
    """A uint8 frame (or a dict of frame + vector) whose brightness shows the rewarded action."""

    def __init__(self, as_dict: bool) -> None:
        self.as_dict = as_dict
        frame = spaces.Box(0, 255, (2, 36, 36), np.uint8)
        self.observation_space: spaces.Space[Any] = (
            spaces.Dict({"frame": frame, "vec": spaces.Box(-1.0, 1.0, (2,), np.float32)})
            if as_dict
            else frame
        )
        self.action_space = spaces.Discrete(2)
        self._t = 0

    def _obs(self) -> Any:
        self.target = int(self.np_random.integers(2))
        frame = np.full((2, 36, 36), 255 * self.target, dtype=np.uint8)
        if self.as_dict:
            return {"frame": frame, "vec": np.zeros(2, dtype=np.float32)}
        return frame

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self._t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        reward = float(int(action) == self.target)
        self._t += 1
        return self._obs(), reward, False, self._t >= EPISODE, {}


@pytest.mark.parametrize("as_dict", [False, True], ids=["image", "dict"])
@pytest.mark.parametrize("algo", [PPO, A2C])
def test_image_and_dict_observations_learn(as_dict: bool, algo: type, tmp_path: Any) -> None:
    env = make_vec_env(lambda: ImageTargetEnv(as_dict), num_envs=4, seed=0)
    if algo is PPO:
        hyper: dict[str, Any] = {"num_steps": 32, "batch_size": 128, "num_epochs": 4, "lr": 1e-3}
    else:  # raw A2C advantages swing with the 0/1 reward; normalising them keeps the CNN stable
        hyper = {"lr": 3e-4, "normalize_advantages": True}
    agent = algo(env, seed=0, **hyper)
    agent.train(4_000 if algo is PPO else 8_000, progress_bar=False)
    eval_env = make_vec_env(lambda: ImageTargetEnv(as_dict), num_envs=2, seed=1)
    assert agent.evaluate(episodes=6, env=eval_env)["return_mean"] >= 9.0
    loaded = algo.load(agent.save(tmp_path / "ckpt"), env=env)
    obs, _ = env.reset(seed=3)
    np.testing.assert_array_equal(
        agent.act(obs, deterministic=True), loaded.act(obs, deterministic=True)
    )
    assert torch.equal(
        torch.as_tensor(loaded.act(obs, deterministic=True)),
        torch.as_tensor(agent.act(obs, deterministic=True)),
    )
