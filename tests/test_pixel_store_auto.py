"""Off-policy agents keep frame-stacked uint8 images in a PixelStore unless a store is named;
vector observations and unstacked images keep the ArrayStore."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.wrappers import FrameStackObservation

from rlkit.agents import DQN, R2D2
from rlkit.envs import make_vec_env
from rlkit.envs.introspect import frame_stack_of
from rlkit.storages import ArrayStore, PixelStore

FRAMES_ID = "RlkitPixelAutoFrames-v0"
SIDE = 36  # the smallest frames NatureCNN takes
SMALL = {"buffer_size": 256, "learning_starts": 32, "batch_size": 16}


class Frames(gym.Env[np.ndarray, np.int64]):
    """Random uint8 frames ``(*channels, SIDE, SIDE)``; episodes of 10 steps."""

    def __init__(self, channels: tuple[int, ...] = ()) -> None:
        self.observation_space = spaces.Box(0, 255, (*channels, SIDE, SIDE), np.uint8)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, self.observation_space.shape, dtype=np.uint8)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self._frame(), 1.0, self.t >= 10, False, {}


class MergeStack(gym.ObservationWrapper[Any, Any, Any]):
    """``(k, C, H, W)`` stacks of colour frames as ``(k * C, H, W)`` channels."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        k, c, h, w = env.observation_space.shape  # type: ignore[misc]
        self.observation_space = spaces.Box(0, 255, (k * c, h, w), np.uint8)

    def observation(self, observation: Any) -> Any:
        return observation.reshape(self.observation_space.shape)


class ChannelLast(gym.ObservationWrapper[Any, Any, Any]):
    """``(k, H, W)`` stacks as ``(H, W, k)``: the frames no longer lie along the first axis."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        k, h, w = env.observation_space.shape  # type: ignore[misc]
        self.observation_space = spaces.Box(0, 255, (h, w, k), np.uint8)

    def observation(self, observation: Any) -> Any:
        return np.moveaxis(observation, 0, -1)


if FRAMES_ID not in gym.registry:
    gym.register(FRAMES_ID, entry_point=Frames)


def _stacked(num_envs: int = 2) -> gym.vector.VectorEnv:
    return make_vec_env(lambda: FrameStackObservation(Frames(), 4), num_envs=num_envs, seed=0)


def test_frame_stacks_get_a_pixel_store() -> None:
    env = _stacked()
    assert env.single_observation_space.shape == (4, SIDE, SIDE)
    agent = DQN(env, seed=0, **SMALL)
    store = agent.storage.store
    assert isinstance(store, PixelStore) and store.s == 4 and store.frame_shape == (1, SIDE, SIDE)
    assert agent.storage.spec()["store"] == "pixel"  # recorded, so a saved replay rebuilds it
    agent.train(96, progress_bar=False)  # collects, samples and updates through the store
    batch = agent.storage.sample(8)
    assert tuple(batch.obs.shape) == (8, 4, SIDE, SIDE)


def test_channel_stacked_colour_frames_use_the_stack_size() -> None:
    env = make_vec_env(
        lambda: MergeStack(FrameStackObservation(Frames((3,)), 2)), num_envs=2, seed=0
    )
    assert env.single_observation_space.shape == (6, SIDE, SIDE) and frame_stack_of(env) == 2
    store = DQN(env, seed=0, **SMALL).storage.store
    assert isinstance(store, PixelStore) and store.s == 2 and store.frame_shape == (3, SIDE, SIDE)


def test_subprocess_envs_are_read_through_their_specs() -> None:
    env = make_vec_env(
        FRAMES_ID,
        num_envs=2,
        seed=0,
        asynchronous=True,
        wrappers=[lambda e: FrameStackObservation(e, 4)],
    )
    try:
        assert frame_stack_of(env) == 4
        assert isinstance(DQN(env, seed=0, **SMALL).storage.store, PixelStore)
    finally:
        env.close()


def test_vector_observations_keep_the_array_store() -> None:
    agent = DQN(make_vec_env("CartPole-v1", num_envs=2, seed=0), seed=0, **SMALL)
    assert isinstance(agent.storage.store, ArrayStore)
    assert "store" not in agent.storage_defaults()


def test_unstacked_images_keep_the_array_store() -> None:
    env = make_vec_env("rlkit/PixelReach-v0", num_envs=2, seed=0)
    assert env.single_observation_space.shape == (3, 40, 40)  # RGB channels, not frames
    assert frame_stack_of(env) is None
    assert isinstance(DQN(env, seed=0, **SMALL).storage.store, ArrayStore)
    # a one-frame FrameStackObservation shares nothing between observations either
    single = make_vec_env(lambda: FrameStackObservation(Frames(), 1), num_envs=2, seed=0)
    assert isinstance(DQN(single, seed=0, **SMALL).storage.store, ArrayStore)
    # nor is a stack whose frames a later wrapper moved off the first axis
    moved = make_vec_env(lambda: ChannelLast(FrameStackObservation(Frames(), 4)), num_envs=1)
    assert moved.single_observation_space.shape == (SIDE, SIDE, 4)
    assert frame_stack_of(moved) is None


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ({"id": "replay", "store": "array"}, ArrayStore),  # a named store is respected
        ({"id": "replay", "store": {"id": "pixel", "reserve": 0.5}}, PixelStore),
        ("replay", PixelStore),  # the storage named, its store not: the automatic choice
    ],
)
def test_a_named_store_wins(storage: Any, expected: type) -> None:
    agent = DQN(_stacked(), seed=0, storage=storage, **SMALL)
    assert isinstance(agent.storage.store, expected)
    if expected is PixelStore and isinstance(storage, dict):
        assert agent.storage.store.reserve == 0.5


def test_sequence_replay_gets_the_pixel_store_too() -> None:
    agent = R2D2(
        _stacked(),
        seed=0,
        buffer_size=512,
        learning_starts=64,
        batch_size=4,
        burn_in=2,
        seq_len=4,
        hidden_size=8,
    )
    assert isinstance(agent.storage.store, PixelStore)
    agent.train(128, progress_bar=False)
    assert agent.num_updates > 0


def test_checkpoint_round_trip_keeps_the_pixel_store(tmp_path: Path) -> None:
    env = _stacked()
    agent = DQN(env, seed=0, save_replay=True, **SMALL)
    agent.train(64, progress_bar=False)
    path = agent.save(tmp_path / "ckpt")
    loaded = DQN.load(path, env=env)
    assert isinstance(loaded.storage.store, PixelStore)
    assert len(loaded.storage) == len(agent.storage)
