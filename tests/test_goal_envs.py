"""Goal-conditioned tasks for HER: rlkit/BitFlipping-v0 and rlkit/PointGoal-v0."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlkit.envs  # noqa: F401  (registers the tasks)
from rlkit.envs import make_vec_env
from rlkit.envs.goals import BIT_FLIPPING_ID, POINT_GOAL_ID, BitFlipping, PointGoal

KEYS = {"observation", "achieved_goal", "desired_goal"}


@pytest.mark.parametrize("env_id", [BIT_FLIPPING_ID, POINT_GOAL_ID])
def test_passes_gymnasium_env_checker_and_spaces(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    space = env.observation_space
    assert isinstance(space, gym.spaces.Dict) and set(space.spaces) == KEYS
    for sub in space.spaces.values():
        assert isinstance(sub, gym.spaces.Box) and sub.dtype == np.float32
    obs, info = env.reset(seed=0)
    assert space.contains(obs) and info["is_success"] is False
    np.testing.assert_array_equal(obs["observation"], obs["achieved_goal"])


def test_bit_flipping_dynamics_reward_and_termination() -> None:
    env = BitFlipping(n_bits=5)
    assert env.action_space == gym.spaces.Discrete(5) and env.max_steps == 5
    obs, _ = env.reset(seed=3)
    start, goal = obs["achieved_goal"].copy(), obs["desired_goal"].copy()
    assert not np.array_equal(start, goal)
    wrong = np.flatnonzero(start != goal)
    # Flip a bit that already matches: still not solved, reward -1, state changes in one place.
    right = np.flatnonzero(start == goal)
    if right.size:
        obs, reward, terminated, truncated, info = env.step(int(right[0]))
        assert (reward, terminated, truncated, info["is_success"]) == (-1.0, False, False, False)
        assert np.sum(obs["achieved_goal"] != start) == 1
        env.step(int(right[0]))  # undo
    for k, bit in enumerate(wrong):
        obs, reward, terminated, truncated, info = env.step(int(bit))
        last = k == len(wrong) - 1
        assert reward == (0.0 if last else -1.0)
        assert terminated is last and info["is_success"] is last and truncated is False
    np.testing.assert_array_equal(obs["achieved_goal"], goal)
    np.testing.assert_array_equal(obs["desired_goal"], goal)
    with pytest.raises(ValueError, match="action must be in"):
        env.step(5)


def test_bit_flipping_truncates_after_max_steps() -> None:
    env = BitFlipping(n_bits=4, max_steps=3)
    obs, _ = env.reset(seed=0)
    matching = np.flatnonzero(obs["achieved_goal"] == obs["desired_goal"])
    # flipping a matching bit (or any bit when all 4 differ) back and forth never solves it
    bit = int(matching[0]) if matching.size else 0
    results = [env.step(bit) for _ in range(3)]  # flip the same bit back and forth
    assert [r[3] for r in results] == [False, False, True]
    assert not any(r[2] for r in results)


def test_bit_flipping_start_never_solved_and_goals_vary() -> None:
    env = BitFlipping(n_bits=1)  # the goal must be the other bit every time
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        assert obs["achieved_goal"][0] != obs["desired_goal"][0]
    env = BitFlipping(n_bits=12)
    goals = {tuple(env.reset(seed=s)[0]["desired_goal"]) for s in range(20)}
    assert len(goals) > 15


def test_compute_reward_is_vectorised_and_matches_step() -> None:
    env = BitFlipping(n_bits=3)
    achieved = np.array([[0, 1, 0], [1, 1, 1], [0, 0, 0]], dtype=np.float32)
    desired = np.array([[0, 1, 0], [1, 0, 1], [0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(env.compute_reward(achieved, desired, {}), [0.0, -1.0, 0.0])
    batched = env.compute_reward(achieved[None].repeat(2, 0), desired[None].repeat(2, 0), None)
    assert batched.shape == (2, 3) and batched.dtype == np.float32
    with pytest.raises(ValueError, match="same shape"):
        env.compute_reward(achieved, desired[:, :2], None)

    point = PointGoal(tolerance=0.1)
    r = point.compute_reward(
        np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([[0.05, 0.05], [0.2, 0.0]]), None
    )
    np.testing.assert_array_equal(r, [0.0, -1.0])
    # step rewards agree with compute_reward on the returned goals
    for env_ in (BitFlipping(n_bits=4), PointGoal()):
        obs, _ = env_.reset(seed=1)
        env_.action_space.seed(1)
        for _ in range(10):
            obs, reward, terminated, truncated, _ = env_.step(env_.action_space.sample())
            assert reward == env_.compute_reward(obs["achieved_goal"], obs["desired_goal"], {})
            if terminated or truncated:
                obs, _ = env_.reset()


def test_point_goal_moves_and_succeeds() -> None:
    env = PointGoal(max_speed=0.1, tolerance=0.1, max_steps=60)
    obs, _ = env.reset(seed=5)
    start, goal = obs["observation"].copy(), obs["desired_goal"]
    assert np.linalg.norm(goal - start) >= 0.2
    obs, *_ = env.step(np.array([1.0, -1.0], dtype=np.float32))
    expected = np.clip(start + np.array([0.1, -0.1]), -1, 1)
    np.testing.assert_allclose(obs["observation"], expected, atol=1e-6)
    terminated = False
    for _ in range(59):  # steer straight at the goal
        direction = (goal - obs["observation"]) / env.max_speed
        obs, reward, terminated, _, info = env.step(np.clip(direction, -1, 1))
        if terminated:
            break
    assert terminated and reward == 0.0 and info["is_success"]
    with pytest.raises(ValueError, match="2 finite numbers"):
        env.step(np.array([np.nan, 0.0]))


def test_random_policy_rarely_solves_15_bits() -> None:
    """The reason HER is needed: random exploration essentially never sees a reward."""
    env = make_vec_env(BIT_FLIPPING_ID, num_envs=8, seed=0, env_kwargs={"n_bits": 15})
    env.reset(seed=0)
    successes = episodes = 0
    while episodes < 400:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        successes += int(terminated.sum())
        episodes += int(np.logical_or(terminated, truncated).sum())
    assert successes / episodes < 0.01
    env.close()


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (BitFlipping, {"n_bits": 0}, "n_bits"),
        (BitFlipping, {"n_bits": 4, "max_steps": 0}, "max_steps"),
        (PointGoal, {"tolerance": 0.0}, "tolerance"),
        (PointGoal, {"max_speed": 3.0}, "max_speed"),
        (PointGoal, {"max_steps": 0}, "max_steps"),
    ],
)
def test_bad_arguments_name_the_argument(cls: type, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_module_goal_functions_match_the_envs_and_resolve_by_import_path() -> None:
    """HER configs name these by import path; they must agree with compute_reward."""
    from rlkit.envs import goals
    from rlkit.storages import HindsightRelabeler

    rng = np.random.default_rng(0)
    bits = BitFlipping(n_bits=6)
    achieved = rng.integers(0, 2, (200, 6)).astype(np.float32)
    desired = achieved.copy()
    desired[::2, 0] = 1 - desired[::2, 0]  # every other row misses one bit
    reward = bits.compute_reward(achieved, desired, None)
    np.testing.assert_array_equal(reward, np.tile([-1.0, 0.0], 100))
    np.testing.assert_array_equal(goals.bit_flipping_reward(achieved, desired), reward)
    np.testing.assert_array_equal(goals.bit_flipping_success(achieved, desired), reward == 0)
    point = PointGoal()
    a = rng.uniform(-1, 1, (200, 2)).astype(np.float32)
    d = a + rng.normal(0, 0.1, (200, 2)).astype(np.float32)
    reward = point.compute_reward(a, d, None)
    assert 0 < (reward == 0).mean() < 1
    np.testing.assert_array_equal(goals.point_goal_reward(a, d), reward)
    np.testing.assert_array_equal(goals.point_goal_success(a, d), reward == 0)
    her = HindsightRelabeler(
        "rlkit.envs.goals:bit_flipping_reward",
        terminated_fn="rlkit.envs.goals:bit_flipping_success",
    )
    assert her.reward_fn is goals.bit_flipping_reward
    assert her.terminated_fn is goals.bit_flipping_success
