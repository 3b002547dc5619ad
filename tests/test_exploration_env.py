"""The exploration testbeds rlkit/SparseGridMaze-v0 and rlkit/DeepChain-v0."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlkit.envs import DeepChain, SparseGridMaze, make_vec_env

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3


def test_registered_ids_build_the_envs() -> None:
    grid = gym.make("rlkit/SparseGridMaze-v0")
    chain = gym.make("rlkit/DeepChain-v0", length=7)
    assert isinstance(grid.unwrapped, SparseGridMaze)
    assert isinstance(chain.unwrapped, DeepChain) and chain.unwrapped.length == 7
    grid.close()
    chain.close()


@pytest.mark.parametrize(
    "env",
    [
        SparseGridMaze(),
        SparseGridMaze(size=9, rooms=True, obs_type="coords"),
        DeepChain(),
        DeepChain(length=5, obs_type="coords"),
    ],
    ids=["grid", "rooms_coords", "chain", "chain_coords"],
)
def test_gymnasium_env_checker_passes(env: gym.Env) -> None:  # type: ignore[type-arg]
    check_env(env, skip_render_check=True)


def test_grid_spaces_observations_and_moves() -> None:
    env = SparseGridMaze(size=4)
    assert env.observation_space.shape == (16,) and env.action_space.n == 4
    obs, info = env.reset(seed=0)
    assert info == {}
    assert obs.dtype == np.float32 and obs[0] == 1.0 and obs.sum() == 1.0
    obs, reward, terminated, truncated, _ = env.step(UP)  # into the border: stays
    assert obs[0] == 1.0 and (reward, terminated, truncated) == (0.0, False, False)
    obs, *_ = env.step(RIGHT)
    assert obs[1] == 1.0
    obs, *_ = env.step(DOWN)
    assert obs[5] == 1.0
    coords = SparseGridMaze(size=5, obs_type="coords")
    obs, _ = coords.reset()
    np.testing.assert_allclose(obs, [0.0, 0.0])
    obs, *_ = coords.step(DOWN)
    np.testing.assert_allclose(obs, [0.25, 0.0])


def test_grid_reward_only_at_the_goal_and_terminates() -> None:
    env = SparseGridMaze(size=3)
    env.reset()
    total = 0.0
    for action in (RIGHT, RIGHT, DOWN):
        _, reward, terminated, truncated, _ = env.step(action)
        total += reward
        assert not terminated and not truncated
    _, reward, terminated, truncated, _ = env.step(DOWN)
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert total == 0.0


def test_grid_truncates_after_max_steps() -> None:
    env = SparseGridMaze(size=5, max_steps=3)
    assert SparseGridMaze(size=6).max_steps == 24  # default 4 * size
    env.reset()
    flags = [env.step(LEFT)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


def test_rooms_walls_block_moves_and_doorways_connect_every_room() -> None:
    env = SparseGridMaze(size=9, rooms=True)
    walls = env.walls
    mid = 4
    assert walls[mid].sum() == 9 - 2 and walls[:, mid].sum() == 9 - 2  # one doorway per half
    # breadth-first search from the start reaches every free cell, the goal included
    free = ~walls
    seen = {(0, 0)}
    frontier = [(0, 0)]
    while frontier:
        r, c = frontier.pop()
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nr, nc = r + dr, c + dc
            if 0 <= nr < 9 and 0 <= nc < 9 and free[nr, nc] and (nr, nc) not in seen:
                seen.add((nr, nc))
                frontier.append((nr, nc))
    assert len(seen) == env.num_states == int(free.sum())
    assert (8, 8) in seen
    env.reset()
    for _ in range(10):
        env.step(DOWN)
    assert env.visit_counts.reshape(9, 9)[mid:, 0].sum() == 0, "the wall stopped the agent"


def test_visit_counts_track_every_state_visited() -> None:
    env = SparseGridMaze(size=3)
    env.reset()
    env.step(RIGHT)
    env.step(LEFT)
    env.reset()
    np.testing.assert_array_equal(env.visit_counts, [3, 1, 0, 0, 0, 0, 0, 0, 0])
    vec = make_vec_env("rlkit/DeepChain-v0", num_envs=2, seed=0, env_kwargs={"length": 4})
    vec.step(np.zeros(2, dtype=np.int64))
    counts = np.sum(vec.unwrapped.get_attr("visit_counts"), axis=0)
    assert counts.sum() == 4  # two resets and two steps
    vec.close()


def test_chain_lock_moves_on_or_back_to_the_start() -> None:
    env = DeepChain(length=5, lock_seed=3)
    assert env.max_steps == 10
    np.testing.assert_array_equal(env.lock, DeepChain(length=5, lock_seed=3).lock)
    assert not np.array_equal(
        DeepChain(length=30, lock_seed=0).lock, DeepChain(length=30, lock_seed=1).lock
    )
    obs, _ = env.reset()
    assert obs.argmax() == 0
    obs, reward, terminated, _, _ = env.step(int(env.lock[0]))
    assert obs.argmax() == 1 and reward == 0.0 and not terminated
    obs, *_ = env.step(1 - int(env.lock[1]))
    assert obs.argmax() == 0, "a wrong action sends the agent back to the start"
    for state in range(4):
        obs, reward, terminated, truncated, _ = env.step(int(env.lock[state]))
    assert (obs.argmax(), reward, terminated, truncated) == (4, 1.0, True, False)


def test_chain_random_policy_never_opens_a_long_lock() -> None:
    env = DeepChain(length=16)
    rng = np.random.default_rng(12345)  # not the lock's seed: the same bits would open it
    total = 0.0
    for episode in range(200):
        env.reset(seed=episode)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(int(rng.integers(2)))
            total += reward
            done = terminated or truncated
    assert total == 0.0
    assert env.visit_counts[-1] == 0 and (env.visit_counts > 0).sum() < env.length


def test_bad_arguments_name_the_problem() -> None:
    with pytest.raises(ValueError, match="size"):
        SparseGridMaze(size=1)
    with pytest.raises(ValueError, match="rooms"):
        SparseGridMaze(size=4, rooms=True)
    with pytest.raises(ValueError, match="obs_type"):
        SparseGridMaze(obs_type="pixels")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_steps"):
        DeepChain(max_steps=0)
    with pytest.raises(ValueError, match="length"):
        DeepChain(length=1)
    with pytest.raises(ValueError, match="action"):
        SparseGridMaze().step(4)
    with pytest.raises(ValueError, match="action"):
        DeepChain().step(2)


def test_render_draws_walls_goal_and_agent() -> None:
    env = SparseGridMaze(size=5, rooms=True)
    env.reset()
    frame = env.render()
    assert frame.shape == (40, 40, 3) and frame.dtype == np.uint8
    assert tuple(frame[0, 0]) == (220, 0, 0)
    assert tuple(frame[39, 39]) == (0, 200, 0)
