"""DQN: TD targets from the storage's discounts, double Q, prioritized replay priorities,
epsilon schedule, spaces."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rlkit.agents import DQN, SACDiscrete
from rlkit.envs import make_vec_env
from rlkit.policies import QNetwork
from rlkit.storages import PrioritizedSampler, ReplayBatch

TINY: dict[str, Any] = {"learning_starts": 0, "batch_size": 16, "buffer_size": 500}


def _dqn(**kw: Any) -> DQN:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    return DQN(env, seed=0, hidden_sizes=[32, 32], **{**TINY, **kw})


def _batch(n: int = 16, discount: float = 0.5, seed: int = 0) -> ReplayBatch:
    g = torch.Generator().manual_seed(seed)
    dones = (torch.rand(n, generator=g) < 0.3).float()
    return ReplayBatch(
        obs=torch.randn(n, 4, generator=g),
        actions=torch.randint(0, 2, (n,), generator=g),
        rewards=torch.randn(n, generator=g),
        next_obs=torch.randn(n, 4, generator=g),
        # deliberately not gamma * (1 - dones): the agent must use the storage's discounts
        discounts=torch.where(dones.bool(), 0.0, discount),
        dones=dones,
        weights=torch.ones(n),
        indices=torch.arange(n),
    )


def _expected_td(agent: DQN, batch: ReplayBatch, double: bool) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        next_q = agent.target.net.q_values(batch.next_obs)
        if double:
            best = agent.policy.q_values(batch.next_obs).argmax(-1, keepdim=True)
            next_v = next_q.gather(-1, best).squeeze(-1)
        else:
            next_v = next_q.max(-1).values
        target = batch.rewards + batch.discounts * next_v
        q = agent.policy.q_values(batch.obs).gather(-1, batch.actions.view(-1, 1)).squeeze(-1)
    return q, target


@pytest.mark.parametrize("double", [False, True])
def test_td_target_uses_the_storage_discounts(double: bool) -> None:
    agent = _dqn(double_q=double, target_update_interval=1000)
    with torch.no_grad():  # make target and online nets differ so double Q matters
        for p in agent.target.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    batch = _batch()
    q, target = _expected_td(agent, batch, double)
    metrics = agent.update(batch)
    torch.testing.assert_close(metrics["loss/td"], F.smooth_l1_loss(q, target))
    # the same batch with other discounts gives another loss (the discounts are really used)
    agent2 = _dqn(double_q=double, target_update_interval=1000)
    b2 = _batch(discount=0.99)
    q2, t2 = _expected_td(agent2, b2, double)
    assert not torch.allclose(F.smooth_l1_loss(q2, t2), metrics["loss/td"])


def test_double_q_differs_from_max() -> None:
    agent = _dqn()
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in agent.target.parameters():
            p.add_(torch.randn(p.shape, generator=g))
    batch = _batch(256)
    _, plain = _expected_td(agent, batch, double=False)
    _, double = _expected_td(agent, batch, double=True)
    assert (double <= plain + 1e-6).all() and not torch.allclose(double, plain)


def test_prioritized_replay_receives_the_td_errors() -> None:
    agent = _dqn(prioritized_replay=True, per_alpha=0.7, target_update_interval=1000)
    agent.collect(64)
    sampler = agent.storage.sampler
    assert isinstance(sampler, PrioritizedSampler) and sampler.tree is not None
    batch = agent.storage.sample(32, torch.Generator().manual_seed(1))
    before = sampler.tree.get(batch.indices.numpy()).copy()
    q, target = _expected_td(agent, batch, double=False)
    metrics = agent.update(batch)
    after = sampler.tree.get(batch.indices.numpy())
    expected = (np.abs((q - target).numpy()).astype(np.float64) + sampler.eps) ** 0.7
    np.testing.assert_allclose(after, expected, rtol=1e-5)
    assert not np.allclose(before, after)
    # the loss is importance-weighted
    loss = (batch.weights * F.smooth_l1_loss(q, target, reduction="none")).mean()
    torch.testing.assert_close(metrics["loss/td"], loss)
    assert sampler.max_priority == pytest.approx(
        max(1.0, float(np.abs((q - target).numpy()).max()) + sampler.eps)
    )


def test_prioritized_training_changes_sampling_weights() -> None:
    agent = _dqn(prioritized_replay=True, per_beta=0.5)
    agent.train(256, progress_bar=False)
    batch = agent.storage.sample(64, torch.Generator().manual_seed(0))
    assert batch.weights.max() <= 1.0 + 1e-6  # weights only ever scale updates down
    assert batch.weights.min() < 1.0  # priorities differ, so do the weights


def test_epsilon_schedule_and_exploration() -> None:
    agent = _dqn(exploration_fraction=0.5, exploration_initial_eps=1.0,
                 exploration_final_eps=0.1)  # fmt: skip
    agent.train(200, progress_bar=False)
    schedule = agent.exploration_schedule()
    assert schedule(0) == 1.0 and schedule(50) == pytest.approx(0.55)
    assert schedule(100) == pytest.approx(0.1) and schedule(200) == pytest.approx(0.1)
    assert agent.iteration_metrics()["train/epsilon"] == pytest.approx(0.1)
    obs = torch.randn(2, 4)
    greedy = agent.policy.act(obs)[0].numpy()
    agent.global_step = 10_000  # eps 0.1: mostly greedy
    hits = sum(np.array_equal(agent.explore(obs), greedy) for _ in range(200))
    assert 130 < hits < 195  # P(both envs greedy) = (0.9 + 0.05)^2 ~ 0.9


def test_dueling_and_n_step_options() -> None:
    agent = _dqn(dueling=True, n_step=3)
    assert isinstance(agent.policy, QNetwork) and agent.policy.dueling
    assert agent.storage.n_step == 3
    agent.train(64, progress_bar=False)
    assert agent.num_updates > 0


def test_discrete_start_actions() -> None:
    """Discrete(n, start) spaces: stored env actions are shifted back to indices."""
    import gymnasium as gym
    from gymnasium import spaces

    class Shifted(gym.ActionWrapper):
        def __init__(self, env: gym.Env) -> None:
            super().__init__(env)
            self.action_space = spaces.Discrete(2, start=5)

        def action(self, action: Any) -> Any:
            assert action in (5, 6), action
            return int(action) - 5

    env = make_vec_env(lambda: Shifted(gym.make("CartPole-v1")), num_envs=2, seed=0)
    for cls in (DQN, SACDiscrete):
        agent = cls(env, seed=0, hidden_sizes=[16], **TINY)
        agent.train(64, progress_bar=False)
        assert set(np.unique(agent.storage.actions[:64])) <= {5, 6}
        assert set(agent.act(np.zeros((8, 4), np.float32)).tolist()) <= {5, 6}


@pytest.mark.parametrize("cls", [DQN, SACDiscrete])
def test_discrete_agents_reject_box_actions(cls: type) -> None:
    env = make_vec_env("Pendulum-v1", num_envs=1)
    with pytest.raises(TypeError) as info:
        cls(env)
    msg = str(info.value)
    assert f"{cls.__name__} does not support action space Box" in msg
    assert "supported: Discrete" in msg


def test_invalid_hyperparameters() -> None:
    env = make_vec_env("CartPole-v1", num_envs=1)
    for kw, pattern in (
        ({"exploration_final_eps": 1.5}, "exploration_final_eps"),
        ({"tau": 0.0}, "tau"),
        ({"gradient_steps": 0}, "gradient_steps"),
        ({"buffer_size": 0}, "buffer_size"),
    ):
        with pytest.raises(ValueError, match=pattern):
            DQN(env, **kw)


@pytest.mark.parametrize("options", ["plain", "prioritized", "double", "dueling"])
def test_fast_backend_matches_reference(options: str) -> None:
    """The same updates, gradients and priorities on the fast backend (MLP kernel, closed-form
    TD term, fused Adam) as with plain autograd."""
    kw = {
        "prioritized_replay": options == "prioritized",
        "double_q": options == "double",
        "dueling": options == "dueling",
    }
    fast, ref = _dqn(**kw), _dqn(**kw, compute="reference")
    for agent in (fast, ref):
        agent.collect(64)
    for step in range(3):
        batches = [a.storage.sample(32, torch.Generator().manual_seed(step)) for a in (fast, ref)]
        m1, m2 = fast.update(batches[0]), ref.update(batches[1])
        torch.testing.assert_close(m1["loss/td"], m2["loss/td"])
        torch.testing.assert_close(fast.optimizer.flat.grad, ref.optimizer.flat.grad)
        torch.testing.assert_close(fast.optimizer.flat, ref.optimizer.flat)
    if options == "prioritized":
        idx = batches[0].indices.numpy()
        np.testing.assert_allclose(
            fast.storage.sampler.tree.get(idx), ref.storage.sampler.tree.get(idx), rtol=1e-5
        )


def test_training_rounds_match_the_reference_backend() -> None:
    fast = _dqn(train_freq=8, gradient_steps=8)
    ref = _dqn(train_freq=8, gradient_steps=8, compute="reference")
    for agent in (fast, ref):
        agent.collect(64)
        agent.train_round(8)
    torch.testing.assert_close(fast.optimizer.flat, ref.optimizer.flat, rtol=1e-4, atol=1e-5)


def test_greedy_actions_match_on_both_backends() -> None:
    obs = torch.randn(2, 4)
    fast, ref = _dqn(learning_starts=10**6), _dqn(learning_starts=10**6, compute="reference")
    ref.policy.load_state_dict(fast.policy.state_dict())
    with torch.inference_mode():
        a, b = fast.greedy_actions(obs), ref.greedy_actions(obs)
        c = fast.policy.act(obs)[0].numpy()
    assert a.dtype == np.int64
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_exploration_draws_alike_on_both_backends() -> None:
    obs = torch.as_tensor(np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32))
    fast_agent, ref_agent = _dqn(), _dqn(compute="reference")
    ref_agent.policy.load_state_dict(fast_agent.policy.state_dict())
    for agent in (fast_agent, ref_agent):
        agent._target_steps = 1000
        agent.global_step = 500  # epsilon 1 -> 0.05 over 100 steps: greedy with some noise
    for _ in range(20):
        with torch.inference_mode():
            a, b = fast_agent.explore(obs), ref_agent.explore(obs)
        np.testing.assert_array_equal(a, b)
