"""Learning tests: fixed seeds, real score thresholds on real gymnasium envs."""

from __future__ import annotations

from typing import Any

import pytest

from rlkit.agents import A2C, PPO
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env
from rlkit.prototypes import Evaluate, OnPolicyAgent

pytestmark = pytest.mark.learning


def _preset(algo: str, env_id: str) -> tuple[int, dict]:
    settings = load_preset(algo, env_id)
    num_envs = settings.pop("num_envs")
    settings.pop("total_steps", None)
    return num_envs, settings


def _cartpole_time_to_score(algo: type[OnPolicyAgent], seed: int) -> dict[str, float]:
    """Train on the preset for up to 100k steps, evaluating the deterministic policy on 20
    episodes every 10k steps; stop at the first evaluation >= 475. Returns the best evaluation
    and the step it was first reached at (-1 if never)."""
    num_envs, hyper = _preset(algo.__name__.lower(), "CartPole-v1")
    env = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    evaluations = Evaluate(every=10_000, episodes=20, stop_at=475)
    algo(env, seed=seed, **hyper).train(100_000, progress_bar=False, callbacks=evaluations)
    assert evaluations.best is not None
    reached = evaluations.reached_at
    return {"best": evaluations.best, "reached_at": float(reached if reached is not None else -1)}


def ppo_cartpole(seed: int) -> dict[str, float]:
    return _cartpole_time_to_score(PPO, seed)


def a2c_cartpole(seed: int) -> dict[str, float]:
    return _cartpole_time_to_score(A2C, seed)


#: PPO with a state-independent DiagGaussian and normalisation on Pendulum (rlkit's preset
#: before its gSDE policy made the zoo's setting possible; kept here as the DiagGaussian test).
PPO_PENDULUM: dict[str, Any] = {
    "num_steps": 256, "batch_size": 256, "num_epochs": 10, "lr": 0.001, "gamma": 0.9,
    "gae_lambda": 0.95, "ent_coef": 0.0, "clip_range": 0.2, "normalize_obs": True,
    "normalize_reward": True,
}  # fmt: skip


def ppo_pendulum(seed: int) -> dict[str, float]:
    env = make_vec_env("Pendulum-v1", num_envs=8, seed=seed)
    agent = PPO(env, seed=seed, **PPO_PENDULUM).train(120_000, progress_bar=False)
    return agent.evaluate(episodes=20)


def test_ppo_solves_cartpole_within_100k_steps() -> None:
    """The zoo preset reaches a 20-episode deterministic mean >= 475 (a random policy scores
    ~22) at one of the 10k-step evaluations within 100k steps: time to a score, the criterion
    that holds across seeds. The return at one fixed step does not: PPO on CartPole can
    collapse and recover between evaluations (seed 1 scored 500 at 70-90k and 66 at 100k).
    With the clip range annealed as the zoo's ``lin_0.2`` (the preset since 2026-12-06),
    validated on an AMD EPYC (AVX-512, 2 cores), fast backend, seeds 0-11: 12 of 12 reach it,
    at 10k-40k steps (median 20k; ``python benchmarks/learning_seeds.py ppo_cartpole --seeds
    0-11``). With a constant clip range, on an Intel Xeon (AVX-512): 12 of 12 at 10k-30k; an
    earlier sweep on different numerics reached it at 10k-70k."""
    result = ppo_cartpole(0)
    assert result["best"] >= 475 and result["reached_at"] > 0, result


def test_a2c_solves_cartpole_within_100k_steps() -> None:
    """A2C (one full-batch gradient step per 5-step rollout) on the zoo preset is noisier than
    PPO and oscillates more (its tuned budget is 500k steps), but it too reaches a 20-episode
    deterministic mean >= 475 at a 10k-step evaluation within 100k steps.
    Validated on an Intel Xeon (AVX-512), fast backend, seeds 0-11: 12 of 12 reach it, at
    10k-80k steps (``python benchmarks/learning_seeds.py a2c_cartpole --seeds 0-11``); in an
    earlier sweep the return at 100k alone ranged 71-500."""
    result = a2c_cartpole(0)
    assert result["best"] >= 475 and result["reached_at"] > 0, result


def test_ppo_learns_pendulum() -> None:
    """Continuous actions (DiagGaussian, clipped to the bounds) with obs/reward normalisation;
    we require a 20-episode mean >= -400 (a random policy scores about -1200). Seeds 0-4 scored
    -138 to -260 (``python benchmarks/learning_seeds.py ppo_pendulum``)."""
    result = ppo_pendulum(0)
    assert result["return_mean"] >= -400, result
