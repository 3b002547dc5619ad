"""Learning tests of the off-policy agents: fixed seeds, real thresholds, gymnasium envs.

SAC and TD3 use 64-64 networks (instead of the 256-256 / 400-300 of their presets) to keep each
test well under a minute on two CPU cores, and train for less than the 15k-step budget: in a
sweep over seeds 0-4 (Intel Xeon, fast backend; ``python benchmarks/learning_seeds.py
sac_pendulum td3_pendulum``), SAC's 20-episode mean was -110 .. -175 after 6k steps and TD3's
-122 .. -179 after 8k steps (the threshold is -250; a random policy scores about -1200).
"""

from __future__ import annotations

import pytest

from rlkit.agents import DQN, SAC, TD3
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env
from rlkit.prototypes import Evaluate

pytestmark = pytest.mark.learning


def _preset(algo: str, env_id: str) -> tuple[int, dict]:
    settings = load_preset(algo, env_id)
    num_envs = settings.pop("num_envs")
    settings.pop("total_steps", None)
    return num_envs, settings


def dqn_cartpole(seed: int) -> dict[int, float]:
    """The greedy policy's 20-episode mean every 10k steps of a 50k-step run."""
    num_envs, hyper = _preset("dqn", "CartPole-v1")
    env = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    evaluations = Evaluate(every=10_000, episodes=20)
    agent = DQN(env, seed=seed, **hyper).train(50_000, progress_bar=False, callbacks=evaluations)
    assert agent.global_step == 50_000
    return {step: result["return_mean"] for step, result in evaluations.history}


def test_dqn_learns_cartpole_within_50k_steps() -> None:
    """rl-baselines3-zoo's CartPole setting (the shipped preset) learns, then oscillates: its
    greedy return at any one point is bimodal across seeds for every library (Stable-Baselines3
    with this setting scores 20 on seed 0 and 500 on seed 1 at 50k). So the test checks what
    holds for every seed: the best of the evaluations at 30k, 40k and 50k steps is >= 200 (a
    random policy scores ~22). The 50k evaluation alone is not asserted: it ranged 28-500.

    Validated on an Intel Xeon (AVX-512) with the fast backend, seeds 0-11 (12 of 12 pass;
    ``python benchmarks/learning_seeds.py dqn_cartpole --seeds 0-11``): best of the three
    evaluations 493-500, every seed reaching >= 475 by 50k. On the numerics before denormal
    flushing it held 12 of 12 too, at 289-500. Seed 0, run here, scores 215, 216, 500."""
    scores = dqn_cartpole(0)
    late = [scores[s] for s in (30_000, 40_000, 50_000)]
    assert max(late) >= 200, scores


def sac_pendulum(seed: int) -> dict[str, float]:
    num_envs, hyper = _preset("sac", "Pendulum-v1")
    env = make_vec_env("Pendulum-v1", num_envs=num_envs, seed=seed)
    agent = SAC(env, seed=seed, **{**hyper, "hidden_sizes": [64, 64]})
    return agent.train(6_000, progress_bar=False).evaluate(episodes=20)


def td3_pendulum(seed: int) -> dict[str, float]:
    num_envs, hyper = _preset("td3", "Pendulum-v1")
    env = make_vec_env("Pendulum-v1", num_envs=num_envs, seed=seed)
    agent = TD3(env, seed=seed, **{**hyper, "hidden_sizes": [64, 64]})
    return agent.train(8_000, progress_bar=False).evaluate(episodes=20)


def test_sac_solves_pendulum_within_15k_steps() -> None:
    result = sac_pendulum(0)
    assert result["return_mean"] >= -250, result


def test_td3_solves_pendulum_within_15k_steps() -> None:
    result = td3_pendulum(0)
    assert result["return_mean"] >= -250, result
