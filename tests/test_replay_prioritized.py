"""Prioritized replay: the vectorised sum-tree, sampling frequencies, priority updates,
importance weights and beta annealing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.storages import PrioritizedSampler, ReplayStorage
from rlkit.storages.sumtree import SumTree

VEC = spaces.Box(-np.inf, np.inf, (2,), np.float32)
ACT = spaces.Discrete(3)

#: chi-square critical values at p = 0.001 (df -> value), from standard tables
CHI2_999 = {7: 24.322, 15: 37.697}


def filled(capacity: int, steps: int, num_envs: int = 1, **sampler_kwargs) -> ReplayStorage:
    storage = ReplayStorage(
        VEC,
        ACT,
        capacity=capacity,
        num_envs=num_envs,
        sampler=PrioritizedSampler(**sampler_kwargs),
    )
    for s in range(steps):
        obs = np.full((num_envs, 2), s, np.float32)
        storage.add(
            obs, [0] * num_envs, [0.0] * num_envs, obs + 1, [False] * num_envs, [False] * num_envs
        )
    return storage


def chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


# ---------------------------------------------------------------------- sum-tree
@pytest.mark.parametrize("capacity", [1, 5, 64, 1000])
def test_sumtree_matches_brute_force(capacity):
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity)
    p = np.zeros(capacity)
    for batch in (1, 3, 40, 300):  # scalar and vectorised update paths, with duplicates
        idx = rng.integers(0, capacity, batch)
        val = rng.random(batch) + 0.01
        tree.set(idx, val)
        for i, v in zip(idx, val, strict=True):  # numpy assignment: the last duplicate wins
            p[i] = v
        assert tree.total == pytest.approx(p.sum(), rel=1e-12)
        assert tree.min == pytest.approx(p[p > 0].min())
        np.testing.assert_array_equal(tree.get(np.arange(capacity)), p)
    cum = np.cumsum(p)
    queries = rng.random(2000) * p.sum()
    np.testing.assert_array_equal(tree.find(queries), np.searchsorted(cum, queries, side="right"))
    rebuilt = SumTree(capacity)
    rebuilt.load(tree.state())
    np.testing.assert_allclose(rebuilt.sums, tree.sums, rtol=1e-12)
    np.testing.assert_array_equal(rebuilt.mins, tree.mins)


def test_sumtree_skips_empty_leaves():
    tree = SumTree(8)
    tree.set(np.array([1, 5]), np.array([1.0, 3.0]))
    hits = tree.find(np.linspace(0, 3.999, 100))
    assert set(hits.tolist()) == {1, 5}
    assert (hits == 5).sum() == 75


# ---------------------------------------------------------------------- sampling frequencies
def test_sampling_frequencies_match_priorities():
    storage = filled(capacity=8, steps=8, alpha=0.7)
    td = np.array([0.1, 0.5, 1.0, 2.0, 3.0, 0.05, 4.0, 1.5])
    storage.update_priorities(torch.arange(8), torch.tensor(td))
    gen = torch.Generator().manual_seed(0)
    counts = np.zeros(8)
    for _ in range(100):
        idx = storage.sample(2000, gen).indices.numpy()
        counts += np.bincount(idx, minlength=8)
    p = (td + 1e-6) ** 0.7
    probs = p / p.sum()
    assert chi_square(counts, probs) < CHI2_999[7]
    np.testing.assert_allclose(counts / counts.sum(), probs, atol=0.004)
    # the statistic does reject a wrong distribution: uniform would be far off
    assert chi_square(counts, np.full(8, 1 / 8)) > 100 * CHI2_999[7]


def test_update_priorities_changes_sampling():
    storage = filled(capacity=16, steps=16, num_envs=2)  # 8 rows x 2 envs
    gen = torch.Generator().manual_seed(1)
    first = np.bincount(storage.sample(20_000, gen).indices.numpy(), minlength=16)
    # all new transitions share the max priority: roughly uniform
    assert chi_square(first, np.full(16, 1 / 16)) < CHI2_999[15]
    storage.update_priorities(torch.tensor([3]), torch.tensor([50.0]))
    storage.update_priorities(torch.tensor([7, 8]), torch.tensor([0.0, 0.0]))
    after = np.bincount(storage.sample(20_000, gen).indices.numpy(), minlength=16)
    p = np.full(16, 1.0)  # untouched: max priority 1.0 ** alpha
    p[3] = (50.0 + 1e-6) ** 0.6
    p[[7, 8]] = 1e-6**0.6
    assert chi_square(after, p / p.sum()) < CHI2_999[15]
    assert after[3] > 5 * first[3] and after[7] + after[8] < 5


def test_new_transitions_get_the_max_priority():
    storage = filled(capacity=10, steps=4, alpha=0.5)
    storage.update_priorities(np.array([0, 1]), np.array([9.0, 0.2]))
    sampler = storage.sampler
    assert isinstance(sampler, PrioritizedSampler) and sampler.tree is not None
    obs = np.zeros((1, 2), np.float32)
    storage.add(obs, [0], [0.0], obs, [False], [False])
    assert sampler.tree.get(np.array([4]))[0] == pytest.approx((9.0 + 1e-6) ** 0.5)
    # overwritten slots also come back at the max priority
    full = filled(capacity=3, steps=3, alpha=1.0)
    full.update_priorities(np.array([0, 1, 2]), np.array([0.1, 0.1, 4.0]))
    full.add(obs, [0], [0.0], obs, [False], [False])  # overwrites slot 0
    assert full.sampler.tree.get(np.array([0]))[0] == pytest.approx(4.0 + 1e-6)


# ---------------------------------------------------------------------- importance weights
def test_importance_weights_formula():
    storage = filled(capacity=6, steps=6, alpha=0.6, beta=0.4)
    td = np.array([0.3, 1.0, 2.0, 0.01, 5.0, 0.7])
    storage.update_priorities(np.arange(6), td)
    batch = storage.sample(500, torch.Generator().manual_seed(0))
    p = (td + 1e-6) ** 0.6
    probs = p / p.sum()
    n = len(storage)
    w = (n * probs) ** -0.4
    expected = w / w.max()  # normalised by the largest weight over the stored transitions
    np.testing.assert_allclose(batch.weights.numpy(), expected[batch.indices.numpy()], rtol=1e-5)
    assert batch.weights.max() <= 1.0
    assert batch.weights[batch.indices == 3].eq(1.0).all()  # lowest priority, largest weight


def test_beta_anneals_over_added_transitions():
    storage = filled(capacity=50, steps=0, beta=0.4, beta_final=1.0, beta_steps=100, num_envs=2)
    sampler = storage.sampler
    assert isinstance(sampler, PrioritizedSampler)
    assert sampler.beta == pytest.approx(0.4)
    obs = np.zeros((2, 2), np.float32)
    for _ in range(25):  # 50 transitions
        storage.add(obs, [0, 0], [0.0, 0.0], obs, [False] * 2, [False] * 2)
    assert sampler.beta == pytest.approx(0.7)
    storage.update_priorities(np.arange(50), np.linspace(0.1, 3.0, 50))
    batch = storage.sample(200, torch.Generator().manual_seed(0))
    p = (np.linspace(0.1, 3.0, 50) + 1e-6) ** 0.6
    expected = (p[batch.indices.numpy()] / p.min()) ** -0.7
    np.testing.assert_allclose(batch.weights.numpy(), expected, rtol=1e-5)
    for _ in range(100):
        storage.add(obs, [0, 0], [0.0, 0.0], obs, [False] * 2, [False] * 2)
    assert sampler.beta == pytest.approx(1.0)  # stays at beta_final
    constant = filled(capacity=10, steps=10, beta=0.5)
    assert constant.sampler.beta == 0.5


def test_uniform_ignores_priorities_and_errors_are_clear():
    uniform = ReplayStorage(VEC, ACT, capacity=4)
    obs = np.zeros((1, 2), np.float32)
    uniform.add(obs, [0], [0.0], obs, [False], [False])
    uniform.update_priorities(torch.tensor([0]), torch.tensor([3.0]))  # no-op, no error
    storage = filled(capacity=8, steps=8)
    with pytest.raises(ValueError, match="finite"):
        storage.update_priorities(np.array([0]), np.array([np.nan]))
    with pytest.raises(ValueError, match="one per index"):
        storage.update_priorities(np.array([0, 1]), np.array([1.0]))
    with pytest.raises(ValueError, match=r"indices must be in \[0, 8\)"):
        storage.update_priorities(np.array([8]), np.array([1.0]))
    with pytest.raises(ValueError, match="alpha"):
        PrioritizedSampler(alpha=-1)
    with pytest.raises(ValueError, match="beta"):
        PrioritizedSampler(beta=1.5)
    with pytest.raises(ValueError, match="beta_steps"):
        PrioritizedSampler(beta_steps=0)
