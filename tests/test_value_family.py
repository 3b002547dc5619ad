"""The DQN family's parts and agents: dueling distributional heads, C51, IQN, Munchausen DQN,
Rainbow and Rainbow-IQN (updates, round trips, errors, reproducibility)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from rlkit.agents import C51, IQN, MDQN, QRDQN, Rainbow, RainbowIQN
from rlkit.envs import make_vec_env
from rlkit.losses import (
    QuantileHuberLoss,
    munchausen_bonus,
    scaled_log_policy,
    soft_expectation,
    td_target,
)
from rlkit.policies import CategoricalQNetwork, ImplicitQuantileNetwork, QuantileQNetwork
from rlkit.prototypes import load_agent
from rlkit.utils.noisy import NoisyLinear

SMALL = {"learning_starts": 48, "batch_size": 16, "buffer_size": 1000, "hidden_sizes": [16]}


def spaces() -> tuple[Any, Any]:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    return env.single_observation_space, env.single_action_space


@pytest.mark.parametrize(
    "cls, options",
    [
        (CategoricalQNetwork, {"n_atoms": 7}),
        (QuantileQNetwork, {"n_quantiles": 5}),
    ],
)
def test_dueling_heads_combine_per_atom(cls: type, options: dict[str, Any]) -> None:
    net = cls(*spaces(), hidden_sizes=[8, 8], dueling=True, **options)
    features = net.encoder(torch.randn(4, 4))
    values = net.action_values(features)  # [B, A, K]
    stream = net.value_head(net.trunk(features))  # [B, K]
    # V + A - mean_a A: the mean over actions is the value stream, atom by atom
    torch.testing.assert_close(values.mean(1), stream)
    assert values.shape == (4, 2, net.atoms)


def test_categorical_network_gives_distributions_and_their_means() -> None:
    net = CategoricalQNetwork(*spaces(), n_atoms=11, v_min=-5, v_max=5)
    obs = torch.randn(3, 4)
    probs = net.log_probs(obs).exp()
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 2))
    torch.testing.assert_close(net.q_values(obs), (probs * torch.linspace(-5, 5, 11)).sum(-1))
    with pytest.raises(ValueError, match=re.escape("v_min must be < v_max, got v_min=1, v_max=1")):
        CategoricalQNetwork(*spaces(), v_min=1, v_max=1)
    with pytest.raises(ValueError, match=re.escape("v_min=2.0, v_max=1.0")):
        C51(make_vec_env("CartPole-v1", num_envs=1), v_min=2.0, v_max=1.0)


def test_implicit_quantile_network_embeds_the_fractions() -> None:
    net = ImplicitQuantileNetwork(*spaces(), hidden_sizes=[8, 8], n_cos=4, n_acting_quantiles=6)
    obs = torch.randn(3, 4)
    taus = torch.rand(3, 5)
    features = net.state_features(obs)
    out = net.quantiles_at(features, taus)
    assert out.shape == (3, 2, 5)
    # column j is the network at tau_j alone: fractions do not interact
    single = net.quantiles_at(features, taus[:, 2:3])
    torch.testing.assert_close(out[:, :, 2:3], single)
    # the cosine embedding: cos(pi * i * tau), i = 0..n_cos-1
    cos = torch.cos(taus[0, 0] * torch.pi * torch.arange(4.0))
    expected = torch.relu(net.phi[0](cos))
    got = net.phi(torch.cos(taus[:1, :1].unsqueeze(-1) * net.cos_frequencies))[0, 0]
    torch.testing.assert_close(got, expected)
    # acting: the mean over the evenly spaced midpoints, a deterministic function of obs
    mids = ((torch.arange(6.0) * 2 + 1) / 12).expand(3, 6)
    torch.testing.assert_close(net.q_values(obs), net.quantiles_at(features, mids).mean(-1))


def test_munchausen_target_against_a_hand_computed_case() -> None:
    q = torch.tensor([[1.0, 2.0]])
    tau = 0.5
    # softmax(q / tau) = softmax([2, 4]): p = [1 / (1 + e^2), e^2 / (1 + e^2)]
    p1 = 1 / (1 + torch.exp(torch.tensor(2.0)))
    log_pi = torch.stack([torch.log(p1), torch.log(1 - p1)])
    torch.testing.assert_close(scaled_log_policy(q, tau)[0], tau * log_pi)
    # bonus alpha * clip(tau log pi(a), -1, 0): action 0 has tau log pi = -1.0635 -> clipped
    bonus = munchausen_bonus(q.expand(2, 2), torch.tensor([0, 1]), tau, alpha=0.9, clip=-1.0)
    torch.testing.assert_close(bonus, torch.stack([torch.tensor(-0.9), 0.9 * tau * log_pi[1]]))
    # soft value sum_a pi (q - tau log pi) = tau logsumexp(q / tau)
    expected = tau * torch.logsumexp(q / tau, -1)
    torch.testing.assert_close(soft_expectation(q, tau), expected)
    quantiles = torch.tensor([[[0.0, 2.0], [1.0, 3.0]]])  # [B, A, N]
    per_quantile = soft_expectation(q, tau, quantiles)
    pi = torch.stack([p1, 1 - p1])
    hand = (pi[:, None] * (quantiles[0] - tau * log_pi[:, None])).sum(0)
    torch.testing.assert_close(per_quantile[0], hand)


def test_munchausen_target_as_the_temperature_vanishes() -> None:
    g = torch.Generator().manual_seed(0)
    q = torch.randn(32, 3, generator=g)
    actions = torch.randint(0, 3, (32,), generator=g)
    torch.testing.assert_close(soft_expectation(q, 1e-4), q.amax(-1), atol=1e-3, rtol=0)
    # tau log pi(a) tends to the action gap q(a) - max q, clipped to [-1, 0]
    gap = q.gather(-1, actions[:, None])[:, 0] - q.amax(-1)
    bonus = munchausen_bonus(q, actions, 1e-4, 0.9)
    torch.testing.assert_close(bonus, 0.9 * gap.clamp(-1, 0), atol=1e-3, rtol=0)


def test_mdqn_rejects_double_q_and_trains(tmp_path: Path) -> None:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    with pytest.raises(ValueError, match="double_q=True"):
        MDQN(env, double_q=True)
    with pytest.raises(ValueError, match="munchausen_clip"):
        MDQN(env, munchausen_clip=0.5)
    agent = MDQN(env, seed=0, **SMALL)
    agent.train(160, progress_bar=False)
    row = agent.iteration()
    assert "loss/td" in row and row["train/munchausen_bonus"] <= 0


@pytest.mark.parametrize(
    "cls, options, loss_key",
    [
        (C51, {"n_atoms": 11}, "loss/categorical"),
        (C51, {"n_atoms": 11, "prioritized_replay": True, "double_q": True}, "loss/categorical"),
        (IQN, {"n_quantiles": 8, "n_target_quantiles": 6}, "loss/quantile"),
        (IQN, {"n_quantiles": 8, "prioritized_replay": True, "double_q": True}, "loss/quantile"),
        (Rainbow, {"n_atoms": 11}, "loss/categorical"),
        (RainbowIQN, {"n_quantiles": 8}, "loss/quantile"),
        (QRDQN, {"n_quantiles": 5, "dueling": True, "noisy": 0.5}, "loss/quantile"),
    ],
)
def test_updates_train_and_round_trip(
    tmp_path: Path, cls: type, options: dict[str, Any], loss_key: str
) -> None:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    agent = cls(env, seed=0, **SMALL, **options)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent.train(160, progress_bar=False)
    assert agent.num_updates > 0 and loss_key in agent.iteration()
    changed = [
        not torch.equal(a, b) for a, b in zip(before, agent.policy.parameters(), strict=True)
    ]
    assert all(changed)
    agent.save(tmp_path / "agent")
    loaded = load_agent(tmp_path / "agent")
    assert isinstance(loaded, cls)
    obs = torch.randn(5, 4)
    torch.testing.assert_close(loaded.policy.q_values(obs), agent.policy.q_values(obs))
    for a, b in zip(loaded.policy.buffers(), agent.policy.buffers(), strict=True):
        torch.testing.assert_close(a, b)  # the noise too


def test_rainbow_assembles_the_six_parts() -> None:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    for cls in (Rainbow, RainbowIQN):
        agent = cls(env, seed=0)
        cfg = agent.config
        assert (cfg.dueling, cfg.double_q, cfg.prioritized_replay, cfg.n_step) == (
            True,
            True,
            True,
            3,
        )
        assert cfg.exploration_initial_eps == cfg.exploration_final_eps == 0.0
        assert agent.policy.value_head is not None
        assert any(isinstance(m, NoisyLinear) for m in agent.policy.modules())
        assert agent.storage.n_step == 3
    explored = Rainbow(env, seed=0, learning_starts=0)
    obs = torch.randn(1, 4)
    assert torch.equal(
        torch.as_tensor(explored.explore(obs)), explored.policy.q_values(obs).argmax(-1)
    )


def test_iqn_loss_uses_the_sampled_fractions_and_runs_reproduce() -> None:
    seen: dict[str, torch.Tensor] = {}

    class Watch(IQN):
        def loss(self, name: str, inputs: Any) -> Any:
            seen.update(inputs)
            return super().loss(name, inputs)

    def run(cls: type) -> list[torch.Tensor]:
        env = make_vec_env("CartPole-v1", num_envs=1, seed=1)
        agent = cls(env, seed=1, n_quantiles=8, n_target_quantiles=6, **SMALL)
        agent.train(96, progress_bar=False)
        return [p.detach().clone() for p in agent.policy.parameters()]

    first = run(Watch)
    assert seen["taus"].shape == (16, 8) and seen["target_quantiles"].shape == (16, 6)
    assert float(seen["taus"].min()) > 0 and float(seen["taus"].max()) < 1
    value = QuantileHuberLoss()(seen)
    midpoint_value = QuantileHuberLoss()({k: v for k, v in seen.items() if k != "taus"})
    assert not torch.isclose(value, midpoint_value)
    for a, b in zip(first, run(IQN), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_c51_priorities_are_the_cross_entropies() -> None:
    reported: list[torch.Tensor] = []

    class Watch(C51):
        def report_td_errors(self, batch: Any, td_errors: torch.Tensor) -> None:
            reported.append(td_errors)
            super().report_td_errors(batch, td_errors)

    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    agent = Watch(env, seed=0, n_atoms=11, prioritized_replay=True, **SMALL)
    agent.train(64, progress_bar=False)
    assert reported and all(bool((e > 0).all()) for e in reported)
    assert td_target(torch.zeros(1), torch.ones(1), torch.ones(1)) == 1  # imported helper


@pytest.mark.parametrize("cls", [C51, IQN, Rainbow, RainbowIQN])
def test_onnx_export_is_the_greedy_mean_policy(cls: type, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from rlkit.export import to_onnx

    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    agent = cls(env, seed=0, **SMALL)
    agent.train(80, progress_bar=False)  # noisy agents now hold noise: export uses the mean
    result = to_onnx(agent, tmp_path / "policy.onnx")
    assert result.parity is not None and result.parity.ok and result.parity.mismatches == 0
