"""Evaluation never hangs: every episode is capped (the caller's max_episode_steps, else the
env's own time limit, else DEFAULT_EVAL_STEP_CAP), a capped episode counts as truncated, and
the CLI passes its evaluation options through (and refuses bad ones in one line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import TimeLimit

from rlkit.agents import PPO
from rlkit.cli.main import main
from rlkit.envs import make_vec_env
from rlkit.envs.introspect import episode_step_cap, time_limit_of
from rlkit.prototypes import load_agent
from rlkit.prototypes.evaluation import DEFAULT_EVAL_STEP_CAP

FOREVER_ID = "RlkitEvalCapForever-v0"
LIMITED_ID = "RlkitEvalCapLimited-v0"
TINY = {"num_steps": 8, "num_epochs": 1}


class Forever(gym.Env[np.ndarray, np.int64]):
    """Never terminates or truncates; pays 1 per step; renders a frame whose red channel
    counts the steps (so consecutive frames differ)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, dtype=np.float32), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return np.zeros(3, dtype=np.float32), 1.0, False, False, {}

    def render(self) -> np.ndarray:
        return np.full((4, 6, 3), self.t % 256, dtype=np.uint8)


if FOREVER_ID not in gym.registry:
    gym.register(FOREVER_ID, entry_point=Forever)  # no time limit
if LIMITED_ID not in gym.registry:
    gym.register(LIMITED_ID, entry_point=Forever, max_episode_steps=25)


def _agent(env: Any) -> PPO:
    return PPO(make_vec_env(env, num_envs=2, seed=0), seed=0, **TINY)


# --------------------------------------------------------------------------- the cap
def test_endless_env_returns_with_every_episode_truncated() -> None:
    agent = _agent(Forever)
    assert time_limit_of(agent.env) is None
    assert episode_step_cap(agent.env) == DEFAULT_EVAL_STEP_CAP == 108_000
    # 5 episodes on 2 sub-envs: a capped sub-env is reset on its own for its next episode
    result = agent.evaluate(episodes=5, max_episode_steps=40)
    assert result["episodes"] == 5 and result["truncated"] == 5
    assert result["length_mean"] == 40 and result["length_std"] == 0
    assert result["return_mean"] == 40  # the return so far is recorded
    assert {"return_mean", "return_std", "length_mean", "length_std"} <= set(result)


def test_the_env_time_limit_is_the_default_cap() -> None:
    # a TimeLimit put on by hand (the env has no gymnasium spec) ...
    agent = _agent(lambda: TimeLimit(Forever(), max_episode_steps=30))
    assert episode_step_cap(agent.env) == 30
    result = agent.evaluate(episodes=3)
    assert result["length_mean"] == 30 and result["truncated"] == 3
    # ... or one registered with the id; a smaller cap still wins over it
    registered = make_vec_env(LIMITED_ID, num_envs=2, seed=0)
    assert time_limit_of(registered) == 25
    assert episode_step_cap(registered, 10) == 10
    assert agent.evaluate(episodes=3, env=registered, max_episode_steps=10)["length_mean"] == 10
    registered.close()


def test_cap_in_subprocess_envs() -> None:
    """Subprocess envs: the limit comes from the sub-envs' specs, the reset from reset_mask."""
    env = make_vec_env(LIMITED_ID, num_envs=2, seed=0, asynchronous=True)
    try:
        assert time_limit_of(env) == 25
        agent = PPO(env, seed=0, **TINY)
        result = agent.evaluate(episodes=3, env=env, max_episode_steps=7)
        assert result["episodes"] == 3 and result["truncated"] == 3
        assert result["length_mean"] == 7
    finally:
        env.close()


def test_terminated_episodes_are_not_truncated() -> None:
    agent = _agent("CartPole-v1")
    result = agent.evaluate(episodes=4)  # an untrained policy falls long before 500 steps
    assert result["truncated"] == 0 and result["length_mean"] < 500
    capped = agent.evaluate(episodes=4, max_episode_steps=3)
    assert capped["length_mean"] == 3 and capped["truncated"] == 4


def test_bad_cap_is_refused() -> None:
    agent = _agent("CartPole-v1")
    with pytest.raises(ValueError, match=r"max_episode_steps must be .*>= 1.*got 0"):
        agent.evaluate(episodes=1, max_episode_steps=0)


def test_recording_is_capped_too(tmp_path: Path) -> None:
    pytest.importorskip("imageio.v3")
    from rlkit.envs.recording import record_episodes

    agent = PPO(
        make_vec_env(FOREVER_ID, num_envs=1, seed=0, env_kwargs={"render_mode": "rgb_array"}),
        seed=0,
        **TINY,
    )
    info = record_episodes(agent, tmp_path / "forever.gif", episodes=2, max_episode_steps=7)
    assert info.episodes == 2
    assert info.frames == 2 * (1 + 7)  # each episode: its first frame and one per step


# --------------------------------------------------------------------------- the CLI
def _cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's usage errors
        return e.code if isinstance(e.code, int) else 1


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_cli_refuses_a_bad_cap_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(["eval", str(tmp_path / "nothing"), "--max-episode-steps", "0"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--max-episode-steps=0" in line and ">= 1" in line
    train = ["train", "ppo", "--env", "CartPole-v1", "--out", str(tmp_path / "run")]
    assert _cli([*train, "--eval-max-steps", "-3"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--eval-max-steps" in line and "'-3'" in line and ">= 1" in line
    assert not (tmp_path / "run").exists()  # refused before anything ran
    assert _cli(["eval", str(tmp_path / "nothing"), "--deterministic", "--stochastic"]) == 2
    assert "not allowed with" in _one_line(capsys.readouterr().err)


def _train(out: Path, *flags: str) -> dict[str, float]:
    args = ["train", "ppo", "--env", "CartPole-v1", "--seed", "0", "--no-progress"]
    args += ["--num-envs", "2", "--num-steps", "16", "--num-epochs", "1"]
    args += ["--total-steps", "256", "--eval-episodes", "5", "--out", str(out), *flags]
    assert _cli(args) == 0
    result: dict[str, float] = json.loads((out / "eval.json").read_text())
    return result


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PPO run on CartPole whose final evaluation had the default options."""
    out = tmp_path_factory.mktemp("eval_cap") / "default"
    _train(out)
    return out


def test_cli_train_final_evaluation_options(
    default_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the deterministic default: what the saved agent's own deterministic evaluation gives
    default = json.loads((default_run / "eval.json").read_text())
    assert load_agent(default_run / "final").evaluate(episodes=5, seed=10_000) == default
    # --eval-stochastic reaches the evaluation: the same training, other results
    stochastic = _train(tmp_path / "stochastic", "--eval-stochastic")
    mode = load_agent(tmp_path / "stochastic" / "final").evaluate(episodes=5, seed=10_000)
    assert mode == default  # the same agent (same seed) ...
    assert stochastic != mode  # ... evaluated by sampling
    # --eval-max-steps caps each episode; the printed result has the truncated count
    capsys.readouterr()
    capped = _train(tmp_path / "capped", "--eval-deterministic", "--eval-max-steps", "5")
    assert capped["length_mean"] == 5 and capped["truncated"] == 5
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["eval"]
    assert printed == capped


def test_cli_eval_cap_and_truncated(default_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = str(default_run)
    assert _cli(["eval", run, "--episodes", "3", "--max-episode-steps", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["length_mean"] == 4 and result["truncated"] == 3
    results = []
    for flags in ([], ["--deterministic"], ["--stochastic"]):
        assert _cli(["eval", run, "--episodes", "3", "--json", *flags]) == 0
        results.append(json.loads(capsys.readouterr().out))
    default, deterministic, stochastic = results
    assert default == deterministic != stochastic  # deterministic unless --stochastic
    assert default["truncated"] == 0
    assert _cli(["eval", run, "--episodes", "2", "--max-episode-steps", "4"]) == 0
    assert capsys.readouterr().out.strip() == (
        "2 episodes: return 4.00 +/- 0.00, length 4.0, 2 truncated"
    )
