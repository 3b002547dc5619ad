"""PixelStore: frame stacks rebuilt on sampling are exactly what was added (obs and next_obs,
across episode boundaries, wrap-around and several envs), at about one frame per transition."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.wrappers import FrameStackObservation

from rlkit.envs import make_vec_env
from rlkit.storages import PixelStore, ReplayStorage

FRAME = (6, 5)


class RandomFrames(gym.Env[np.ndarray, np.int64]):
    """Random uint8 frames; episodes end by termination (random) or truncation (max_len)."""

    def __init__(self, max_len: int = 9, term_prob: float = 0.1, shape=FRAME) -> None:
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Discrete(3)
        self.max_len, self.term_prob, self.t = max_len, term_prob, 0

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, self.observation_space.shape, dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: Any = None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        self.t += 1
        term = bool(self.np_random.random() < self.term_prob)
        return self._frame(), 0.0, term, self.t >= self.max_len, {}


class Collector:
    """Steps a vector env with random actions into a storage and remembers every
    ``(obs, true next obs, episode ended)`` it added."""

    def __init__(self, env: gym.vector.VectorEnv, storage: ReplayStorage, seed: int = 0) -> None:
        self.env, self.storage = env, storage
        self.obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        self.added: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def run(self, steps: int) -> Collector:
        for _ in range(steps):
            actions = self.env.action_space.sample()
            next_obs, rewards, term, trunc, info = self.env.step(actions)
            true_next = next_obs.copy()
            for e in np.flatnonzero(term | trunc):
                true_next[e] = info["final_obs"][e]
            self.storage.add(self.obs, actions, rewards, true_next, term, trunc)
            self.added.append((self.obs.copy(), true_next.copy(), term | trunc))
            self.obs = next_obs
        return self

    def episode_ends(self) -> int:
        return sum(int(done.sum()) for _, _, done in self.added)

    def assert_exact(self) -> None:
        """Every stored slot, sampled, gives back exactly the added obs and next obs (the
        one at the end of its n-step window)."""
        storage, added = self.storage, self.added
        batch = storage.sample(30 * len(storage), torch.Generator().manual_seed(0))
        assert batch.obs.dtype == torch.uint8 and batch.next_obs.dtype == torch.uint8
        assert len(set(batch.indices.tolist())) == len(storage)
        steps, envs = storage.locate(batch.indices)
        for i, (s, e) in enumerate(zip(steps.tolist(), envs.tolist(), strict=True)):
            np.testing.assert_array_equal(batch.obs[i].numpy(), added[s][0][e])
            last = s
            while last - s + 1 < storage.n_step and not added[last][2][e] and last + 1 < len(added):
                last += 1
            np.testing.assert_array_equal(batch.next_obs[i].numpy(), added[last][1][e])


def pixel_storage(env: gym.vector.VectorEnv, capacity: int, **kwargs) -> ReplayStorage:
    return ReplayStorage(
        env.single_observation_space,
        env.single_action_space,
        capacity=capacity,
        num_envs=env.num_envs,
        store=kwargs.pop("store", "pixel"),
        **kwargs,
    )


@pytest.mark.parametrize("padding", ["reset", "zero"])
@pytest.mark.parametrize("n_step", [1, 3])
def test_frame_stacks_are_rebuilt_exactly(padding, n_step):
    env = make_vec_env(
        lambda: FrameStackObservation(RandomFrames(), 4, padding_type=padding), num_envs=3, seed=0
    )
    collector = Collector(env, pixel_storage(env, 60, n_step=n_step))
    collector.run(13).assert_exact()  # not full yet
    collector.run(62).assert_exact()  # wrapped several times
    assert collector.episode_ends() > 15  # many episode boundaries inside


def test_channel_stacked_rgb_frames():
    env = make_vec_env(
        lambda: gym.wrappers.TransformObservation(
            FrameStackObservation(RandomFrames(shape=(3, *FRAME)), 2),
            lambda o: o.reshape(6, *FRAME),
            spaces.Box(0, 255, (6, *FRAME), np.uint8),
        ),
        num_envs=2,
        seed=1,
    )
    storage = pixel_storage(env, 30, store=PixelStore(stack_size=2))
    assert storage.store.frame_shape == (3, *FRAME)
    Collector(env, storage).run(40).assert_exact()


def test_any_observation_is_rebuilt_exactly_and_the_pool_grows_when_needed():
    """Observations that share nothing between steps, in 1-3 step episodes and with no
    reserve: the store writes whole stacks and grows its pool, and stays exact."""
    env = make_vec_env(
        lambda: RandomFrames(max_len=3, term_prob=0.3, shape=(3, *FRAME)), num_envs=2, seed=2
    )
    storage = pixel_storage(env, 40, store=PixelStore(reserve=0.0))
    start = storage.store.pool_size
    collector = Collector(env, storage).run(70)
    assert storage.store.pool_size > start
    collector.assert_exact()


def test_one_frame_per_transition():
    env = make_vec_env(
        lambda: FrameStackObservation(RandomFrames(max_len=200, term_prob=0.0), 4),
        num_envs=2,
        seed=0,
    )
    pixel = pixel_storage(env, 400)
    array = pixel_storage(env, 400, store="array")
    frame_bytes = int(np.prod(FRAME))
    per_transition = pixel.store.nbytes / pixel.capacity
    assert per_transition < frame_bytes * (1 + 1 / 16) + 2 * 4 * 8 + 1  # + serial tables
    assert array.store.nbytes / array.capacity == 2 * 4 * frame_bytes
    collector = Collector(env, pixel).run(300)  # wraps; 200-step episodes
    assert pixel.store.pool_size == pixel.store.frames.shape[0]
    assert pixel.store.nbytes == pytest.approx(per_transition * pixel.capacity)  # no growth
    collector.assert_exact()


def test_pixel_store_errors():
    vec = spaces.Box(0, 1, (4,), np.float32)
    with pytest.raises(TypeError, match="PixelStore: needs a uint8 Box"):
        ReplayStorage(vec, spaces.Discrete(2), 8, store="pixel")
    image = spaces.Box(0, 255, (4, 6, 5), np.uint8)
    with pytest.raises(ValueError, match="stack_size=3 does not divide"):
        ReplayStorage(image, spaces.Discrete(2), 8, store=PixelStore(stack_size=3))
    storage = ReplayStorage(image, spaces.Discrete(2), 8, num_envs=2, store="pixel")
    good = np.zeros((2, 4, 6, 5), np.uint8)
    with pytest.raises(ValueError, match=r"obs has shape \(2, 4, 5, 6\)"):
        storage.add(np.zeros((2, 4, 5, 6), np.uint8), [0, 0], [0, 0], good, [0, 0], [0, 0])
    with pytest.raises(ValueError, match="stack_size must be >= 1"):
        PixelStore(stack_size=0)
