"""ReplayStorage: layout, wrap-around, n-step targets, termination vs truncation, configs,
memory accounting and errors."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.configurable import build_from_spec
from rlkit.envs import make_vec_env
from rlkit.storages import (
    STORAGES,
    ArrayStore,
    PixelStore,
    PrioritizedSampler,
    ReplayBatch,
    ReplayStorage,
    UniformSampler,
)

VEC = spaces.Box(-np.inf, np.inf, (3,), np.float32)
DISCRETE = spaces.Discrete(4)
BOX_ACT = spaces.Box(-1.0, 1.0, (2,), np.float32)


class Synthetic:
    """Drives ``storage.add`` with known data: the obs of env ``e`` at step ``s`` is
    ``[s, e, episode]``, rewards are random, episodes end at random by termination or
    truncation. Keeps every step so targets can be recomputed by brute force."""

    def __init__(self, num_envs: int, seed: int, end_prob: float = 0.2) -> None:
        self.n = num_envs
        self.rng = np.random.default_rng(seed)
        self.end_prob = end_prob
        self.episode = np.arange(num_envs) * 1000
        self.records: list[dict[str, np.ndarray]] = []

    def obs(self, s: int) -> np.ndarray:
        return np.stack(
            [np.array([s, e, self.episode[e]], dtype=np.float32) for e in range(self.n)]
        )

    def step(self, storage: ReplayStorage) -> None:
        s = len(self.records)
        obs = self.obs(s)
        ends = self.rng.random(self.n) < self.end_prob
        term = ends & (self.rng.random(self.n) < 0.5)
        trunc = ends & ~term
        next_obs = obs + np.array([1, 0, 0], dtype=np.float32)  # true next obs (final at ends)
        rewards = self.rng.normal(size=self.n).astype(np.float32)
        actions = self.rng.integers(0, 4, self.n)
        storage.add(obs, actions, rewards, next_obs, term, trunc)
        self.records.append(
            {
                "obs": obs,
                "next_obs": next_obs,
                "rewards": rewards,
                "actions": actions,
                "term": term,
                "trunc": trunc,
            }
        )
        self.episode[ends] += 1

    def run(self, storage: ReplayStorage, steps: int) -> Synthetic:
        for _ in range(steps):
            self.step(storage)
        return self

    def target(self, s: int, e: int, n: int, gamma: float, oldest_ok: int) -> dict[str, float]:
        """Brute-force n-step target of env ``e``'s step ``s`` from what is stored."""
        ret, k, newest = 0.0, 0, len(self.records) - 1
        assert s >= oldest_ok
        for j in range(n):
            if s + j > newest:
                break
            rec = self.records[s + j]
            ret += gamma**j * float(rec["rewards"][e])
            k += 1
            if rec["term"][e] or rec["trunc"][e]:
                break
        last = self.records[s + k - 1]
        term = bool(last["term"][e])
        return {
            "rewards": ret,
            "discounts": 0.0 if term else gamma**k,
            "dones": float(term or last["trunc"][e]),
            "next_step": float(last["next_obs"][e][0]),
        }


def make(capacity: int = 40, num_envs: int = 2, **kwargs) -> ReplayStorage:
    return ReplayStorage(VEC, DISCRETE, capacity=capacity, num_envs=num_envs, **kwargs)


def check_batch_against(storage: ReplayStorage, data: Synthetic, batch: ReplayBatch) -> None:
    steps, envs = storage.locate(batch.indices)
    oldest = max(0, storage.steps - storage.num_rows)
    assert steps.min() >= oldest and steps.max() < storage.steps
    for i, (s, e) in enumerate(zip(steps.tolist(), envs.tolist(), strict=True)):
        rec = data.records[s]
        np.testing.assert_array_equal(batch.obs[i].numpy(), rec["obs"][e])
        assert int(batch.actions[i]) == int(rec["actions"][e])
        ref = data.target(s, e, storage.n_step, storage.gamma, oldest)
        assert float(batch.rewards[i]) == pytest.approx(ref["rewards"], rel=1e-5, abs=1e-6)
        assert float(batch.discounts[i]) == pytest.approx(ref["discounts"], rel=1e-6)
        assert float(batch.dones[i]) == ref["dones"]
        assert float(batch.next_obs[i][0]) == ref["next_step"]
        assert float(batch.next_obs[i][1]) == e  # never another env's data


# ---------------------------------------------------------------------- layout and wrap-around
def test_batch_fields_dtypes_and_shapes():
    storage = make()
    Synthetic(2, seed=0).run(storage, 10)
    batch = storage.sample(16, torch.Generator().manual_seed(0))
    assert isinstance(batch.obs, torch.Tensor) and batch.obs.shape == (16, 3)
    assert batch.obs.dtype == torch.float32 and batch.next_obs.shape == (16, 3)
    assert batch.actions.shape == (16,) and batch.actions.dtype == torch.int64
    for name in ("rewards", "discounts", "dones", "weights"):
        value = getattr(batch, name)
        assert value.shape == (16,) and value.dtype == torch.float32, name
    assert batch.indices.dtype == torch.int64
    assert torch.equal(batch.weights, torch.ones(16))

    box = ReplayStorage(VEC, BOX_ACT, capacity=8)
    box.add(np.zeros((1, 3)), np.array([[0.5, -0.5]]), [1.0], np.ones((1, 3)), [False], [False])
    b = box.sample(4)
    assert b.actions.shape == (4, 2) and b.actions.dtype == torch.float32
    assert torch.equal(b.actions[0], torch.tensor([0.5, -0.5]))

    multi = ReplayStorage(VEC, spaces.MultiDiscrete([3, 4]), capacity=8)
    multi.add(np.zeros((1, 3)), np.array([[2, 3]]), [1.0], np.ones((1, 3)), [False], [False])
    b = multi.sample(2)
    assert b.actions.shape == (2, 2) and b.actions.dtype == torch.int64


def test_wrap_around_keeps_the_newest_transitions_of_each_env():
    storage = make(capacity=10, num_envs=2)  # 5 rows per env
    data = Synthetic(2, seed=1).run(storage, 13)
    assert len(storage) == storage.capacity == 10
    steps, envs = storage.locate(np.arange(10))
    assert sorted(set(steps.tolist())) == [8, 9, 10, 11, 12]
    assert sorted(envs.tolist()) == [0] * 5 + [1] * 5
    batch = storage.sample(500, torch.Generator().manual_seed(0))
    assert set(storage.locate(batch.indices)[0].tolist()) == {8, 9, 10, 11, 12}
    check_batch_against(storage, data, batch)


def test_capacity_is_rounded_down_to_whole_rows_and_len_grows():
    storage = make(capacity=11, num_envs=3)
    assert storage.capacity == 9 and storage.num_rows == 3
    assert len(storage) == 0
    Synthetic(3, seed=0).run(storage, 2)
    assert len(storage) == 6
    Synthetic(3, seed=0).run(storage, 5)
    assert len(storage) == 9


def test_torch_inputs_are_accepted():
    storage = make(capacity=8, num_envs=2)
    storage.add(
        torch.zeros(2, 3),
        torch.tensor([1, 2]),
        torch.tensor([0.5, 1.5]),
        torch.ones(2, 3, dtype=torch.float64),
        torch.tensor([True, False]),
        torch.tensor([0.0, 1.0]),
    )
    batch = storage.sample(64, torch.Generator().manual_seed(0))
    by_env = {int(i) % 2: j for j, i in enumerate(batch.indices.tolist())}
    assert float(batch.rewards[by_env[0]]) == 0.5 and float(batch.discounts[by_env[0]]) == 0.0
    assert float(batch.rewards[by_env[1]]) == 1.5
    assert float(batch.discounts[by_env[1]]) == pytest.approx(0.99)
    assert float(batch.dones[by_env[1]]) == 1.0


# ---------------------------------------------------------------------- n-step and episode ends
def test_termination_cuts_the_bootstrap_truncation_keeps_it():
    storage = make(capacity=8, num_envs=3, gamma=0.9)
    obs = np.zeros((3, 3), dtype=np.float32)
    storage.add(
        obs, [0, 1, 2], [1.0, 2.0, 3.0], obs + 1, [True, False, False], [False, True, False]
    )
    batch = storage.sample(60, torch.Generator().manual_seed(0))
    envs = batch.indices % 3
    assert torch.equal(batch.discounts[envs == 0], torch.zeros(int((envs == 0).sum())))
    assert torch.allclose(batch.discounts[envs == 1], torch.tensor(0.9))
    assert torch.allclose(batch.discounts[envs == 2], torch.tensor(0.9))
    assert torch.equal(batch.dones[envs == 0], torch.ones(int((envs == 0).sum())))
    assert torch.equal(batch.dones[envs == 1], torch.ones(int((envs == 1).sum())))
    assert torch.equal(batch.dones[envs == 2], torch.zeros(int((envs == 2).sum())))


@pytest.mark.parametrize("n_step", [1, 2, 3, 5])
@pytest.mark.parametrize("steps", [4, 30])  # not full yet / wrapped several times
def test_n_step_targets_match_brute_force(n_step, steps):
    storage = make(capacity=24, num_envs=3, n_step=n_step, gamma=0.9)
    data = Synthetic(3, seed=n_step, end_prob=0.3).run(storage, steps)
    batch = storage.sample(400, torch.Generator().manual_seed(n_step))
    # every stored slot is drawn, including the newest ones with incomplete windows
    assert len(set(batch.indices.tolist())) == len(storage)
    check_batch_against(storage, data, batch)


def test_n_step_window_stops_at_the_episode_end():
    storage = make(capacity=20, num_envs=1, n_step=3, gamma=0.5)
    obs = np.zeros((1, 3), dtype=np.float32)
    # episode A: steps 0, 1 (terminated at 1); episode B: steps 2, 3, 4 (truncated at 4); 5, 6
    flags = [(False, False), (True, False), (False, False), (False, False), (False, True)]
    flags += [(False, False), (False, False)]
    for s, (term, trunc) in enumerate(flags):
        storage.add(obs + s, [0], [float(s + 1)], obs + s + 1, [term], [trunc])
    batch = storage.sample(300, torch.Generator().manual_seed(0))
    got = {}
    for i, s in enumerate(storage.locate(batch.indices)[0].tolist()):
        got[s] = (float(batch.rewards[i]), float(batch.discounts[i]), float(batch.next_obs[i][0]))
    assert got[0] == pytest.approx((1 + 0.5 * 2, 0.0, 2.0))  # terminated after 2 steps
    assert got[1] == pytest.approx((2.0, 0.0, 2.0))
    assert got[2] == pytest.approx((3 + 0.5 * 4 + 0.25 * 5, 0.125, 5.0))  # truncated: bootstrap
    assert got[3] == pytest.approx((4 + 0.5 * 5, 0.25, 5.0))
    assert got[4] == pytest.approx((5.0, 0.5, 5.0))
    assert got[5] == pytest.approx((6 + 0.5 * 7, 0.25, 7.0))  # only 2 steps stored yet
    assert got[6] == pytest.approx((7.0, 0.5, 7.0))


def test_real_env_with_final_observations():
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    storage = ReplayStorage(
        env.single_observation_space, env.single_action_space, capacity=600, num_envs=2
    )
    obs, _ = env.reset(seed=0)
    finals = []
    for _ in range(400):
        actions = env.action_space.sample()
        next_obs, rewards, term, trunc, info = env.step(actions)
        true_next = next_obs.copy()
        for e in np.flatnonzero(term | trunc):
            true_next[e] = info["final_obs"][e]
            finals.append(true_next[e].copy())
        storage.add(obs, actions, rewards, true_next, term, trunc)
        obs = next_obs
    assert finals, "CartPole episodes under random actions end within 400 steps"
    batch = storage.sample(2000, torch.Generator().manual_seed(0))
    ended = batch.dones == 1
    assert ended.any() and torch.equal(batch.discounts[ended], torch.zeros(int(ended.sum())))
    final_set = {tuple(f.tolist()) for f in finals}
    assert all(tuple(o.tolist()) in final_set for o in batch.next_obs[ended].numpy())


# ---------------------------------------------------------------------- dict observations
def test_dict_observations_round_trip():
    space = spaces.Dict(
        {"image": spaces.Box(0, 255, (2, 3, 3), np.uint8), "vec": VEC, "id": spaces.Discrete(5)}
    )
    storage = ReplayStorage(space, DISCRETE, capacity=6, num_envs=2)
    added = []
    for s in range(5):
        obs = {
            "image": np.full((2, 2, 3, 3), s, np.uint8),
            "vec": np.full((2, 3), s, np.float32),
            "id": np.array([s, s]),
        }
        nxt = {k: v + 1 for k, v in obs.items()}
        storage.add(obs, [0, 1], [0.0, 0.0], nxt, [False, False], [False, False])
        added.append(s)
    batch = storage.sample(50, torch.Generator().manual_seed(0))
    assert batch.obs["image"].dtype == torch.uint8 and batch.obs["vec"].dtype == torch.float32
    steps = storage.locate(batch.indices)[0]
    assert set(steps.tolist()) == {2, 3, 4}
    for i, s in enumerate(steps.tolist()):
        assert int(batch.obs["image"][i, 0, 0, 0]) == s and int(batch.next_obs["id"][i]) == s + 1


# ---------------------------------------------------------------------- configs and state
def test_registered_and_buildable_from_yaml_style_specs():
    storage = STORAGES.build(
        {
            "id": "replay",
            "capacity": 16,
            "store": "array",
            "sampler": {"id": "prioritized", "alpha": 0.5, "beta_steps": 100},
            "n_step": 3,
        },
        observation_space=VEC,
        action_space=DISCRETE,
    )
    assert isinstance(storage, ReplayStorage)
    assert isinstance(storage.store, ArrayStore)
    assert isinstance(storage.sampler, PrioritizedSampler) and storage.sampler.alpha == 0.5
    rebuilt = build_from_spec("storage", storage.spec())
    assert isinstance(rebuilt.sampler, PrioritizedSampler) and rebuilt.sampler.beta_steps == 100
    assert rebuilt.n_step == 3 and rebuilt.capacity == 16
    objects = ReplayStorage(VEC, DISCRETE, 8, store=ArrayStore(), sampler=UniformSampler())
    spec = objects.spec()
    assert spec["store"]["id"] == "array" and spec["sampler"]["id"] == "uniform"
    assert isinstance(build_from_spec("storage", spec).sampler, UniformSampler)


def test_state_dict_round_trip_gives_the_same_batches():
    storage = make(capacity=20, num_envs=2, n_step=3, sampler="prioritized")
    Synthetic(2, seed=3).run(storage, 17)
    storage.update_priorities(np.arange(10), np.linspace(0.1, 5, 10))
    state = {k: v.clone() for k, v in storage.state_dict().items()}
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    copy = make(capacity=20, num_envs=2, n_step=3, sampler="prioritized")
    copy.load_state_dict(state)
    a = storage.sample(64, torch.Generator().manual_seed(7))
    b = copy.sample(64, torch.Generator().manual_seed(7))
    for name in ("indices", "rewards", "discounts", "dones", "weights", "obs", "next_obs"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    with pytest.raises(ValueError, match="actions has shape"):
        make(capacity=30, num_envs=2).load_state_dict(state)
    with pytest.raises(ValueError, match="missing entries"):
        copy.load_state_dict({k: v for k, v in state.items() if k != "episode_end"})


def test_reset_forgets_contents():
    storage = make(capacity=8, num_envs=2, sampler="prioritized")
    Synthetic(2, seed=0).run(storage, 6)
    storage.reset()
    assert len(storage) == 0
    with pytest.raises(ValueError, match="empty"):
        storage.sample(4)
    data = Synthetic(2, seed=5).run(storage, 3)
    check_batch_against(storage, data, storage.sample(30, torch.Generator().manual_seed(0)))


# ---------------------------------------------------------------------- memory
def test_nbytes_counts_exactly_what_is_allocated():
    slots = 1000
    expected = (
        2 * slots * 3 * 4  # obs + next_obs float32
        + slots * 8  # Discrete actions int64
        + slots * (4 + 1 + 1 + 8 + 8)  # rewards, terminated, truncated, episode start/end
        + 2 * 8  # running episode start per env
    )
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        storage = make(capacity=slots, num_envs=2)
        allocated = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert storage.nbytes == expected
    assert expected <= allocated <= expected + 64 * 1024  # plus object overhead, nothing large
    big = make(capacity=10 * slots, num_envs=2)
    assert big.nbytes == pytest.approx(10 * expected, rel=1e-3)
    prioritized = make(capacity=slots, num_envs=2, sampler="prioritized")
    assert prioritized.nbytes == expected + prioritized.sampler.nbytes > expected


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("capacity", [0, -5, 2.5, True, None])
def test_capacity_must_be_a_positive_int(capacity):
    with pytest.raises(ValueError, match="capacity must be an int >= 1"):
        ReplayStorage(VEC, DISCRETE, capacity=capacity)


def test_clear_errors():
    with pytest.raises(ValueError, match=r"capacity \(2\) must be at least num_envs \(3\)"):
        make(capacity=2, num_envs=3)
    with pytest.raises(ValueError, match="n_step must be an int >= 1"):
        make(n_step=0)
    with pytest.raises(ValueError, match="gamma"):
        make(gamma=1.5)
    with pytest.raises(
        KeyError, match="unknown replay_store id 'disk'; known replay_stores: array, pixel"
    ):
        make(store="disk")
    with pytest.raises(KeyError, match=r"unknown replay_sampler id 'rank'.*prioritized, uniform"):
        make(sampler="rank")
    with pytest.raises(TypeError, match="PixelStore: needs a uint8 Box"):
        make(store="pixel")
    with pytest.raises(TypeError, match="unsupported action space"):
        ReplayStorage(VEC, spaces.Tuple([DISCRETE, DISCRETE]), capacity=4)
    store = PixelStore()
    ReplayStorage(spaces.Box(0, 255, (2, 4, 4), np.uint8), DISCRETE, 4, store=store)
    with pytest.raises(ValueError, match="already belongs to another ReplayStorage"):
        ReplayStorage(spaces.Box(0, 255, (2, 4, 4), np.uint8), DISCRETE, 4, store=store)

    storage = make(capacity=8, num_envs=2)
    ok = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"obs has shape \(2, 4\), expected \(2, 3\)"):
        storage.add(np.zeros((2, 4)), [0, 0], [0, 0], ok, [False] * 2, [False] * 2)
    with pytest.raises(ValueError, match=r"next_obs has shape \(1, 3\)"):
        storage.add(ok, [0, 0], [0, 0], np.zeros((1, 3)), [False] * 2, [False] * 2)
    with pytest.raises(ValueError, match="actions has shape"):
        storage.add(ok, [0, 0, 0], [0, 0], ok, [False] * 2, [False] * 2)
    with pytest.raises(ValueError, match="rewards must have one entry per env"):
        storage.add(ok, [0, 0], [0], ok, [False] * 2, [False] * 2)
    with pytest.raises(ValueError, match="terminated must have one entry per env"):
        storage.add(ok, [0, 0], [0, 0], ok, [False] * 3, [False] * 2)
    with pytest.raises(TypeError, match="obs is a dict"):
        storage.add({"x": ok}, [0, 0], [0, 0], ok, [False] * 2, [False] * 2)
    assert len(storage) == 0  # nothing half-written
    with pytest.raises(ValueError, match="empty"):
        storage.sample(4)
    storage.add(ok, [0, 0], [0, 0], ok, [False] * 2, [False] * 2)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        storage.sample(0)
