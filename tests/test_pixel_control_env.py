"""rlkit/PixelPointMass-v0: spaces, rendering, frame stack, dynamics, reward, episode ends."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlkit.envs  # noqa: F401  (registers the task)
from rlkit.envs import make_vec_env
from rlkit.envs.pixel_control import ENV_ID, PixelPointMass


def _blob_centre(channel: np.ndarray) -> np.ndarray:
    """Intensity-weighted (x, y) centre of a blob, in [-1, 1] coordinates."""
    size = channel.shape[0]
    centres = np.linspace(-1 + 1 / size, 1 - 1 / size, size)
    w = channel.astype(np.float64)
    return np.array([(w.sum(0) * centres).sum(), (w.sum(1) * centres).sum()]) / w.sum()


def test_passes_gymnasium_env_checker() -> None:
    env = gym.make(ENV_ID)
    check_env(env.unwrapped)
    assert env.observation_space == gym.spaces.Box(0, 255, (9, 24, 24), np.uint8)
    assert env.action_space == gym.spaces.Box(-1, 1, (2,), np.float32)


def test_frames_show_point_and_target_where_they_are() -> None:
    env = PixelPointMass(size=48, frame_stack=1)
    env.reset(seed=0)
    frame = env._frame()
    assert frame.shape == (3, 48, 48) and frame.dtype == np.uint8
    assert frame[2].max() == 0 and frame[0].max() > 200 and frame[1].max() > 200
    # sub-pixel precision: blob centres match the true positions to a fraction of a pixel
    np.testing.assert_allclose(_blob_centre(frame[0]), env._pos, atol=0.02)
    np.testing.assert_allclose(_blob_centre(frame[1]), env._target, atol=0.02)
    assert env.render().shape == (48, 48, 3)


def test_frame_stack_repeats_first_frame_and_shifts_oldest_first() -> None:
    env = PixelPointMass(frame_stack=3)
    obs0, _ = env.reset(seed=1)
    np.testing.assert_array_equal(obs0[0:3], obs0[3:6])
    np.testing.assert_array_equal(obs0[3:6], obs0[6:9])
    obs1, *_ = env.step(np.array([1.0, 0.0]))
    obs2, *_ = env.step(np.array([1.0, 0.0]))
    np.testing.assert_array_equal(obs2[0:3], obs1[3:6])  # oldest first
    np.testing.assert_array_equal(obs2[3:6], obs1[6:9])
    np.testing.assert_array_equal(obs2[6:9], env._frame())
    assert not np.array_equal(obs2[6:9], obs2[3:6])  # the point moved


def test_velocity_control_reward_and_truncation_only() -> None:
    env = PixelPointMass(max_steps=5, max_speed=0.1)
    _, info = env.reset(seed=2)
    pos = env._pos.copy()
    for t in range(5):
        _, reward, terminated, truncated, info = env.step(np.array([0.5, -2.0]))
        pos = np.clip(pos + 0.1 * np.array([0.5, -1.0]), -1, 1)  # actions are clipped
        np.testing.assert_allclose(env._pos, pos)
        distance = np.linalg.norm(pos - env._target)
        assert reward == pytest.approx(-distance) and info["distance"] == pytest.approx(distance)
        assert terminated is False and truncated is (t == 4)


def test_force_control_integrates_velocity_and_walls_stop_the_mass() -> None:
    env = PixelPointMass(control="force", max_speed=0.1, damping=0.5, max_steps=100)
    env.reset(seed=3)
    start = env._pos.copy()
    env.step(np.array([1.0, 0.0]))
    np.testing.assert_allclose(env._pos, start + np.array([0.05, 0.0]))
    env.step(np.array([1.0, 0.0]))  # v = 0.5 * 0.05 + 0.05
    np.testing.assert_allclose(env._pos, start + np.array([0.05 + 0.075, 0.0]))
    for _ in range(60):
        env.step(np.array([1.0, 0.0]))
    assert env._pos[0] == 1.0 and env._vel[0] == 0.0
    assert np.linalg.norm(env._vel) <= env.max_speed + 1e-12


def test_steering_at_the_target_beats_random_by_far() -> None:
    """The learning-test threshold rests on this gap: random ~-49, straight line ~-4.4."""

    def mean_return(policy: str, episodes: int = 40) -> float:
        env = PixelPointMass()
        env.action_space.seed(0)
        total = 0.0
        for ep in range(episodes):
            env.reset(seed=100 + ep)
            done = False
            while not done:
                if policy == "random":
                    action = env.action_space.sample()
                else:
                    action = np.clip((env._target - env._pos) / env.max_speed, -1, 1)
                _, r, terminated, truncated, _ = env.step(action)
                total += r
                done = terminated or truncated
        return total / episodes

    random_return, greedy_return = mean_return("random"), mean_return("greedy")
    assert -60 < random_return < -38
    assert -7 < greedy_return < -2


def test_vector_env_autoreset_keeps_final_obs() -> None:
    env = make_vec_env(ENV_ID, num_envs=2, seed=0, env_kwargs={"max_steps": 3})
    env.reset(seed=0)
    for _ in range(3):
        obs, _, terminated, truncated, info = env.step(np.zeros((2, 2), dtype=np.float32))
    assert truncated.all() and not terminated.any()
    assert info["final_obs"][0].shape == (9, 24, 24)
    np.testing.assert_array_equal(obs[:, 0:3], obs[:, 6:9])  # new episode: repeated frame
    env.close()


def test_reset_is_seeded() -> None:
    a, b = PixelPointMass(), PixelPointMass()
    np.testing.assert_array_equal(a.reset(seed=7)[0], b.reset(seed=7)[0])
    assert not np.array_equal(a.reset(seed=8)[0], b.reset(seed=9)[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 4}, "size"),
        ({"frame_stack": 0}, "frame_stack"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_speed": 0.0}, "max_speed"),
        ({"control": "torque"}, "control"),
        ({"damping": 1.5}, "damping"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PixelPointMass(**kwargs)
    with pytest.raises(ValueError, match="2 finite numbers"):
        env = PixelPointMass()
        env.reset(seed=0)
        env.step(np.array([0.0, np.inf]))
