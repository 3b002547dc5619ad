"""SAC, SAC-discrete, TD3 and DDPG: update maths against hand computations, entropy tuning
direction, delayed actor updates, spaces."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.agents import DDPG, SAC, TD3, SACDiscrete
from rlkit.envs import make_vec_env
from rlkit.storages import ReplayBatch

TINY: dict[str, Any] = {"learning_starts": 0, "batch_size": 16, "buffer_size": 500}


def _pendulum(cls: type, **kw: Any) -> Any:
    env = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    return cls(env, seed=0, hidden_sizes=[32, 32], **{**TINY, **kw})


def _batch(n: int = 16, seed: int = 0) -> ReplayBatch:
    g = torch.Generator().manual_seed(seed)
    dones = (torch.rand(n, generator=g) < 0.3).float()
    return ReplayBatch(
        obs=torch.randn(n, 3, generator=g),
        actions=torch.rand(n, 1, generator=g) * 4 - 2,
        rewards=torch.randn(n, generator=g),
        next_obs=torch.randn(n, 3, generator=g),
        discounts=torch.where(dones.bool(), 0.0, 0.5),  # not gamma: the storage decides
        dones=dones,
        weights=torch.ones(n),
        indices=torch.arange(n),
    )


def _clone_generator(agent: Any) -> torch.Generator:
    return torch.Generator().manual_seed(0).set_state(agent._generator.get_state())


# --------------------------------------------------------------------------- SAC
def test_sac_critic_loss_matches_the_soft_td_target() -> None:
    agent = _pendulum(SAC, ent_coef="auto_0.3")
    batch = _batch()
    policy, target, gen = agent.policy, agent.target.net, _clone_generator(agent)
    with torch.no_grad():
        alpha = agent.ent_coef()
        policy.action_distribution(policy.features(batch.obs)).rsample_with_log_prob(gen)
        nd = policy.action_distribution(policy.features(batch.next_obs))
        next_a, next_lp = nd.rsample_with_log_prob(gen)
        next_q = torch.minimum(*target.q_values(target.features(batch.next_obs), next_a))
        y = batch.rewards + batch.discounts * (next_q - alpha * next_lp)
        q = policy.q_values(policy.features(batch.obs), batch.actions / 2.0)  # Box [-2, 2]
        expected = 0.5 * ((q[0] - y).pow(2).mean() + (q[1] - y).pow(2).mean())
    assert alpha.item() == pytest.approx(0.3)
    metrics = agent.update(batch)
    torch.testing.assert_close(metrics["loss/critic"], expected)


@pytest.mark.parametrize("direction", ["up", "down"])
def test_sac_entropy_coefficient_moves_toward_the_target(direction: str) -> None:
    # an unreachable target entropy (a 1-d tanh-Gaussian's entropy is below ~0.7) makes alpha
    # grow; a very low target makes it shrink
    target_entropy = 5.0 if direction == "up" else -20.0
    agent = _pendulum(SAC, target_entropy=target_entropy)
    agent.collect(32)
    start = agent.ent_coef().item()
    for _ in range(20):
        agent.train_step()
    end = agent.ent_coef().item()
    assert (end > start) if direction == "up" else (end < start)


def test_sac_defaults_and_fixed_entropy_coefficient() -> None:
    agent = _pendulum(SAC)
    assert agent.target_entropy == -1.0  # -dim(A)
    assert agent.ent_optimizer is not None and agent.ent_coef().item() == pytest.approx(1.0)
    fixed = _pendulum(SAC, ent_coef=0.1)
    assert fixed.ent_optimizer is None and "ent_coef" not in fixed.optimizers()
    fixed.train(64, progress_bar=False)
    assert fixed.ent_coef().item() == pytest.approx(0.1)
    with pytest.raises(ValueError, match="ent_coef"):
        _pendulum(SAC, ent_coef="sometimes")


@pytest.mark.parametrize("compute", ["fast", "reference"])
def test_sac_actor_step_leaves_the_critics_alone(compute: str) -> None:
    agent = _pendulum(SAC, compute=compute)
    agent.collect(32)
    batch = agent.storage.sample(16, agent._generator)
    critic_flat = agent.critic_optimizer.flat
    snapshot: dict[str, torch.Tensor] = {}
    original = agent.clip_and_step

    def step_and_snapshot(loss: Any, optimizer: Any = None) -> Any:
        out = original(loss, optimizer)
        if optimizer is agent.critic_optimizer:
            snapshot["after_critic_step"] = critic_flat.detach().clone()
        return out

    agent.clip_and_step = step_and_snapshot  # type: ignore[method-assign]
    actor_before = agent.actor_optimizer.flat.detach().clone()
    agent.update(batch)
    torch.testing.assert_close(critic_flat.detach(), snapshot["after_critic_step"])
    assert not torch.equal(agent.actor_optimizer.flat.detach(), actor_before)


# --------------------------------------------------------------------------- SAC-discrete
@pytest.mark.parametrize("direction", ["up", "down"])
def test_sac_discrete_entropy_tuning(direction: str) -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    ratio = 1.0 if direction == "up" else 0.0
    agent = SACDiscrete(env, seed=0, target_entropy_ratio=ratio, hidden_sizes=[32], **TINY)
    assert agent.target_entropy == pytest.approx(ratio * np.log(2))
    agent.collect(32)
    start = agent.ent_coef().item()
    for _ in range(20):
        metrics = agent.train_step()
    end = agent.ent_coef().item()
    assert (end > start) if direction == "up" else (end < start)
    assert 0.0 <= float(metrics["train/entropy"]) <= np.log(2) + 1e-6


def test_sac_discrete_soft_value_target() -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = SACDiscrete(env, seed=0, hidden_sizes=[32], **TINY)
    g = torch.Generator().manual_seed(0)
    batch = ReplayBatch(
        obs=torch.randn(8, 4, generator=g),
        actions=torch.randint(0, 2, (8,), generator=g),
        rewards=torch.randn(8, generator=g),
        next_obs=torch.randn(8, 4, generator=g),
        discounts=torch.full((8,), 0.5),
        dones=torch.zeros(8),
        weights=torch.ones(8),
        indices=torch.arange(8),
    )
    p, t = agent.policy, agent.target.net
    with torch.no_grad():
        alpha = agent.ent_coef()
        logits = torch.log_softmax(p.actor(p.features(batch.next_obs)), -1)
        next_q = t.q_values(t.features(batch.next_obs)).min(0).values
        v = (logits.exp() * (next_q - alpha * logits)).sum(-1)
        y = batch.rewards + 0.5 * v
        q = p.q_values(p.features(batch.obs)).gather(
            -1, batch.actions.view(1, -1, 1).expand(2, -1, 1)
        )
        expected = 0.5 * (q.squeeze(-1) - y).pow(2).mean(-1).sum()
    torch.testing.assert_close(agent.update(batch)["loss/critic"], expected)


# --------------------------------------------------------------------------- TD3 / DDPG
def test_td3_delays_the_actor_and_the_targets() -> None:
    agent = _pendulum(TD3, policy_delay=2)
    agent.collect(32)
    actor = agent.actor_optimizer.flat.detach().clone()
    target = [p.clone() for p in agent.target.parameters()]
    agent.train_step()  # update 1: critics only
    assert torch.equal(agent.actor_optimizer.flat.detach(), actor)
    assert all(torch.equal(a, b) for a, b in zip(agent.target.parameters(), target, strict=True))
    agent.train_step()  # update 2: actor and targets
    assert not torch.equal(agent.actor_optimizer.flat.detach(), actor)
    assert any(
        not torch.equal(a, b) for a, b in zip(agent.target.parameters(), target, strict=True)
    )


def test_td3_target_policy_smoothing() -> None:
    agent = _pendulum(TD3, target_policy_noise=0.2, target_noise_clip=0.05)
    batch = _batch()
    t, gen = agent.target.net, _clone_generator(agent)
    with torch.no_grad():
        nf = t.features(batch.next_obs)
        a = t.actor_action(nf)
        noise = (torch.randn(a.shape, generator=gen) * 0.2).clamp(-0.05, 0.05)
        assert noise.abs().max() == pytest.approx(0.05)  # the clip is active
        next_q = t.q_values(nf, (a + noise).clamp(-1, 1)).min(0).values
        y = batch.rewards + batch.discounts * next_q
        q = agent.policy.q_values(agent.policy.features(batch.obs), batch.actions / 2.0)
        expected = (q - y).pow(2).mean(-1).sum()
    torch.testing.assert_close(agent.update(batch)["loss/critic"], expected)


def test_ddpg_is_td3_without_its_tricks() -> None:
    agent = _pendulum(DDPG)
    assert agent.policy.num_critics == 1
    assert agent.config.policy_delay == 1 and agent.config.target_policy_noise == 0.0
    agent.collect(32)
    actor = agent.actor_optimizer.flat.detach().clone()
    agent.train_step()
    assert not torch.equal(agent.actor_optimizer.flat.detach(), actor)


def test_td3_rejects_a_separate_target_interval() -> None:
    env = make_vec_env("Pendulum-v1", num_envs=1)
    with pytest.raises(ValueError, match="target_update_interval"):
        TD3(env, target_update_interval=2)


# --------------------------------------------------------------------------- spaces
@pytest.mark.parametrize("cls", [SAC, TD3, DDPG])
def test_continuous_agents_reject_discrete_and_unbounded_actions(cls: type) -> None:
    env = make_vec_env("CartPole-v1", num_envs=1)
    with pytest.raises(TypeError) as info:
        cls(env)
    assert f"{cls.__name__} does not support action space Discrete(2)" in str(info.value)
    assert "supported: Box" in str(info.value)

    class Unbounded(gym.ActionWrapper):
        def __init__(self, env: gym.Env) -> None:
            super().__init__(env)
            self.action_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)

        def action(self, action: Any) -> Any:
            return action

    env = make_vec_env(lambda: Unbounded(gym.make("Pendulum-v1")), num_envs=1)
    with pytest.raises(ValueError, match="finite bounds"):
        cls(env)


def test_multidimensional_box_actions() -> None:
    class TwoByTwo(gym.Env[np.ndarray, np.ndarray]):
        observation_space = spaces.Box(-1, 1, (3,), np.float32)
        action_space = spaces.Box(-3, 3, (2, 2), np.float32)

        def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
            super().reset(seed=seed)
            return np.zeros(3, np.float32), {}

        def step(self, action: np.ndarray) -> Any:
            assert action.shape == (2, 2) and np.all(np.abs(action) <= 3)
            return np.full(3, 0.1, np.float32), float(-np.abs(action).sum()), False, False, {}

    env = make_vec_env(TwoByTwo, num_envs=2, seed=0)
    for cls in (SAC, TD3):
        agent = cls(env, seed=0, hidden_sizes=[16], **TINY)
        agent.train(64, progress_bar=False)
        assert agent.storage.actions.shape[1:] == (4,)
        assert agent.act(np.zeros((5, 3), np.float32)).shape == (5, 2, 2)
        if cls is SAC:
            assert agent.target_entropy == -4.0


# --------------------------------------------------------------------------- backends
@pytest.mark.parametrize("prioritized", [False, True])
def test_sac_fast_update_matches_reference(prioritized: bool) -> None:
    """The fast backend (MLP and squash kernels, closed-form terms, fused Adam) makes the same
    updates, noise draws and priorities as plain autograd (up to rounding)."""
    agents = []
    for compute in ("fast", "reference"):  # built and filled one after the other (same seeds)
        agent = _pendulum(SAC, prioritized_replay=prioritized, compute=compute)
        agent.collect(40)
        agents.append(agent)
    fast, ref = agents
    for step in range(3):
        batches = [a.storage.sample(16, torch.Generator().manual_seed(step)) for a in agents]
        m1, m2 = fast.update(batches[0]), ref.update(batches[1])
        assert set(m1) == set(m2) >= {"loss/critic", "loss/actor", "loss/ent_coef"}
        for key in m1:  # (loss/ent_coef is a near-cancelling mean: absolute tolerance)
            torch.testing.assert_close(m1[key], m2[key], rtol=1e-4, atol=1e-4)
        for name in ("critic", "actor", "ent_coef"):
            torch.testing.assert_close(
                fast._groups[name].flat, ref._groups[name].flat, rtol=1e-4, atol=1e-5
            )
    assert torch.equal(fast._generator.get_state(), ref._generator.get_state())
    if prioritized:
        idx = batches[0].indices.numpy()
        np.testing.assert_allclose(
            fast.storage.sampler.tree.get(idx), ref.storage.sampler.tree.get(idx), rtol=1e-5
        )


def test_sac_kernels_apply_by_capability() -> None:
    """Kernels run where a module computes what they reproduce: not for tanh networks, nor
    with a hook registered (the hook must run), and a custom encoder keeps them elsewhere."""
    from rlkit.backends import use
    from rlkit.encoders import MLP
    from rlkit.policies.ensemble import kernel_applies

    env = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    x = torch.zeros(4, 3 + 1)
    tanh = SAC(env, policy={"id": "squashed_gaussian_actor_critic", "activation": "tanh"}, **TINY)
    agent = _pendulum(SAC)
    with use("fast"):
        assert not kernel_applies(tanh.policy.critic, x, tanh.policy.critic._relu)
        assert kernel_applies(agent.policy.critic, x, True)
        agent.policy.critic.register_forward_hook(lambda *args: None)
        assert not kernel_applies(agent.policy.critic, x, True)
    with use("reference"):
        assert not kernel_applies(_pendulum(SAC).policy.critic, x, True)
    custom = SAC(env, encoder=MLP(env.single_observation_space, feature_dim=8), **TINY)
    custom.collect(32)
    before = custom.critic_optimizer.flat.detach().clone()
    metrics = custom.update(custom.storage.sample(8))
    assert np.isfinite(float(metrics["loss/critic"]))
    assert not torch.equal(custom.critic_optimizer.flat.detach(), before)


@pytest.mark.parametrize("deterministic", [False, True])
def test_sac_numpy_acting_matches_the_distribution(deterministic: bool) -> None:
    from rlkit.backends import use

    agent = _pendulum(SAC)
    policy = agent.policy
    obs = torch.randn(3, 3)
    with torch.inference_mode():
        torch.manual_seed(7)
        with use("fast"):
            fast, _ = policy.act(obs, deterministic=deterministic)  # NumPy path (small batch)
        torch.manual_seed(7)
        dist = policy.distribution(policy.actor(policy.features(obs)).clone())
        slow = policy.to_env(dist.mode() if deterministic else dist.sample())
    assert fast.shape == (3, 1) and fast.dtype == torch.float32
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-5)
    assert (fast.abs() <= 2.0).all()  # Pendulum's bounds


def test_sac_explores_alike_on_both_backends() -> None:
    obs = torch.as_tensor(np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32))
    actions = []
    for compute in ("fast", "reference"):
        agent = _pendulum(SAC, compute=compute)
        torch.manual_seed(3)
        with torch.inference_mode():
            actions.append(agent.explore(obs))
    assert actions[0].dtype == np.float32 and actions[0].shape == (2, 1)
    np.testing.assert_allclose(actions[0], actions[1], rtol=1e-5, atol=1e-6)


def test_sac_policy_subclass_overrides_run_on_the_fast_backend() -> None:
    """A policy subclass's own sample_with_log_prob runs on every backend."""
    from rlkit.policies.twin_q import SquashedGaussianActorCritic

    calls: list[str] = []

    class Custom(SquashedGaussianActorCritic):
        def sample_with_log_prob(self, features: Any, generator: Any = None) -> Any:
            calls.append("sample")
            return super().sample_with_log_prob(features, generator)

    env = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    policy = Custom(env.single_observation_space, env.single_action_space, hidden_sizes=[16])
    agent = SAC(env, policy=policy, **TINY)
    agent.collect(16)
    agent.update(agent.storage.sample(8))
    assert calls == ["sample", "sample"]
