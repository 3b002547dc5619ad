"""Vector-env factory, serial/async equivalence, final observations and episode statistics."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlkit.agents import A2C, PPO
from rlkit.envs import EpisodeTracker, env_spec_of, make_vec_env


def _pendulum() -> gym.Env[Any, Any]:
    return gym.make("Pendulum-v1")


def _run_random(
    env: gym.vector.VectorEnv, steps: int, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray], list[Any]]:
    """Reset with ``seed`` and step ``steps`` times with actions from the seeded action space."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    all_obs, rewards, terms, truncs, finals = [obs], [], [], [], []
    for _ in range(steps):
        obs, rew, term, trunc, info = env.step(env.action_space.sample())
        all_obs.append(obs)
        rewards.append(rew)
        terms.append(term)
        truncs.append(trunc)
        done = np.logical_or(term, trunc)
        if done.any():
            finals.append(np.stack([info["final_obs"][i] for i in np.flatnonzero(done)]))
    return all_obs, rewards, terms, truncs, finals


# --------------------------------------------------------------------------- construction
def test_make_vec_env_with_id() -> None:
    env = make_vec_env("CartPole-v1", num_envs=3, seed=0)
    try:
        assert env.num_envs == 3
        assert env.single_observation_space.shape == (4,)
        assert isinstance(env.single_action_space, gym.spaces.Discrete)
        assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
        spec = env_spec_of(env)
        assert spec is not None
        assert spec.env_id == "CartPole-v1"
        assert (spec.num_envs, spec.seed, spec.asynchronous) == (3, 0, False)
        obs, *_ = env.step(np.zeros(3, dtype=np.int64))
        assert obs.shape == (3, 4)
    finally:
        env.close()


def test_make_vec_env_with_callable_and_kwargs() -> None:
    env = make_vec_env(_pendulum, num_envs=2, seed=1)
    try:
        assert env.single_observation_space.shape == (3,)
        spec = env_spec_of(env)
        assert spec is not None and spec.env_id is None and spec.env is _pendulum
    finally:
        env.close()
    env = make_vec_env("Pendulum-v1", num_envs=1, seed=0, env_kwargs={"g": 5.0})
    try:
        assert env.unwrapped.envs[0].unwrapped.g == 5.0
        assert env_spec_of(env).env_kwargs == {"g": 5.0}  # type: ignore[union-attr]
    finally:
        env.close()


def test_make_vec_env_seeding_is_reproducible() -> None:
    runs = []
    for seed in (7, 7, 8):
        env = make_vec_env("CartPole-v1", num_envs=2, seed=seed)
        runs.append(_run_random(env, 60, seed))
        env.close()
    (obs_a, rew_a, *_), (obs_b, rew_b, *_), (obs_c, *_) = runs
    np.testing.assert_array_equal(np.stack(obs_a), np.stack(obs_b))
    np.testing.assert_array_equal(np.stack(rew_a), np.stack(rew_b))
    assert not np.array_equal(obs_a[0], obs_c[0])
    # sub-env i is seeded with seed + i, so the two sub-envs start differently
    assert not np.array_equal(obs_a[0][0], obs_a[0][1])


def test_make_vec_env_seed_applies_on_construction() -> None:
    """Without an explicit reset, two envs built with the same seed step identically."""
    envs = [make_vec_env("CartPole-v1", num_envs=2, seed=3) for _ in range(2)]
    try:
        outs = [[e.step(e.action_space.sample())[0] for _ in range(20)] for e in envs]
        np.testing.assert_array_equal(np.stack(outs[0]), np.stack(outs[1]))
    finally:
        for e in envs:
            e.close()


@pytest.mark.parametrize(
    ("env_id", "num_envs", "steps"),
    [("CartPole-v1", 3, 300), ("Pendulum-v1", 2, 230)],
)
def test_serial_and_async_are_identical(env_id: str, num_envs: int, steps: int) -> None:
    results = []
    for asynchronous in (False, True):
        env = make_vec_env(env_id, num_envs=num_envs, seed=11, asynchronous=asynchronous)
        try:
            results.append(_run_random(env, steps, seed=11))
        finally:
            env.close()
    (obs_s, rew_s, term_s, trunc_s, fin_s), (obs_a, rew_a, term_a, trunc_a, fin_a) = results
    np.testing.assert_array_equal(np.stack(obs_s), np.stack(obs_a))
    np.testing.assert_array_equal(np.stack(rew_s), np.stack(rew_a))
    np.testing.assert_array_equal(np.stack(term_s), np.stack(term_a))
    np.testing.assert_array_equal(np.stack(trunc_s), np.stack(trunc_a))
    assert len(fin_s) == len(fin_a) > 0
    for a, b in zip(fin_s, fin_a, strict=True):
        np.testing.assert_array_equal(a, b)
    if env_id == "Pendulum-v1":
        truncated = np.stack(trunc_s)
        # Pendulum never terminates and is truncated after exactly 200 steps
        assert not np.stack(term_s).any()
        assert truncated[199].all()
        assert truncated.sum() == num_envs
    else:
        assert np.stack(term_s).any()


@pytest.mark.parametrize(("env_id", "num_steps"), [("CartPole-v1", 64), ("Pendulum-v1", 210)])
def test_ppo_rollout_serial_equals_async(env_id: str, num_steps: int) -> None:
    storages = []
    for asynchronous in (False, True):
        env = make_vec_env(env_id, num_envs=2, seed=5, asynchronous=asynchronous)
        try:
            agent = PPO(env, seed=5, num_steps=num_steps)
            agent.collect_rollout()
            s = agent.storage
            storages.append(
                {
                    k: getattr(s, k).clone()
                    for k in ("obs", "actions", "rewards", "dones", "values", "log_probs")
                }
            )
            assert agent.global_step == 2 * num_steps
        finally:
            env.close()
    serial, asyn = storages
    for key in serial:
        torch.testing.assert_close(serial[key], asyn[key], rtol=0, atol=0, msg=key)
    if env_id == "Pendulum-v1":
        # the rollout crossed Pendulum's 200-step truncation in both envs
        assert serial["dones"][199].tolist() == [1.0, 1.0]


def test_final_obs_in_info_at_episode_ends() -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    try:
        obs, _ = env.reset(seed=0)
        ends = 0
        for _ in range(200):
            prev = obs
            obs, _, term, trunc, info = env.step(env.action_space.sample())
            done = np.logical_or(term, trunc)
            if not done.any():
                assert "final_obs" not in info or not np.any(info.get("_final_obs", False))
                continue
            assert "final_obs" in info
            np.testing.assert_array_equal(info["_final_obs"], done)
            assert "episode" in info
            np.testing.assert_array_equal(info["_episode"], done)
            for i in np.flatnonzero(done):
                ends += 1
                final = info["final_obs"][i]
                assert final.shape == (4,)
                # the final observation is the terminal state (pole fell or cart out of bounds),
                # not the reset observation returned in its place
                assert abs(final[2]) > 0.2095 or abs(final[0]) > 2.4
                assert np.all(np.abs(obs[i]) <= 0.05)
                # and it continues from the previous observation (one physics step)
                assert np.abs(final - prev[i]).max() < 1.0
        assert ends >= 3
    finally:
        env.close()


def test_final_obs_on_truncation() -> None:
    env = make_vec_env("Pendulum-v1", num_envs=1, seed=0)
    try:
        env.reset(seed=0)
        for t in range(200):
            obs, _, term, trunc, info = env.step(np.zeros((1, 1), dtype=np.float32))
            if t < 199:
                assert not trunc[0]
        assert trunc[0] and not term[0]
        assert info["_final_obs"][0]
        final = info["final_obs"][0]
        assert final.shape == (3,)
        assert not np.array_equal(final, obs[0])
        assert info["episode"]["l"][0] == 200
    finally:
        env.close()


# --------------------------------------------------------------------------- EpisodeTracker
def test_episode_tracker_matches_manual_counts_on_real_env() -> None:
    env = make_vec_env("CartPole-v1", num_envs=3, seed=2)
    tracker = EpisodeTracker(3, window=1000)
    run_ret, run_len = np.zeros(3), np.zeros(3, dtype=np.int64)
    returns: list[float] = []
    lengths: list[int] = []
    try:
        env.reset(seed=2)
        for _ in range(300):
            _, rew, term, trunc, info = env.step(env.action_space.sample())
            done = np.logical_or(term, trunc)
            tracker.step(rew, done, info)
            run_ret += rew
            run_len += 1
            for i in np.flatnonzero(done):
                returns.append(float(run_ret[i]))
                lengths.append(int(run_len[i]))
            run_ret[done] = 0
            run_len[done] = 0
    finally:
        env.close()
    assert len(returns) > 5
    assert sorted(tracker.returns) == sorted(returns)
    assert sorted(tracker.lengths) == sorted(lengths)
    assert tracker.episodes == len(returns)
    assert tracker.return_mean == pytest.approx(np.mean(returns))
    assert tracker.length_mean == pytest.approx(np.mean(lengths))


def test_episode_tracker_without_episode_info() -> None:
    tracker = EpisodeTracker(2, window=2)
    assert tracker.return_mean is None and tracker.length_mean is None
    no = np.array([False, False])
    tracker.step(np.array([1.0, 2.0]), no, {})
    tracker.step(np.array([1.5, 2.0]), np.array([True, False]), {})
    assert list(tracker.returns) == [2.5]
    assert list(tracker.lengths) == [2]
    assert tracker.episodes == 1
    tracker.step(np.array([3.0, 1.0]), np.array([True, True]), {})
    # env 0 restarted: one step of 3.0; env 1: 2 + 2 + 1 over 3 steps
    assert tracker.episodes == 3
    # window=2 keeps the last two episodes
    assert list(tracker.returns) == [3.0, 5.0]
    assert list(tracker.lengths) == [1, 3]
    assert tracker.return_mean == pytest.approx(4.0)
    assert tracker.length_mean == pytest.approx(2.0)


# --------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("num_envs", [0, -2])
def test_num_envs_must_be_positive(num_envs: int) -> None:
    with pytest.raises(ValueError, match=r"num_envs must be >= 1"):
        make_vec_env("CartPole-v1", num_envs=num_envs)


def test_env_must_be_id_or_callable() -> None:
    with pytest.raises(TypeError, match=r"env id string or a callable, got int"):
        make_vec_env(42)  # type: ignore[arg-type]


def test_callable_must_return_env() -> None:
    with pytest.raises(TypeError, match=r"returned str, expected a gymnasium.Env"):
        make_vec_env(lambda: "not an env")  # type: ignore[arg-type,return-value]


def test_env_kwargs_with_callable_rejected() -> None:
    with pytest.raises(ValueError, match=r"env_kwargs are only used with an env id"):
        make_vec_env(_pendulum, env_kwargs={"g": 1.0})


def test_unknown_env_id() -> None:
    with pytest.raises(gym.error.Error, match="NoSuchEnv"):
        make_vec_env("NoSuchEnv-v0")


@pytest.mark.parametrize("agent_cls", [PPO, A2C])
def test_next_step_autoreset_rejected(agent_cls: type) -> None:
    env = SyncVectorEnv(
        [lambda: gym.make("CartPole-v1")] * 2, autoreset_mode=AutoresetMode.NEXT_STEP
    )
    try:
        with pytest.raises(ValueError, match="SAME_STEP"):
            agent_cls(env)
    finally:
        env.close()


def test_hand_built_same_step_env_accepted() -> None:
    env = SyncVectorEnv(
        [lambda: gym.make("CartPole-v1")] * 2, autoreset_mode=AutoresetMode.SAME_STEP
    )
    try:
        agent = PPO(env, seed=0, num_steps=8)
        agent.collect_rollout()
        assert agent.global_step == 16
    finally:
        env.close()
