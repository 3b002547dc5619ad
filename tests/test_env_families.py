"""Env families (rlkit.envs.families): ids get their standard preprocessing, missing packages
name the extra, and each family trains from one ``rlkit train`` command (short budgets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest

from rlkit.cli.main import main
from rlkit.envs import (
    ENV_FAMILIES,
    EnvFamily,
    FlattenDict,
    MissingExtraError,
    build_family,
    family_for,
    make_vec_env,
    reports_games,
)


def needs(*modules: str) -> pytest.MarkDecorator:
    """Skip (saying which extra is missing) unless every module imports."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")


ATARI = needs("ale_py", "cv2")
MINIGRID = needs("minigrid")
DMC = needs("shimmy", "dm_control")
MUJOCO = needs("mujoco")
BOX2D = needs("Box2D")


@pytest.mark.parametrize(
    ("env_id", "family"),
    [
        ("ALE/Breakout-v5", "atari"),
        ("PongNoFrameskip-v4", "atari"),
        ("MiniGrid-DoorKey-5x5-v0", "minigrid"),
        ("BabyAI-GoToRedBall-v0", "minigrid"),
        ("dm_control/cartpole-swingup-v0", "dmc"),
        ("Hopper-v5", "mujoco"),
        ("LunarLander-v3", "box2d"),
        ("CartPole-v1", None),
        ("rlkit/CartPoleNoVel-v1", None),
    ],
)
def test_ids_are_claimed_by_their_family_without_importing_it(env_id: str, family: Any) -> None:
    cls = family_for(env_id)
    assert (cls.registry_id if cls else None) == family


class _Lab(EnvFamily):
    extra = "lab"
    modules = ("rlkit_no_such_simulator",)

    @classmethod
    def matches(cls, env_id: str) -> bool:
        return env_id.startswith("Lab/")


@pytest.fixture
def lab_family() -> Any:
    ENV_FAMILIES.register("lab")(_Lab)
    yield _Lab
    ENV_FAMILIES.unregister("lab")


def test_a_missing_package_names_the_extra_in_one_cli_line(
    lab_family: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(
        MissingExtraError, match=r'rlkit_no_such_simulator: pip install "rlkit\[lab\]"'
    ):
        make_vec_env("Lab/Maze-v0")
    code = main(["train", "ppo", "--env", "Lab/Maze-v0", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and 'pip install "rlkit[lab]"' in err[0]


def test_preprocessing_options_are_checked_and_can_be_turned_off() -> None:
    with pytest.raises(TypeError, match="frame_stak"):
        build_family("ALE/Breakout-v5", {"frame_stak": 2})
    with pytest.raises(ValueError, match="no env family claims 'CartPole-v1'"):
        build_family("CartPole-v1", {"frame_stack": 2})
    assert build_family("ALE/Breakout-v5", False) is None
    with pytest.raises(ValueError, match="frame_stack must be an integer >= 1"):
        build_family("ALE/Breakout-v5", {"frame_stack": 0})


@ATARI
def test_atari_pipeline_ends_training_episodes_on_a_lost_life_but_counts_whole_games() -> None:
    env = make_vec_env("ALE/Breakout-v5", num_envs=1, seed=0)
    assert env.single_observation_space.shape == (4, 84, 84)
    assert env.single_observation_space.dtype == np.uint8
    assert reports_games(env)
    env.reset(seed=0)
    dones = games = 0
    rewards = []
    while games < 1:
        _, reward, terminated, truncated, info = env.step(np.array([0]))
        rewards.append(float(reward[0]))
        dones += int(terminated[0] or truncated[0])
        games += int(info.get("_episode", [False])[0])
    # Breakout has 5 lives: each lost life ended a training episode; one game was counted
    assert dones == 5 and len(env.return_queue) == 1
    assert set(rewards) <= {-1.0, 0.0, 1.0}  # clipped for training
    env.close()


@ATARI
def test_atari_evaluation_plays_whole_games_with_true_scores() -> None:
    train = make_vec_env("ALE/Breakout-v5", num_envs=1, seed=0)
    evaluation = make_vec_env("ALE/Breakout-v5", num_envs=1, seed=0, evaluation=True)
    assert not reports_games(evaluation)
    evaluation.reset(seed=3)
    steps, total = 0, 0.0
    while True:  # a policy that never presses FIRE: the game restarts after each life
        _, reward, terminated, truncated, _ = evaluation.step(np.array([3]))
        steps += 1
        total += float(reward[0])
        if terminated[0] or truncated[0]:
            break
    assert steps > 5 * 15 and steps < 27_000  # five lives, not one; not ALE's frame cap
    assert list(evaluation.return_queue) == [total]
    train.close()
    evaluation.close()


@ATARI
def test_atari_colour_frames_and_single_frames_keep_channel_first() -> None:
    colour = make_vec_env("ALE/Pong-v5", preprocessing={"grayscale": False, "frame_stack": 2})
    assert colour.single_observation_space.shape == (6, 84, 84)
    one = make_vec_env("ALE/Pong-v5", preprocessing={"frame_stack": 1, "screen_size": 64})
    assert one.single_observation_space.shape == (1, 64, 64)
    raw = make_vec_env("ALE/Pong-v5", preprocessing=False)
    assert raw.single_observation_space.shape == (210, 160, 3)
    for env in (colour, one, raw):
        env.close()


@MINIGRID
def test_minigrid_observations_become_one_vector_with_direction_and_mission() -> None:
    env = make_vec_env("BabyAI-GoToRedBall-v0", num_envs=2, seed=0)
    space = env.single_observation_space
    # keys sorted: 4 directions, the 7x7x3 grid, 32 mission buckets
    assert space.shape == (7 * 7 * 3 + 4 + 32,) and space.dtype == np.float32
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 183) and obs.min() >= 0.0 and obs.max() <= 1.0
    assert obs[:, :4].sum(axis=1).tolist() == [1.0, 1.0]  # the direction one-hot
    assert obs[:, 151:].sum(axis=1) == pytest.approx([1.0, 1.0])  # the mission's words
    no_mission = make_vec_env("MiniGrid-Empty-5x5-v0", preprocessing={"mission_buckets": 0})
    assert no_mission.single_observation_space.shape == (151,)
    env.close()
    no_mission.close()


def test_flatten_dict_encodes_discrete_keys_and_refuses_unknown_spaces() -> None:
    class Mixed(gym.Env[Any, int]):
        observation_space = gym.spaces.Dict(
            {
                "pos": gym.spaces.Box(0, 4, shape=(2,), dtype=np.float32),
                "door": gym.spaces.Discrete(3),
                "keys": gym.spaces.MultiDiscrete([2, 3]),
                "goal": gym.spaces.Text(20),
            }
        )
        action_space = gym.spaces.Discrete(2)

        def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
            pos = np.array([2.0, 4.0], dtype=np.float32)
            return {"pos": pos, "door": 2, "keys": np.array([1, 0]), "goal": "open door"}, {}

    env = FlattenDict(Mixed(), text_buckets=8)
    obs, _ = env.reset()
    # sorted keys: door (3), goal (8), keys (2 + 3), pos (2)
    assert obs.shape == env.observation_space.shape == (18,)
    assert obs[:3].tolist() == [0.0, 0.0, 1.0]
    assert obs[3:11].sum() == pytest.approx(1.0)
    assert obs[11:16].tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]
    assert obs[16:].tolist() == [0.5, 1.0]  # scaled by the Box's high

    class Nested(Mixed):
        observation_space = gym.spaces.Dict({"t": gym.spaces.Tuple([gym.spaces.Discrete(2)])})

    with pytest.raises(TypeError, match="key 't' has space Tuple"):
        FlattenDict(Nested())


@DMC
def test_dmc_state_is_a_float32_vector_with_float32_actions_and_action_repeat() -> None:
    once = make_vec_env("dm_control/cartpole-swingup-v0", seed=0)
    twice = make_vec_env(
        "dm_control/cartpole-swingup-v0", seed=0, preprocessing={"action_repeat": 2}
    )
    assert once.single_observation_space.shape == (5,)
    assert once.single_observation_space.dtype == np.float32
    assert once.single_action_space.dtype == np.float32
    for env, steps in ((once, 1000), (twice, 500)):  # dm_control's 1000-step episodes
        env.reset(seed=0)
        n = 0
        while True:
            n += 1
            _, _, terminated, truncated, _ = env.step(np.zeros((1, 1), dtype=np.float32))
            if terminated[0] or truncated[0]:
                break
        assert n == steps and truncated[0] and not terminated[0]
        env.close()


@DMC
def test_dmc_pixels_are_stacked_channel_first_frames() -> None:
    try:
        env = make_vec_env(
            "dm_control/cartpole-swingup-v0", seed=0, preprocessing={"pixels": True, "size": 32}
        )
        obs, _ = env.reset(seed=0)
    except Exception as e:  # no OpenGL backend on this machine (EGL/OSMesa)
        pytest.skip(f"dm_control cannot render here: {type(e).__name__}: {e}")
    assert obs.shape == (1, 9, 32, 32) and obs.dtype == np.uint8 and obs.max() > 0
    env.close()


@MUJOCO
def test_mujoco_observations_are_float32() -> None:
    env = make_vec_env("Hopper-v5")
    assert env.single_observation_space.dtype == np.float32
    env.close()


# one command per family, a short budget: the run trains, saves and evaluates
FAMILY_RUNS = [
    pytest.param("ALE/Breakout-v5", "ppo", 256, marks=ATARI, id="atari-ppo"),
    pytest.param("MiniGrid-Empty-5x5-v0", "ppo", 256, marks=MINIGRID, id="minigrid-ppo"),
    pytest.param("dm_control/cartpole-swingup-v0", "sac", 300, marks=DMC, id="dmc-sac"),
    pytest.param("Hopper-v5", "ppo", 256, marks=MUJOCO, id="mujoco-ppo"),
    pytest.param("LunarLander-v3", "dqn", 300, marks=BOX2D, id="box2d-dqn"),
]


@pytest.mark.parametrize(("env_id", "algo", "steps"), FAMILY_RUNS)
def test_each_family_trains_from_one_command(
    env_id: str, algo: str, steps: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    settings = ["--num-envs", "2", "--eval-episodes", "1", "--no-progress", "--seed", "0"]
    if algo == "sac":
        settings += ["--learning-starts", "100", "--batch-size", "32"]
    if algo == "dqn":
        settings += ["--learning-starts", "100", "--batch-size", "32", "--buffer-size", "1000"]
    if algo == "ppo":
        settings += ["--num-steps", "64", "--batch-size", "64", "--num-epochs", "1"]
    command = ["train", algo, "--env", env_id, "--total-steps", str(steps), "--out", str(out)]
    code = main([*command, *settings])
    if code != 0:  # show why
        assert code == 0, capsys.readouterr().err
    assert (out / "final").is_dir() and (out / "eval.json").is_file()
    result = json.loads((out / "eval.json").read_text())
    assert result["episodes"] == 1 and np.isfinite(result["return_mean"])


class _Counting(EnvFamily):
    """A family registered outside rlkit that takes over CartPole (asked before built-ins)."""

    made: ClassVar[int] = 0

    @classmethod
    def matches(cls, env_id: str) -> bool:
        return env_id == "CartPole-v1"

    def wrap(self, env: gym.Env[Any, Any], evaluation: bool) -> gym.Env[Any, Any]:
        type(self).made += 1
        return gym.wrappers.TimeLimit(env, max_episode_steps=7)


def test_a_family_registered_outside_rlkit_is_asked_first() -> None:
    ENV_FAMILIES.register("counting")(_Counting)
    try:
        env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
        assert _Counting.made == 2
        env.reset(seed=0)
        for _ in range(7):
            _, _, terminated, truncated, _ = env.step(np.zeros(2, dtype=np.int64))
        assert (terminated | truncated).all()
        env.close()
    finally:
        ENV_FAMILIES.unregister("counting")
