"""gSDE as a distribution family (``state_dependent_gaussian``): on recurrent and Transformer
actor-critics (sb3-contrib's RecurrentPPO with ``use_sde``), on the plain ``actor_critic``,
checkpoints and export with the state, and the policies that cannot give it features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from gymnasium import spaces

from rlkit.agents import PPO
from rlkit.distributions import StateDependentGaussian, StateDependentNoise, state_dependent_noise
from rlkit.envs import make_vec_env
from rlkit.export import to_onnx
from rlkit.policies import POLICIES
from rlkit.prototypes import load_agent

SDE = {"id": "state_dependent_gaussian", "log_std_init": -1.0, "sample_freq": 4}
OBS, ACT = spaces.Box(-1.0, 1.0, (3,)), spaces.Box(-2.0, 2.0, (2,))


def recurrent(kind: str, **extra: Any) -> dict[str, Any]:
    return {"id": kind, "hidden_sizes": [16], "distribution": SDE, **extra}


def make_env() -> Any:
    return make_vec_env("rlkit/PendulumNoVel-v1", num_envs=2, seed=3)


@pytest.mark.parametrize(
    "kind", ["lstm_actor_critic", "gru_actor_critic", "transformer_actor_critic"]
)
def test_sequence_policies_explore_with_the_noise_of_their_trunk(kind: str) -> None:
    extra = {"hidden_size": 8} if kind != "transformer_actor_critic" else {"d_model": 8}
    agent = PPO(make_env(), seed=0, num_steps=8, batch_size=16, policy=recurrent(kind, **extra))
    sde = agent.sde
    assert sde is not None and sde is agent.policy.distribution.sde
    assert sde is state_dependent_noise(agent.policy)
    assert sde.log_std.shape == (16, 1) and sde.sample_freq == 4
    assert torch.all(sde.log_std == -1.0)
    agent.train(32, progress_bar=False)
    assert sde.exploration.shape == (2, 16, 1)
    assert not torch.all(sde.log_std == -1.0)  # learned: it is among the policy's parameters


def test_log_probs_are_the_marginal_of_the_trunk_features() -> None:
    torch.manual_seed(0)
    net = POLICIES.build(
        recurrent("lstm_actor_critic", hidden_size=8), observation_space=OBS, action_space=ACT
    )
    obs = torch.randn(5, 3)
    out = net(obs, net.initial_state(5), torch.ones(5))
    memory, _, _ = net._cores(obs, net.initial_state(5), torch.ones(5), critic=False)
    latent = net.actor_trunk(memory).detach()
    sigma = net.distribution.sde.log_std.exp()
    scale = (latent.square() @ sigma.square() + 1e-6).sqrt()
    mean = net.action_head(net.actor_trunk(memory))
    actions = torch.randn(5, 2)
    expected = torch.distributions.Normal(mean, scale).log_prob(actions).sum(-1)
    torch.testing.assert_close(out.dist.log_prob(actions), expected)


def test_recurrent_gsde_resumes_exactly(tmp_path: Path) -> None:
    config = {"num_steps": 16, "batch_size": 16, "policy": recurrent("lstm_actor_critic")}
    whole = PPO(make_env(), seed=1, num_threads=1, **config).train(96, progress_bar=False)
    first = PPO(make_env(), seed=1, num_threads=1, **config).train(64, progress_bar=False)
    first.save(tmp_path / "ckpt")
    resumed = load_agent(tmp_path / "ckpt")
    assert torch.equal(resumed.sde.exploration, first.sde.exploration)
    resumed.train(96, progress_bar=False)
    for (name, a), b in zip(
        whole.policy.state_dict().items(), resumed.policy.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_onnx_export_of_a_recurrent_gsde_policy_acts_with_the_mean(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    agent = PPO(
        make_env(), seed=0, num_steps=8, batch_size=16, policy=recurrent("gru_actor_critic")
    )
    agent.train(16, progress_bar=False)
    result = to_onnx(agent, tmp_path / "p.onnx")
    assert result.parity is not None and result.parity.ok, result.parity


def test_the_plain_actor_critic_takes_it_and_the_fused_kernel_stays_off() -> None:
    env = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    agent = PPO(env, seed=0, num_steps=8, batch_size=16, distribution=SDE)
    assert agent.sde is agent.policy.distribution.sde and agent.sde.latent_dim == 64
    assert agent.policy.fused_kernel() is None
    agent.train(16, progress_bar=False)


def test_policies_that_do_not_pass_features_refuse_it_by_name() -> None:
    with pytest.raises(ValueError, match="reads the actor's features, which"):
        POLICIES.build(
            {"id": "decoupled_actor_critic", "distribution": SDE},
            observation_space=OBS,
            action_space=ACT,
        )
    with pytest.raises(TypeError, match="gSDE explores continuous actions"):
        StateDependentGaussian(spaces.Discrete(3))
    dist = StateDependentGaussian(ACT)
    with pytest.raises(RuntimeError, match="bind_features"):
        _ = dist.sde
    dist.bind_features(4)
    with pytest.raises(ValueError, match="bound to 4 actor features, got feature_dim=5"):
        dist.bind_features(5)
    with pytest.raises(ValueError, match="sample_freq"):
        StateDependentGaussian(ACT, sample_freq=0)


@pytest.mark.parametrize(("sample_freq", "expected"), [(-1, [0]), (4, [0, 4, 8])])
def test_redraw_draws_at_a_period_start_and_every_sample_freq_steps(
    sample_freq: int, expected: list[int]
) -> None:
    noise = StateDependentNoise(3, 1)
    noise.sample_freq = sample_freq
    generator = torch.Generator().manual_seed(0)
    drawn = []
    for position in range(10):
        before = noise.exploration.clone()
        noise.redraw(position, 2, generator)
        if not torch.equal(before, noise.exploration):
            drawn.append(position)
    assert drawn == expected
