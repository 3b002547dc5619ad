"""gSDE for on-policy agents (``gsde_on_policy_actor_critic``): the maths against
Stable-Baselines3's distribution, the redraw schedule of the rollout loop, smooth exploration,
checkpoints, export and what is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.agents import A2C, IMPALA, PPO, TRPO
from rlkit.envs import make_vec_env
from rlkit.export import to_onnx
from rlkit.policies import GSDEOnPolicyActorCritic
from rlkit.prototypes import load_agent

GSDE = {"id": "gsde_on_policy_actor_critic", "log_std_init": -1.0, "sample_freq": 4}
OBS, ACT = spaces.Box(-1.0, 1.0, (3,)), spaces.Box(-2.0, 2.0, (2,))


def policy(**kwargs: Any) -> GSDEOnPolicyActorCritic:
    torch.manual_seed(0)
    return GSDEOnPolicyActorCritic(OBS, ACT, **kwargs)


def test_log_probs_and_entropy_match_stable_baselines3() -> None:
    sb3 = pytest.importorskip("stable_baselines3.common.distributions")
    net = policy(log_std_init=-0.5, hidden_sizes=[8])
    with torch.no_grad():
        net.sde.log_std.normal_(-0.5, 0.3)
    obs = torch.rand(5, 3) * 2 - 1
    dist, _ = net.action_distribution(obs)
    latent = net.actor_trunk(net.encoder(obs))
    mean = net.action_head(latent)
    theirs = sb3.StateDependentNoiseDistribution(2, full_std=True, learn_features=False)
    theirs.proba_distribution(mean, net.sde.log_std, latent)
    actions = torch.randn(5, 2)
    assert torch.allclose(dist.log_prob(actions), theirs.log_prob(actions), atol=1e-5)
    assert torch.allclose(dist.entropy(), theirs.entropy(), atol=1e-5)
    assert torch.equal(dist.mode(), mean)


def test_a_sample_is_the_mean_plus_the_state_dependent_perturbation() -> None:
    net = policy(hidden_sizes=[8])
    net.sde.resample(4, torch.Generator().manual_seed(1))
    obs = torch.rand(4, 3)
    with torch.no_grad():
        latent = net.actor_trunk(net.encoder(obs))
        weights = net.sde.exploration * net.sde.std()  # [4, latent, A]
        expected = net.action_head(latent) + torch.einsum("bl,bla->ba", latent, weights)
        first = net.action_distribution(obs)[0].sample()
        again = net.action_distribution(obs)[0].sample()
    assert torch.allclose(first, expected, atol=1e-6)
    assert torch.equal(first, again)  # the same state, the same draw: the same action
    net.sde.resample(4, torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert not torch.equal(net.action_distribution(obs)[0].sample(), first)


def test_gradients_reach_log_std_but_not_the_features_through_the_noise() -> None:
    net = policy(hidden_sizes=[8])
    obs = torch.rand(6, 3)
    dist, _ = net.action_distribution(obs)
    dist.log_prob(torch.zeros(6, 2)).sum().backward()
    assert net.sde.log_std.grad is not None and net.sde.log_std.grad.abs().sum() > 0
    # the trunk gets gradient through the mean only: with the head frozen at zero it gets none
    net.zero_grad()
    with torch.no_grad():
        net.action_head.weight.zero_()
    dist, _ = net.action_distribution(obs)
    dist.log_prob(torch.zeros(6, 2)).sum().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in net.actor_trunk.parameters())


@pytest.mark.parametrize(("sample_freq", "expected"), [(-1, [0, 16]), (4, [0, 8, 16, 24])])
def test_the_rollout_redraws_at_its_start_and_every_sample_freq_steps(
    sample_freq: int, expected: list[int]
) -> None:
    env = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    agent = PPO(
        env, seed=0, num_steps=8, batch_size=16, policy={**GSDE, "sample_freq": sample_freq}
    )
    draws: list[int] = []
    resample = agent.sde.resample

    def spy(rows: int, generator: torch.Generator | None = None) -> None:
        draws.append(agent.global_step)
        resample(rows, generator)

    agent.sde.resample = spy  # type: ignore[method-assign]
    agent.train(32, progress_bar=False)
    assert draws == expected


@pytest.mark.parametrize("cls", [PPO, A2C, TRPO])
def test_on_policy_agents_train_and_resume_exactly(cls: type, tmp_path: Path) -> None:
    def make() -> Any:
        return make_vec_env("Pendulum-v1", num_envs=2, seed=3)

    config: dict[str, Any] = {"num_steps": 16, "policy": GSDE}
    if cls is PPO:
        config["batch_size"] = 16
    whole = cls(make(), seed=1, num_threads=1, **config).train(128, progress_bar=False)
    first = cls(make(), seed=1, num_threads=1, **config).train(64, progress_bar=False)
    first.save(tmp_path / "ckpt")
    resumed = load_agent(tmp_path / "ckpt")
    assert torch.equal(resumed.sde.exploration, first.sde.exploration)
    resumed.train(128, progress_bar=False)
    for (name, a), b in zip(
        whole.policy.state_dict().items(), resumed.policy.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert not torch.equal(whole.policy.sde.log_std, torch.full_like(whole.policy.sde.log_std, -1))


def test_onnx_export_acts_with_the_mean(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    env = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    agent = PPO(env, seed=0, num_steps=8, batch_size=16, policy=GSDE).train(16, progress_bar=False)
    result = to_onnx(agent, tmp_path / "p.onnx")
    assert result.parity is not None and result.parity.ok, result.parity


def test_what_gsde_cannot_do_is_refused() -> None:
    with pytest.raises(TypeError, match="gSDE explores continuous actions"):
        GSDEOnPolicyActorCritic(OBS, spaces.Discrete(3))
    with pytest.raises(ValueError, match="sample_freq"):
        PPO(make_vec_env("Pendulum-v1", seed=0), policy={**GSDE, "sample_freq": 0})
    with pytest.raises(ValueError, match="IMPALA: GSDEOnPolicyActorCritic explores with gSDE"):
        IMPALA(make_vec_env("Pendulum-v1", num_envs=2, seed=0), policy=GSDE)
    dist = GSDEOnPolicyActorCritic(OBS, ACT).distribution
    with pytest.raises(ValueError, match="needs the actor's latent features"):
        dist.forward(torch.zeros(1, 2))


def test_an_evaluation_batch_of_another_size_still_explores() -> None:
    net = policy()
    net.sde.allocate(2)  # the training env's two rows
    obs = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (5, 3)), dtype=torch.float32)
    with torch.no_grad():
        actions, _ = net.act(obs)
    assert actions.shape == (5, 2) and not torch.equal(actions, net.act(obs, True)[0])
