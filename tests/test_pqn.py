"""PQN: the Q(lambda) returns (hand-computed, termination vs truncation), the Q-network's
LayerNorm option, the rollout targets, save/load, config errors, and learning CartPole."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rlkit.agents import PQN
from rlkit.config.presets import load_preset
from rlkit.envs import make_vec_env
from rlkit.policies import QNetwork
from rlkit.prototypes import Evaluate, load_agent
from rlkit.storages import compute_gae, q_lambda_returns

TINY = {"num_steps": 16, "batch_size": 8, "num_epochs": 2}


def test_q_lambda_returns_match_a_hand_computed_case() -> None:
    """One env, 3 steps, gamma 0.5, lambda 0.5; values v = max_a Q(s_t, a) = (4, 2, 8), the
    value after the rollout 6, rewards (1, 1, 1):
    G_2 = 1 + 0.5 (0.5 * 6 + 0.5 * 6) = 4
    G_1 = 1 + 0.5 (0.5 * 8 + 0.5 * 4) = 4
    G_0 = 1 + 0.5 (0.5 * 2 + 0.5 * 4) = 2.5"""
    rewards = torch.ones(3, 1)
    values = torch.tensor([[4.0], [2.0], [8.0]])
    last = torch.tensor([6.0])
    none = torch.zeros(3, 1)
    returns = q_lambda_returns(rewards, values, none, last, 0.5, 0.5)
    torch.testing.assert_close(returns, torch.tensor([[2.5], [4.0], [4.0]]))


def test_q_lambda_returns_stop_at_termination_and_bootstrap_at_truncation() -> None:
    """The same rollout with the episode ending at step 1 (done there; the next episode starts
    at step 2): terminated, G_1 = r_1 = 1; truncated with max_a Q(final_obs, a) = 10, the loop
    adds gamma * 10 to the reward first, so G_1 = 1 + 5 = 6. Neither sees steps 2.. (G_2 = 4
    as before), and G_0 = 1 + 0.5 (0.5 * 2 + 0.5 * G_1)."""
    rewards = torch.ones(3, 1)
    values = torch.tensor([[4.0], [2.0], [8.0]])
    last = torch.tensor([6.0])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    terminated = q_lambda_returns(rewards, values, dones, last, 0.5, 0.5)
    torch.testing.assert_close(terminated, torch.tensor([[1.75], [1.0], [4.0]]))
    truncated_rewards = rewards.clone()
    truncated_rewards[1] += 0.5 * 10.0  # what the rollout loop stores for a truncated step
    truncated = q_lambda_returns(truncated_rewards, values, dones, last, 0.5, 0.5)
    torch.testing.assert_close(truncated, torch.tensor([[3.0], [6.0], [4.0]]))


def test_q_lambda_returns_are_the_gae_returns_of_the_max_q_values() -> None:
    gen = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(20, 3, generator=gen), torch.randn(20, 3, generator=gen)
    dones = (torch.rand(20, 3, generator=gen) < 0.2).float()
    last = torch.randn(3, generator=gen)
    for lam in (0.0, 0.65, 1.0):
        _, gae_returns = compute_gae(rewards, values, dones, last, 0.99, lam)
        torch.testing.assert_close(
            q_lambda_returns(rewards, values, dones, last, 0.99, lam), gae_returns
        )


def test_the_q_network_layer_norm_option() -> None:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    spaces_ = (env.single_observation_space, env.single_action_space)
    net = QNetwork(*spaces_, hidden_sizes=[12, 6], layer_norm=True)
    norms = [m for m in net.modules() if isinstance(m, nn.LayerNorm)]
    assert [n.normalized_shape for n in norms] == [(12,), (6,)]
    obs = torch.randn(5, 4)
    assert net.q_values(obs).shape == (5, 2)
    torch.testing.assert_close(net.value(obs), net.q_values(obs).amax(-1))
    plain = QNetwork(*spaces_, hidden_sizes=[12, 6])
    assert not any(isinstance(m, nn.LayerNorm) for m in plain.modules())
    dueling = QNetwork(*spaces_, hidden_sizes=[12, 6], layer_norm=True, dueling=True)
    assert [m.normalized_shape for m in dueling.modules() if isinstance(m, nn.LayerNorm)] == [(12,)]


def test_the_rollout_targets_are_the_q_lambda_returns_of_the_rollout() -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = PQN(env, seed=0, q_lambda=0.5, **TINY)
    agent._target_steps = 32
    agent.collect_rollout()
    storage = agent.storage
    with torch.no_grad():
        last = agent.policy.value(agent._current_obs())
        agent.compute_returns(last)
        q = agent.policy.q_values(storage.obs.reshape(-1, 4)).amax(-1).reshape(16, 2)
    torch.testing.assert_close(storage.values, q)  # values recorded: max_a Q(s_t, a)
    expected = q_lambda_returns(storage.rewards, storage.values, storage.dones, last, 0.99, 0.5)
    torch.testing.assert_close(storage.returns, expected)
    assert storage.dones.sum() > 0  # CartPole episodes end inside 16 x 2 steps of random play


def test_exploration_anneals_and_evaluation_is_greedy() -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = PQN(env, seed=0, exploration_fraction=0.5, **TINY)
    agent._target_steps = 1000
    schedule = agent.exploration_schedule()
    assert schedule(0) == 1.0 and schedule(500) == pytest.approx(0.05)
    obs = torch.randn(6, 4)
    actions = torch.as_tensor(agent.act(obs.numpy(), deterministic=False))
    torch.testing.assert_close(actions, agent.policy.q_values(obs).argmax(-1))


@pytest.mark.parametrize("compute", ["fast", "reference", "compile"])
def test_updates_train_and_round_trip(tmp_path: Path, compute: str) -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = PQN(env, seed=0, compute=compute, compiler="eager", **TINY)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent.train(96, progress_bar=False)
    assert any(
        not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters(), strict=True)
    )
    metrics = agent.iteration()
    assert "loss/td" in metrics and 0 < metrics["train/epsilon"] <= 1
    assert isinstance(agent.optimizer, torch.optim.RAdam)
    agent.save(tmp_path / "pqn")
    loaded = load_agent(tmp_path / "pqn")
    assert isinstance(loaded, PQN) and isinstance(loaded.policy, QNetwork)
    assert loaded.policy.layer_norm
    obs = torch.randn(3, 4)
    torch.testing.assert_close(loaded.policy.q_values(obs), agent.policy.q_values(obs))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"q_lambda": 1.5}, "q_lambda"),
        ({"exploration_final_eps": -0.1}, "exploration_final_eps"),
        ({"loss": "l1"}, "loss"),
        ({"hidden_sizes": [0]}, "hidden_sizes"),
        ({"distribution": "categorical"}, "distribution"),
        ({"policy": "actor_critic"}, "needs a QPolicy"),
    ],
)
def test_bad_settings_are_one_line_errors(option: dict[str, object], message: str) -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    with pytest.raises((ValueError, TypeError), match=message) as info:
        PQN(env, **option)
    assert "\n" not in str(info.value)


def pqn_cartpole(seed: int) -> dict[int, float]:
    """The greedy policy's 20-episode mean every 100k steps of CleanRL's CartPole run (the
    shipped preset: 500k steps)."""
    preset = load_preset("pqn", "CartPole-v1")
    num_envs, total = preset.pop("num_envs"), preset.pop("total_steps")
    env = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    evaluations = Evaluate(every=100_000, episodes=20, stop_at=400)  # the run ends there
    PQN(env, seed=seed, **preset).train(total, progress_bar=False, callbacks=evaluations)
    return {step: result["return_mean"] for step, result in evaluations.history}


@pytest.mark.learning
def test_pqn_learns_cartpole_with_cleanrls_setting() -> None:
    """CleanRL's pqn.py CartPole setting (the shipped preset, 500k steps): the best of the
    greedy 20-episode evaluations at 100k, 200k, ..., 500k steps is >= 400 (random: ~22); the
    run stops at the first evaluation that is (the schedules still follow the 500k budget).
    Validated on an Intel Xeon (AVX-512), two cores shared with other jobs, one torch thread,
    seeds 0-4 (``python benchmarks/learning_seeds.py pqn_cartpole --seeds 0-4``): 5 of 5 pass,
    every seed's best is 500 (reached by 300k-400k steps) and the 500k evaluation is 500 for
    all five (full runs); ~80-110 s per seed there."""
    scores = pqn_cartpole(0)
    assert max(scores.values()) >= 400, scores
