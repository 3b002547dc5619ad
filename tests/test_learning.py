"""Learning tests: fixed seeds, real score thresholds on real gymnasium envs."""

from __future__ import annotations

import pytest

from rlkit.agents import A2C, PPO
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env

pytestmark = pytest.mark.learning


def _preset(algo: str, env_id: str) -> tuple[int, dict]:
    settings = load_preset(algo, env_id)
    num_envs = settings.pop("num_envs")
    settings.pop("total_steps", None)
    return num_envs, settings


def ppo_cartpole(seed: int) -> dict[str, float]:
    num_envs, hyper = _preset("ppo", "CartPole-v1")
    env = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    agent = PPO(env, seed=seed, **hyper).train(100_000, progress_bar=False)
    assert agent.global_step <= 100_000 + num_envs * hyper["num_steps"]
    return agent.evaluate(episodes=20)


def a2c_cartpole(seed: int) -> dict[str, float]:
    num_envs, hyper = _preset("a2c", "CartPole-v1")
    env = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    return A2C(env, seed=seed, **hyper).train(100_000, progress_bar=False).evaluate(episodes=20)


def ppo_pendulum(seed: int) -> dict[str, float]:
    num_envs, hyper = _preset("ppo", "Pendulum-v1")
    env = make_vec_env("Pendulum-v1", num_envs=num_envs, seed=seed)
    return PPO(env, seed=seed, **hyper).train(120_000, progress_bar=False).evaluate(episodes=20)


def test_ppo_solves_cartpole_within_100k_steps() -> None:
    """The zoo preset; we require a 20-episode mean >= 475 (a random policy scores ~22).
    Validated with ``python benchmarks/learning_seeds.py ppo_cartpole``: see SWEEPS below."""
    result = ppo_cartpole(0)
    assert result["episodes"] == 20
    assert result["return_mean"] >= 475, result


def test_a2c_learns_cartpole() -> None:
    """A2C takes one full-batch gradient step per 5-step rollout, so it is much noisier and
    slower than PPO (the tuned zoo budget is 500k steps). Within 100k steps a learning agent is
    far above a random policy (~22); we require a 20-episode mean >= 150."""
    result = a2c_cartpole(0)
    assert result["return_mean"] >= 150, result


def test_ppo_learns_pendulum() -> None:
    """Continuous actions (DiagGaussian, clipped to the bounds) with obs/reward normalisation;
    we require a 20-episode mean >= -400 (a random policy scores about -1200)."""
    result = ppo_pendulum(0)
    assert result["return_mean"] >= -400, result
