"""Recurrent policies learn what feed-forward ones cannot: CartPole without velocities and a
cue to recall after a delay. Each setting is a function of the seed (swept by
``benchmarks/learning_seeds.py``); the tests run seed 0."""

from __future__ import annotations

from typing import Any

import pytest

from rlkit.agents import PPO, R2D2, RecurrentSAC
from rlkit.config.presets import load_preset
from rlkit.envs import CARTPOLE_NOVEL_ID, PENDULUM_NOVEL_ID, make_vec_env
from rlkit.prototypes.callbacks import Evaluate


def _novel_preset(seed: int) -> tuple[Any, dict[str, Any]]:
    preset = load_preset("ppo", CARTPOLE_NOVEL_ID)
    num_envs = preset.pop("num_envs")
    preset.pop("total_steps")
    return make_vec_env(CARTPOLE_NOVEL_ID, num_envs=num_envs, seed=seed), preset


def ppo_lstm_cartpole_novel(seed: int) -> dict[str, float]:
    """The shipped preset (rl-baselines3-zoo's ppo_lstm setting, LSTM actor and critic) for
    up to 300k steps (the schedules annealing over 300k), 10 deterministic episodes every
    10k steps; stop at the first evaluation >= 400."""
    env, preset = _novel_preset(seed)
    evaluations = Evaluate(every=10_000, episodes=10, stop_at=400)
    PPO(env, seed=seed, **preset).train(300_000, progress_bar=False, callbacks=evaluations)
    assert evaluations.best is not None
    reached = evaluations.reached_at
    return {"best": evaluations.best, "reached_at": float(reached if reached is not None else -1)}


def ppo_mlp_cartpole_novel(seed: int, total: int = 100_000) -> dict[str, float]:
    """The same preset with the default feed-forward policy for ``total`` steps, evaluated (10
    deterministic episodes) every 50k steps."""
    env, preset = _novel_preset(seed)
    preset.pop("policy")
    evaluations = Evaluate(every=50_000, episodes=10)
    PPO(env, seed=seed, **preset).train(total, progress_bar=False, callbacks=evaluations)
    assert evaluations.best is not None
    return {"best": evaluations.best}


def ppo_lstm_cue_recall(seed: int) -> dict[str, float]:
    """PPO with a 32-unit LSTM (critic sharing it) on ``rlkit/CueRecall-v0`` with a memory
    length of 16 (2 cues: chance is 0.5), 16 envs, rollouts of 4 episodes per env, up to
    150k steps; 64 deterministic episodes every 4k steps, stop at the first mean >= 0.99."""
    return _cue_recall(seed, {"id": "lstm_actor_critic", "hidden_size": 32, "critic": "shared"})


def ppo_transformer_cue_recall(seed: int) -> dict[str, float]:
    """As :func:`ppo_lstm_cue_recall` with a one-layer Transformer (width 32, 4 heads, a
    32-step window: the cue is 17 steps before the query)."""
    return _cue_recall(seed, {"id": "transformer_actor_critic", "d_model": 32, "context": 32})


def r2d2_lstm_cartpole_novel(seed: int) -> dict[str, float]:
    """R2D2 (64-unit LSTM, prioritized sequence replay, burn-in 10, 20 trained steps, 5-step
    double-Q targets with value rescaling) with the shipped ``rlkit/CartPoleNoVel-v1`` preset
    for up to 200k steps, 10 deterministic episodes every 10k steps; stop at the first
    evaluation >= 300."""
    preset = load_preset("r2d2", CARTPOLE_NOVEL_ID)
    env = make_vec_env(CARTPOLE_NOVEL_ID, num_envs=preset.pop("num_envs"), seed=seed)
    total = preset.pop("total_steps")
    evaluations = Evaluate(every=10_000, episodes=10, stop_at=300)
    R2D2(env, seed=seed, **preset).train(total, progress_bar=False, callbacks=evaluations)
    assert evaluations.best is not None
    reached = evaluations.reached_at
    return {"best": evaluations.best, "reached_at": float(reached if reached is not None else -1)}


def rsac_pendulum_novel(seed: int) -> dict[str, float]:
    """Recurrent SAC with the shipped ``rlkit/PendulumNoVel-v1`` preset (50k steps), then 10
    deterministic episodes. Not run by the suite (about 6.5 minutes per seed on 2 CPU cores):
    ``python benchmarks/learning_seeds.py rsac_pendulum_novel --seeds 0-4``. Measured on an
    AMD EPYC (AVX-512, 2 cores), two seeds at a time: -132, -189, -125, -202, -126 (random
    about -1200; feed-forward SAC with lr 1e-3 and its defaults, seed 0: -1126)."""
    preset = load_preset("recurrent_sac", PENDULUM_NOVEL_ID)
    env = make_vec_env(PENDULUM_NOVEL_ID, num_envs=preset.pop("num_envs"), seed=seed)
    total = preset.pop("total_steps")
    agent = RecurrentSAC(env, seed=seed, **preset).train(total, progress_bar=False)
    return {"return_mean": agent.evaluate(10)["return_mean"]}


def _cue_recall(seed: int, policy: dict[str, Any]) -> dict[str, float]:
    memory = 16
    env = make_vec_env(
        "rlkit/CueRecall-v0", num_envs=16, seed=seed, env_kwargs={"memory_length": memory}
    )
    agent = PPO(
        env,
        policy=policy,
        seed=seed,
        num_steps=4 * (memory + 2),
        batch_size=16 * (memory + 2),
        num_epochs=4,
        lr=3e-3,
        ent_coef=0.01,
    )
    evaluations = Evaluate(every=4_000, episodes=64, stop_at=0.99)
    agent.train(150_000, progress_bar=False, callbacks=evaluations)
    assert evaluations.best is not None
    reached = evaluations.reached_at
    return {"best": evaluations.best, "reached_at": float(reached if reached is not None else -1)}


@pytest.mark.learning
def test_lstm_ppo_solves_cartpole_without_velocities() -> None:
    """Recurrent PPO reaches a 10-episode deterministic mean >= 400 at a 10k-step evaluation
    within 300k steps (the issue's bar). Validated on an AMD EPYC (AVX-512, 2 cores), fast
    backend, one thread, with the preset's reward normalisation (the zoo's ``normalize: True``,
    since 2026-12-07), seeds 0-4 (``python benchmarks/learning_seeds.py
    ppo_lstm_cartpole_novel --seeds 0-4``): 5 of 5 reach it at 10k-60k steps, best evaluations
    468-500, 9-45 s per seed (machine shared with a benchmark). Without reward normalisation:
    5 of 5 at 10k-70k (best 413-500); on an intermediate version (packed sequences in training,
    equal up to float rounding), seeds 0-9: 10 of 10 at 10k-80k."""
    result = ppo_lstm_cartpole_novel(0)
    assert result["best"] >= 400 and result["reached_at"] > 0, result


@pytest.mark.learning
def test_mlp_ppo_stays_below_200_on_cartpole_without_velocities() -> None:
    """The same preset with a feed-forward policy cannot balance the pole without the
    velocities: its evaluations at 50k and 100k steps stay below 200 (where the LSTM reaches
    400 by 10k-80k). Validated as above, seeds 0-4 (``ppo_mlp_cartpole_novel``): best 44-50
    (with the preset's reward normalisation; 44-49 without); for 300k steps (evaluations
    every 10k, intermediate version) the best of 30 was 47-51 per seed. The test trains 100k
    to stay cheap."""
    result = ppo_mlp_cartpole_novel(0)
    assert result["best"] < 200, result


@pytest.mark.learning
def test_lstm_ppo_recalls_a_cue_over_16_steps() -> None:
    """The LSTM answers the cue after 16 blank steps in all of 64 deterministic episodes
    (mean >= 0.99; chance 0.5, and a policy without memory cannot beat it) within 150k
    steps. Validated as above on seeds 0-9 (``ppo_lstm_cue_recall``): 10 of 10, at 13k-97k
    steps, 1-11 s per seed (seeds 0-4 re-run on the final code: the same steps)."""
    result = ppo_lstm_cue_recall(0)
    assert result["best"] >= 0.99 and result["reached_at"] > 0, result


@pytest.mark.learning
def test_transformer_ppo_recalls_a_cue_over_16_steps() -> None:
    """The Transformer policy solves the memory length the LSTM solves (same bar and budget).
    Validated as above on seeds 0-9 (``ppo_transformer_cue_recall``): 10 of 10, at 4.6k-13k
    steps, 1-4 s per seed (seeds 0-4 re-run on the final code: 4.6k-13k)."""
    result = ppo_transformer_cue_recall(0)
    assert result["best"] >= 0.99 and result["reached_at"] > 0, result


@pytest.mark.learning
def test_r2d2_solves_cartpole_without_velocities() -> None:
    """Recurrent DQN (R2D2) balances the masked-velocity pole: a 10-episode deterministic
    mean >= 300 at a 10k-step evaluation within 200k steps (a feed-forward policy stays
    below 200, as the PPO test above shows). Validated on an AMD EPYC (AVX-512, 2 cores),
    fast backend, on the final code, seeds 0-4 (``python benchmarks/learning_seeds.py
    r2d2_lstm_cartpole_novel --seeds 0-4``): 5 of 5 reach it, at 50k, 50k, 100k, 60k and
    140k steps (best evaluations 352-500), 36-128 s per seed on a loaded machine."""
    result = r2d2_lstm_cartpole_novel(0)
    assert result["best"] >= 300 and result["reached_at"] > 0, result
