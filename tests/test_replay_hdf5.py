"""Saving replay storages to HDF5 and loading them back gives identical storages."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.storages import HindsightRelabeler, PixelStore, PrioritizedSampler, ReplayStorage

VEC = spaces.Box(-np.inf, np.inf, (3,), np.float32)
IMAGE = spaces.Box(0, 255, (4, 6, 5), np.uint8)
GOAL = spaces.Box(-10, 10, (2,), np.float32)
GOAL_SPACE = spaces.Dict({"observation": VEC, "achieved_goal": GOAL, "desired_goal": GOAL})


def fill(storage: ReplayStorage, steps: int, seed: int) -> None:
    """Random transitions with frame-stack-like image observations and random episode ends."""
    rng = np.random.default_rng(seed)
    n = storage.num_envs
    space = storage.observation_space

    def draw():
        if isinstance(space, spaces.Dict):
            return {
                k: rng.normal(size=(n, *s.shape)).astype(np.float32)
                for k, s in space.spaces.items()
            }
        if space.dtype == np.uint8:
            return rng.integers(0, 256, (n, *space.shape), dtype=np.uint8)
        return rng.normal(size=(n, *space.shape)).astype(np.float32)

    obs = draw()
    for _ in range(steps):
        nxt = draw()
        if isinstance(obs, np.ndarray) and obs.dtype == np.uint8:
            nxt[:, :-1] = obs[:, 1:]  # shifted stacks: one new frame per step
        ends = rng.random(n) < 0.2
        term = ends & (rng.random(n) < 0.5)
        actions = storage.action_space.sample() if n == 1 else rng.integers(0, 2, n)
        storage.add(obs, np.reshape(actions, (n, -1)), rng.normal(size=n), nxt, term, ends & ~term)
        obs = draw() if ends.any() else nxt


def assert_same_storage(a: ReplayStorage, b: ReplayStorage) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key
    assert (a.capacity, a.num_envs, a.n_step, a.gamma, len(a)) == (
        b.capacity,
        b.num_envs,
        b.n_step,
        b.gamma,
        len(b),
    )
    assert type(a.store) is type(b.store) and type(a.sampler) is type(b.sampler)
    for seed in (0, 1):
        x = a.sample(128, torch.Generator().manual_seed(seed))
        y = b.sample(128, torch.Generator().manual_seed(seed))
        for field in ("indices", "actions", "rewards", "discounts", "dones", "weights"):
            assert torch.equal(getattr(x, field), getattr(y, field)), field
        for field in ("obs", "next_obs"):
            xo, yo = getattr(x, field), getattr(y, field)
            if isinstance(xo, dict):
                assert all(torch.equal(xo[k], yo[k]) for k in xo)
            else:
                assert torch.equal(xo, yo)


@pytest.mark.parametrize(
    ("space", "kwargs"),
    [
        (VEC, {}),
        (VEC, {"sampler": "prioritized", "n_step": 3, "gamma": 0.9}),
        (IMAGE, {"store": "pixel", "n_step": 2}),
        (IMAGE, {"store": PixelStore(reserve=0.0), "sampler": PrioritizedSampler(beta_steps=50)}),
    ],
    ids=["array", "prioritized-nstep", "pixel", "pixel-grown-prioritized"],
)
def test_round_trip_is_identical(tmp_path, space, kwargs):
    storage = ReplayStorage(space, spaces.Discrete(2), capacity=40, num_envs=2, **kwargs)
    fill(storage, 33, seed=0)  # wrapped
    if isinstance(storage.store, PixelStore) and storage.store.reserve == 0:
        slots = storage.capacity
        assert storage.store.pool_size > slots + 2 * 2 * 4 + 4  # grew past its first size
    if storage.sampler.nbytes:
        batch = storage.sample(32, torch.Generator().manual_seed(5))
        storage.update_priorities(batch.indices, torch.rand(32, generator=torch.Generator()) * 3)
    path = storage.save(tmp_path / "replay.h5")
    assert path.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["replay.h5"]
    loaded = ReplayStorage.load(path)
    assert_same_storage(storage, loaded)
    # both go on identically after more steps
    fill(storage, 9, seed=1)
    fill(loaded, 9, seed=1)
    assert_same_storage(storage, loaded)


def test_her_storage_round_trip(tmp_path):
    def reward_fn(achieved, desired, info):
        return -(np.linalg.norm(achieved - desired, axis=-1) > 0.5).astype(np.float32)

    her = HindsightRelabeler(reward_fn, strategy="final", k=3)
    storage = ReplayStorage(GOAL_SPACE, spaces.Discrete(2), capacity=30, num_envs=2, her=her)
    fill(storage, 25, seed=2)
    path = storage.save(tmp_path / "her.h5")
    with pytest.raises(ValueError, match=r"strategy='final', k=3\); pass her="):
        ReplayStorage.load(path)
    loaded = ReplayStorage.load(path, her=HindsightRelabeler(reward_fn, strategy="final", k=3))
    assert_same_storage(storage, loaded)
    # an import-path reward function is part of the config: no override needed, but the
    # file names code to import, so loading it needs trust_code=True (see tests/test_trust.py)
    named = ReplayStorage(
        GOAL_SPACE,
        spaces.Discrete(2),
        capacity=30,
        num_envs=2,
        her=HindsightRelabeler("numpy:isclose", strategy="episode"),
    )
    named.save(tmp_path / "named.h5")
    with pytest.raises(ValueError, match="trust_code=True"):
        ReplayStorage.load(tmp_path / "named.h5")
    assert ReplayStorage.load(tmp_path / "named.h5", trust_code=True).her.strategy == "episode"


def test_file_layout_and_compression(tmp_path):
    storage = ReplayStorage(IMAGE, spaces.Discrete(2), capacity=40, num_envs=2, store="pixel")
    fill(storage, 30, seed=3)
    storage.save(tmp_path / "plain.h5")
    storage.save(tmp_path / "gzip.h5", compression="gzip")
    with h5py.File(tmp_path / "gzip.h5", "r") as f:
        assert f.attrs["format"] == "rlkit.replay"
        assert f["store.frames"].compression == "gzip"
        assert f["store.frames"].dtype == np.uint8
        assert int(f["steps"][()]) == 30
    assert_same_storage(storage, ReplayStorage.load(tmp_path / "gzip.h5"))
    moved = ReplayStorage.load(tmp_path / "plain.h5", device="cpu")
    assert moved.device == torch.device("cpu")


def test_failed_save_leaves_the_old_file_and_no_temporaries(tmp_path):
    storage = ReplayStorage(VEC, spaces.Discrete(2), capacity=10)
    fill(storage, 4, seed=0)
    path = storage.save(tmp_path / "replay.h5")
    before = path.read_bytes()
    fill(storage, 4, seed=1)
    with pytest.raises(ValueError):
        storage.save(path, compression="no-such-filter")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["replay.h5"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no replay storage file"):
        ReplayStorage.load(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="not an rlkit replay storage file"):
        ReplayStorage.load(tmp_path / "other.h5")
    storage = ReplayStorage(VEC, spaces.Discrete(2), capacity=10)
    fill(storage, 4, seed=0)
    storage.save(tmp_path / "ok.h5")
    with pytest.raises(ValueError, match="actions has shape"):
        ReplayStorage.load(tmp_path / "ok.h5", capacity=20)
