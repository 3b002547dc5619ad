"""Recurrent SAC: the policy's two memories, sequence training, and the masked Pendulum."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit.agents import SAC, RecurrentSAC
from rlkit.envs import PENDULUM_NOVEL_ID, make_vec_env
from rlkit.policies import POLICIES, RecurrentSquashedGaussianActorCritic

OBS = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
ACT = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)


def _policy(**kw: Any) -> RecurrentSquashedGaussianActorCritic:
    return RecurrentSquashedGaussianActorCritic(OBS, ACT, hidden_sizes=[8], hidden_size=6, **kw)


def test_state_spec_and_registration() -> None:
    assert POLICIES.get("recurrent_sac_policy") is RecurrentSquashedGaussianActorCritic
    policy = _policy()
    assert [s.name for s in policy.state_spec()] == ["actor_h", "actor_c", "critic_h", "critic_c"]
    gru = _policy(core="gru")
    assert [s.name for s in gru.state_spec()] == ["actor_h", "critic_h"]
    assert policy.actor_core is not policy.critic_core


def test_memories_of_a_sequence_equal_acting_step_by_step() -> None:
    torch.manual_seed(0)
    policy = _policy()
    steps, batch = 5, 3
    obs = torch.randn(steps, batch, 2)
    starts = (torch.rand(steps, batch) < 0.3).float()
    state = tuple(torch.randn(batch, 1, 6) for _ in range(4))
    actor, critic, final = policy.memories(obs.reshape(-1, 2), state, starts.reshape(-1))
    s: Any = state
    for t in range(steps):
        a_t, c_t, s_next = policy.memories(obs[t], s, starts[t])
        torch.testing.assert_close(actor.reshape(steps, batch, -1)[t], a_t)
        torch.testing.assert_close(critic.reshape(steps, batch, -1)[t], c_t)
        action, s = policy.act(obs[t], True, s, starts[t])
        expected = policy.to_env(torch.tanh(policy.actor(a_t)[:, :1]))
        torch.testing.assert_close(action, expected)
        for x, y in zip(s, s_next, strict=True):
            torch.testing.assert_close(x, y)
    assert final is not None
    for x, y in zip(final, s, strict=True):
        torch.testing.assert_close(x, y)


def test_the_actor_memory_does_not_train_the_encoder() -> None:
    policy = RecurrentSquashedGaussianActorCritic(
        OBS, ACT, encoder={"id": "mlp", "hidden_sizes": [4]}, hidden_sizes=[8], hidden_size=6
    )
    actor, critic, _ = policy.memories(torch.randn(4, 2))
    actor.sum().backward()
    assert all(p.grad is None for p in policy.encoder.parameters())
    critic.sum().backward()
    assert all(p.grad is not None for p in policy.encoder.parameters())


def _agent(**kw: Any) -> RecurrentSAC:
    env = make_vec_env(PENDULUM_NOVEL_ID, num_envs=2, seed=0)
    args: dict[str, Any] = dict(
        seed=0, burn_in=2, seq_len=4, batch_size=4, hidden_size=8, hidden_sizes=[8],
        learning_starts=20, buffer_size=400, log_interval=50,
    )  # fmt: skip
    return RecurrentSAC(env, **{**args, **kw})


@pytest.mark.parametrize("prioritized", [False, True])
def test_recurrent_sac_trains_all_three_losses(prioritized: bool) -> None:
    agent = _agent(prioritized_replay=prioritized, train_freq=2)
    before = {k: v.detach().clone() for k, v in agent.policy.state_dict().items()}
    agent.train(120)
    assert agent.num_updates > 0
    moved = {k for k, v in agent.policy.state_dict().items() if not torch.equal(v, before[k])}
    for part in ("actor_core", "actor.", "critic_core", "critic."):
        assert any(k.startswith(part) for k in moved), part
    assert float(agent.ent_coef()) != 1.0
    if prioritized:
        priorities = agent.storage.sampler.state_dict()["priorities"]
        assert len(set(priorities[priorities > 0].tolist())) > 2


def test_sac_refuses_a_recurrent_policy() -> None:
    env = make_vec_env(PENDULUM_NOVEL_ID, num_envs=1, seed=0)
    with pytest.raises(ValueError, match="SAC does not train recurrent policies"):
        SAC(env, policy="recurrent_sac_policy")


def test_pendulum_without_velocity_masks_only_the_velocity() -> None:
    full, masked = gym.make("Pendulum-v1"), gym.make(PENDULUM_NOVEL_ID)
    a, _ = full.reset(seed=3)
    b, _ = masked.reset(seed=3)
    assert masked.observation_space.shape == (2,)
    np.testing.assert_allclose(b, a[:2])
    for _ in range(200):
        action = np.array([1.5], np.float32)
        a, ra, _, trunc_a, _ = full.step(action)
        b, rb, _, trunc_b, _ = masked.step(action)
        np.testing.assert_allclose(b, a[:2])
        assert ra == rb and trunc_a == trunc_b
    assert trunc_b  # the 200-step limit


def test_exports_with_both_memories(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="ONNX export needs onnxruntime (rlkit[export])")
    pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (rlkit[export])")
    from rlkit.export import OnnxPolicy, to_onnx

    agent = _agent()
    agent.train(60)
    result = to_onnx(agent, tmp_path / "rsac.onnx")
    assert result.parity is not None and result.parity.ok, result.parity
    runner = OnnxPolicy(result.path)
    env = make_vec_env(PENDULUM_NOVEL_ID, num_envs=2, seed=4)
    obs, _ = env.reset(seed=4)
    state, starts = None, np.ones(2, dtype=bool)
    for _ in range(10):
        expected, state = agent.act_with_state(obs, state, starts, deterministic=True)
        got = runner.act(obs, episode_start=starts)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        obs, _, terminated, truncated, _ = env.step(got)
        starts = terminated | truncated
