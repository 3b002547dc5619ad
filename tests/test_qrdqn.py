"""QR-DQN: the quantile network, the update, and learning CartPole with the zoo preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from rlkit.agents import QRDQN
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env
from rlkit.policies import QuantileQNetwork
from rlkit.prototypes import Evaluate, load_agent


def test_the_network_gives_quantiles_per_action_and_acts_on_their_mean() -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    net = QuantileQNetwork(env.single_observation_space, env.single_action_space, n_quantiles=7)
    obs = torch.randn(5, 4)
    quantiles = net.quantiles(obs)
    assert quantiles.shape == (5, 2, 7)
    torch.testing.assert_close(net.q_values(obs), quantiles.mean(-1))
    actions, _ = net.act(obs)
    assert torch.equal(actions, quantiles.mean(-1).argmax(-1))
    with pytest.raises(ValueError, match="n_quantiles must be an integer >= 1, got 0"):
        QuantileQNetwork(env.single_observation_space, env.single_action_space, n_quantiles=0)


@pytest.mark.parametrize("options", [{}, {"double_q": True, "prioritized_replay": True}])
def test_updates_train_the_quantiles_and_round_trip(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = QRDQN(env, seed=0, learning_starts=64, batch_size=32, n_quantiles=5, **options)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent.train(400, progress_bar=False)
    assert agent.num_updates > 0
    assert any(
        not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters(), strict=True)
    )
    assert "loss/quantile" in agent.iteration()
    agent.save(tmp_path / "qrdqn")
    loaded = load_agent(tmp_path / "qrdqn")
    assert isinstance(loaded, QRDQN) and loaded.policy.n_quantiles == 5
    obs = torch.randn(3, 4)
    torch.testing.assert_close(loaded.policy.quantiles(obs), agent.policy.quantiles(obs))


def qrdqn_cartpole(seed: int) -> dict[int, float]:
    """The greedy policy's 20-episode mean every 10k steps of a 50k-step run (zoo preset)."""
    preset = load_preset("qrdqn", "CartPole-v1")
    num_envs, total = preset.pop("num_envs"), preset.pop("total_steps")
    env = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    evaluations = Evaluate(every=10_000, episodes=20, stop_at=200)
    QRDQN(env, seed=seed, **preset).train(total, progress_bar=False, callbacks=evaluations)
    return {step: result["return_mean"] for step, result in evaluations.history}


@pytest.mark.learning
def test_qrdqn_learns_cartpole_within_50k_steps() -> None:
    """rl-baselines3-zoo's QR-DQN CartPole setting (10 quantiles, no gradient clipping as
    sb3-contrib; the shipped preset): a greedy 20-episode evaluation (every 10k steps) reaches
    200 within 50k steps (random: ~22); the run stops there. Validated on an Intel Xeon
    (AVX-512), seeds 0-4 (``python benchmarks/learning_seeds.py qrdqn_cartpole --seeds 0-4``,
    full 50k-step runs): 5 of 5 reach 200, at 10k-30k steps, and every seed is at 454-500 at
    its 30k or 50k evaluation. (With DQN's inherited clip at 10, before the preset matched
    sb3-contrib: seeds 0-5, best of 30k/40k/50k 321-500.)"""
    scores = qrdqn_cartpole(0)
    assert max(scores.values()) >= 200, scores
