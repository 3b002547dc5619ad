"""Hindsight relabelling: goals come from the right part of the same episode per strategy and
rewards (and, when asked, terminations) are recomputed for the new goals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.configurable import NotSerializableError, build_from_spec
from rlkit.storages import HindsightRelabeler, ReplayStorage

GOAL = spaces.Box(-np.inf, np.inf, (2,), np.float32)
SPACE = spaces.Dict({"observation": GOAL, "achieved_goal": GOAL, "desired_goal": GOAL})
NO_GOAL = np.array([-1.0, -1.0], np.float32)


def reward_fn(achieved, desired, info):
    """0 where the goal is reached, -1 elsewhere (vectorised, like compute_reward)."""
    assert len(info) == len(achieved)
    return -np.any(achieved != desired, axis=-1).astype(np.float32)


def success_fn(achieved, desired, info):
    return np.all(achieved == desired, axis=-1)


class GoalData:
    """Goal-conditioned steps whose achieved goal ``[uid, t]`` names the episode (unique id)
    and the step within it, so a relabelled goal tells where it came from."""

    def __init__(self, num_envs: int, seed: int, max_len: int = 6) -> None:
        self.n = num_envs
        self.rng = np.random.default_rng(seed)
        self.max_len = max_len
        self.uid = np.arange(num_envs, dtype=np.float32) * 1000
        self.t = np.zeros(num_envs, dtype=np.float32)
        #: per step: uid, t (before the step), ended flags
        self.records: list[dict[str, np.ndarray]] = []

    def obs(self, t: np.ndarray) -> dict[str, np.ndarray]:
        pos = np.stack([self.uid, t], axis=1)
        return {
            "observation": pos.copy(),
            "achieved_goal": pos.copy(),
            "desired_goal": np.tile(NO_GOAL, (self.n, 1)),
        }

    def run(self, storage: ReplayStorage, steps: int) -> GoalData:
        for _ in range(steps):
            obs, nxt = self.obs(self.t), self.obs(self.t + 1)
            trunc = self.t + 1 >= self.max_len
            term = ~trunc & (self.rng.random(self.n) < 0.15)
            rewards = reward_fn(nxt["achieved_goal"], nxt["desired_goal"], [{}] * self.n)
            storage.add(obs, np.zeros(self.n, np.int64), rewards, nxt, term, trunc)
            self.records.append(
                {"uid": self.uid.copy(), "t": self.t.copy(), "ended": term | trunc, "term": term}
            )
            ended = term | trunc
            self.uid[ended] += 1
            self.t = np.where(ended, 0, self.t + 1)
        return self

    def episode_steps(self, s: int, e: int, oldest: int) -> list[int]:
        """Stored steps of the episode that env ``e``'s step ``s`` belongs to."""
        uid = self.records[s]["uid"][e]
        return [i for i in range(oldest, len(self.records)) if self.records[i]["uid"][e] == uid]


def make(strategy: str, capacity: int = 200, num_envs: int = 2, **kwargs) -> ReplayStorage:
    her = HindsightRelabeler(
        reward_fn,
        strategy=strategy,
        k=kwargs.pop("k", 4),
        terminated_fn=kwargs.pop("terminated_fn", None),
    )
    return ReplayStorage(
        SPACE, spaces.Discrete(2), capacity=capacity, num_envs=num_envs, her=her, **kwargs
    )


def relabelled(batch) -> np.ndarray:
    return ~np.all(batch.obs["desired_goal"].numpy() == NO_GOAL, axis=1)


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_goals_come_from_the_right_part_of_the_same_episode(strategy):
    storage = make(strategy, capacity=60, num_envs=2)  # 30 rows: wraps, evicts episode heads
    data = GoalData(2, seed=0).run(storage, 46)
    batch = storage.sample(3000, torch.Generator().manual_seed(0))
    steps, envs = storage.locate(batch.indices)
    oldest = storage.steps - storage.num_rows
    mask = relabelled(batch)
    goals = batch.obs["desired_goal"].numpy()
    eligible = 0
    for i, (s, e) in enumerate(zip(steps.tolist(), envs.tolist(), strict=True)):
        episode = data.episode_steps(s, e, oldest)
        ended = bool(data.records[episode[-1]]["ended"][e])
        if strategy == "final" and not ended:
            assert not mask[i], "a running episode has no final goal yet"
            continue
        eligible += 1
        if not mask[i]:
            continue
        uid, t = goals[i]
        assert uid == data.records[s]["uid"][e]  # same episode
        reachable = [data.records[j]["t"][e] + 1 for j in episode]  # achieved next goals
        own = data.records[s]["t"][e] + 1
        if strategy == "future":
            assert own <= t <= reachable[-1]
        elif strategy == "final":
            assert t == reachable[-1]
        else:
            assert reachable[0] <= t <= reachable[-1]
        # the relabelled goal is in both observations and the reward is recomputed for it
        assert np.array_equal(batch.next_obs["desired_goal"][i].numpy(), goals[i])
        next_achieved = batch.next_obs["achieved_goal"][i].numpy()
        expected = reward_fn(next_achieved[None], goals[i][None], [{}])[0]
        assert float(batch.rewards[i]) == expected
    # the data covers the hard cases: running episodes and episodes whose head was evicted
    assert any(not data.records[-1]["ended"][e] for e in range(2))
    assert (storage.episode_start[batch.indices.numpy()] < oldest).any()
    frac = mask.sum() / eligible
    assert abs(frac - 0.8) < 0.04  # k = 4: 4 of 5 eligible transitions relabelled
    # relabelling draws goals across the whole allowed range, not just one end of it
    assert (batch.rewards[torch.from_numpy(mask)] == 0).any()
    if strategy != "final":
        assert (batch.rewards[torch.from_numpy(mask)] == -1).any()


def test_originals_keep_their_goal_and_reward():
    storage = make("future", k=1)
    GoalData(2, seed=1).run(storage, 40)
    batch = storage.sample(1000, torch.Generator().manual_seed(2))
    keep = ~relabelled(batch)
    assert 0.4 < keep.mean() < 0.6  # k = 1: half relabelled
    np.testing.assert_array_equal(batch.rewards.numpy()[keep], -1.0)
    none = make("future", k=0)
    GoalData(2, seed=1).run(none, 10)
    assert not relabelled(none.sample(200)).any()


def test_n_step_rewards_are_recomputed_for_every_step_of_the_window():
    gamma = 0.5
    storage = make("future", n_step=3, gamma=gamma, capacity=100, num_envs=1)
    data = GoalData(1, seed=3, max_len=5).run(storage, 40)
    batch = storage.sample(2000, torch.Generator().manual_seed(0))
    steps = storage.locate(batch.indices)[0]
    mask = relabelled(batch)
    assert mask.any()
    for i in np.flatnonzero(mask):
        s, goal = int(steps[i]), batch.obs["desired_goal"][i].numpy()
        ret, k = 0.0, 0
        for j in range(3):
            if s + j >= len(data.records):
                break
            rec = data.records[s + j]
            achieved = np.array([rec["uid"][0], rec["t"][0] + 1], np.float32)
            ret += gamma**j * float(reward_fn(achieved[None], goal[None], [{}])[0])
            k += 1
            if rec["ended"][0]:
                break
        assert float(batch.rewards[i]) == pytest.approx(ret)
        term = bool(data.records[s + k - 1]["term"][0])  # env termination is kept
        assert float(batch.discounts[i]) == pytest.approx(0.0 if term else gamma**k)


def test_terminated_fn_recomputes_termination_for_the_new_goal():
    storage = make(
        "future", n_step=3, gamma=0.5, capacity=100, num_envs=1, terminated_fn=success_fn
    )
    data = GoalData(1, seed=4, max_len=5).run(storage, 40)
    batch = storage.sample(2000, torch.Generator().manual_seed(0))
    steps = storage.locate(batch.indices)[0]
    mask = relabelled(batch)
    for i in np.flatnonzero(mask):
        s, goal = int(steps[i]), batch.obs["desired_goal"][i].numpy()
        ret, k, reached = 0.0, 0, False
        for j in range(3):
            if s + j >= len(data.records):
                break
            rec = data.records[s + j]
            achieved = np.array([rec["uid"][0], rec["t"][0] + 1], np.float32)
            reached = bool(np.all(achieved == goal))
            ret += 0.5**j * (0.0 if reached else -1.0)
            k += 1
            if reached or rec["ended"][0]:
                break
        assert float(batch.rewards[i]) == pytest.approx(ret)
        # success under the new goal ends the episode (discount 0); an env termination that
        # the new goal does not share is a cut, bootstrapped like a truncation
        assert float(batch.discounts[i]) == pytest.approx(0.0 if reached else 0.5**k)
        assert float(batch.next_obs["achieved_goal"][i][1]) == data.records[s + k - 1]["t"][0] + 1


def test_config_with_an_import_path_reward_fn_round_trips():
    her = HindsightRelabeler("numpy:isclose", strategy="episode", k=2)
    assert her.reward_fn is np.isclose
    storage = ReplayStorage(SPACE, spaces.Discrete(2), capacity=8, her=her)
    rebuilt = build_from_spec("storage", storage.spec())
    assert rebuilt.her.strategy == "episode" and rebuilt.her.k == 2
    with pytest.raises(NotSerializableError, match="reward_fn"):
        make("future").spec()


def test_her_errors():
    with pytest.raises(TypeError, match="goal-conditioned Dict observation space"):
        ReplayStorage(GOAL, spaces.Discrete(2), capacity=8, her=HindsightRelabeler(reward_fn))
    no_desired = spaces.Dict({"observation": GOAL, "achieved_goal": GOAL})
    with pytest.raises(TypeError, match="achieved_goal', 'desired_goal'"):
        ReplayStorage(no_desired, spaces.Discrete(2), capacity=8, her=HindsightRelabeler(reward_fn))
    other = spaces.Dict(
        {"observation": GOAL, "achieved_goal": GOAL, "desired_goal": spaces.Box(0, 1, (3,))}
    )
    with pytest.raises(ValueError, match="same shape"):
        ReplayStorage(other, spaces.Discrete(2), capacity=8, her=HindsightRelabeler(reward_fn))
    with pytest.raises(ValueError, match="unknown strategy 'past'"):
        HindsightRelabeler(reward_fn, strategy="past")
    with pytest.raises(ValueError, match="k must be an int >= 0"):
        HindsightRelabeler(reward_fn, k=-1)
    with pytest.raises(TypeError, match="reward_fn must be a callable or an import path"):
        HindsightRelabeler("not a function")
    scalar = ReplayStorage(
        SPACE,
        spaces.Discrete(2),
        capacity=20,
        her=HindsightRelabeler(lambda a, d, info: 0.0, k=100),
    )
    GoalData(1, seed=0).run(scalar, 10)
    with pytest.raises(ValueError, match="must be vectorised like compute_reward"):
        scalar.sample(16, torch.Generator().manual_seed(0))
