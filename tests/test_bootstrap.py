"""Truncation bootstrapping in the on-policy rollout loop and GAE across episode boundaries."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.agents import A2C, PPO
from rlkit.envs import make_vec_env
from rlkit.storages.rollout import compute_gae

GAMMA = 0.9
K = 5  # episode length of the test env


class CountdownEnv(gym.Env[np.ndarray, np.int64]):
    """Reward 1 per step; observation ``[t / k, 1]``; ends after ``k`` steps.

    ``end`` selects how: "truncate" (time limit), "terminate" (true end) or "both" (a
    terminal state reached exactly at the time limit).
    """

    def __init__(self, k: int = K, end: str = "truncate") -> None:
        self.k, self.end = k, end
        self.t = 0
        self.observation_space = spaces.Box(-10.0, 10.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        return np.array([self.t / self.k, 1.0], dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        finished = self.t >= self.k
        terminated = finished and self.end in ("terminate", "both")
        truncated = finished and self.end in ("truncate", "both")
        return self._obs(), 1.0, terminated, truncated, {}


def _agent(agent_cls: type, end: str, num_steps: int, **kw: Any) -> Any:
    env = make_vec_env(lambda: CountdownEnv(K, end), num_envs=2, seed=0)
    agent = agent_cls(env, seed=0, num_steps=num_steps, gamma=GAMMA, **kw)
    with torch.no_grad():
        # a clearly non-zero, observation-sensitive value function so a missing, extra or
        # wrongly placed bootstrap is visible
        agent.policy.value_head.bias.fill_(3.0)
        agent.policy.value_head.weight.mul_(20.0)
    return agent


FINAL_OBS = torch.tensor([[1.0, 1.0]])  # observation after the K-th step
RESET_OBS = torch.tensor([[0.0, 1.0]])  # observation returned in its place (next episode)


@pytest.mark.parametrize("agent_cls", [PPO, A2C])
def test_truncated_step_reward_is_bootstrapped_with_final_obs_value(agent_cls: type) -> None:
    agent = _agent(agent_cls, "truncate", num_steps=12)
    agent.collect_rollout()
    s = agent.storage
    with torch.no_grad():
        v_final = float(agent.policy.value(FINAL_OBS)[0])
        v_reset = float(agent.policy.value(RESET_OBS)[0])
    assert abs(v_final) > 0.1
    # the test can tell the final observation's value from the reset observation's
    assert abs(v_final - v_reset) > 1e-3

    done_steps = [K - 1, 2 * K - 1]  # steps 4 and 9 end episodes
    expected_dones = torch.zeros(12, 2)
    expected_dones[done_steps] = 1.0
    torch.testing.assert_close(s.dones, expected_dones)
    expected = torch.ones(12, 2)
    expected[done_steps] = 1.0 + GAMMA * v_final
    torch.testing.assert_close(s.rewards, expected, rtol=1e-6, atol=1e-6)
    # stored observations: [t/k, 1] restarting at 0 after each boundary
    np.testing.assert_allclose(
        s.obs[:, 0, 0].numpy(), [(t % K) / K for t in range(12)], rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("end", ["terminate", "both"])
def test_terminated_step_reward_is_not_bootstrapped(end: str) -> None:
    agent = _agent(PPO, end, num_steps=12)
    agent.collect_rollout()
    s = agent.storage
    assert s.dones.sum() == 4  # two boundaries in each of two envs
    torch.testing.assert_close(s.rewards, torch.ones(12, 2), rtol=0, atol=0)


def test_bootstrap_uses_normalised_final_obs() -> None:
    # the episode ends at the last rollout step, so the normaliser statistics used for the
    # bootstrap are the ones the agent holds after the rollout
    agent = _agent(PPO, "truncate", num_steps=K, normalize_obs=True)
    agent.collect_rollout()
    s = agent.storage
    with torch.no_grad():
        v_norm = float(agent.policy.value(agent.preprocess(FINAL_OBS))[0])
        v_raw = float(agent.policy.value(FINAL_OBS)[0])
    assert abs(v_norm - v_raw) > 1e-3
    expected = torch.ones(K, 2)
    expected[K - 1] = 1.0 + GAMMA * v_norm
    torch.testing.assert_close(s.rewards, expected, rtol=1e-5, atol=1e-5)


def _reference_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    dones: np.ndarray,
    last_value: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """Per-env, per-step GAE written out literally (no vectorisation)."""
    steps, envs = rewards.shape
    adv = np.zeros_like(rewards)
    for n in range(envs):
        running = 0.0
        for t in reversed(range(steps)):
            if dones[t, n]:
                next_value, running = 0.0, 0.0  # the episode ended here
            else:
                next_value = values[t + 1, n] if t + 1 < steps else last_value[n]
            delta = rewards[t, n] + gamma * next_value - values[t, n]
            running = delta + gamma * lam * running
            adv[t, n] = running
    return adv


def test_gae_does_not_cross_episode_boundaries_in_rollout() -> None:
    agent = _agent(PPO, "truncate", num_steps=12, gae_lambda=0.95)
    agent.collect_rollout()
    s = agent.storage
    with torch.no_grad():
        last_value = agent.policy.value(agent._current_obs())
    s.compute_returns_and_advantages(last_value, GAMMA, 0.95)
    assert s.dones[K - 1].tolist() == [1.0, 1.0]
    reference = _reference_gae(
        s.rewards.numpy(),
        s.values.numpy(),
        s.dones.numpy(),
        last_value.numpy(),
        GAMMA,
        0.95,
    )
    np.testing.assert_allclose(s.advantages.numpy(), reference, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        s.returns.numpy(), reference + s.values.numpy(), rtol=1e-5, atol=1e-5
    )
    # at a boundary the advantage is the (bootstrapped) reward minus the value, nothing more
    torch.testing.assert_close(s.advantages[K - 1], s.rewards[K - 1] - s.values[K - 1])


def test_gae_ignores_values_after_a_done() -> None:
    gen = torch.Generator().manual_seed(0)
    rewards = torch.rand(6, 3, generator=gen)
    values = torch.rand(6, 3, generator=gen)
    last_value = torch.rand(3, generator=gen)
    dones = torch.zeros(6, 3)
    dones[2, 0] = 1.0
    dones[4, 1] = 1.0
    adv, ret = compute_gae(rewards, values, dones, last_value, 0.99, 0.9)
    torch.testing.assert_close(ret, adv + values)

    # changing everything after env 0's boundary (t=2) leaves its advantages up to t=2 alone
    values2, rewards2 = values.clone(), rewards.clone()
    values2[3:, 0] += 100.0
    rewards2[3:, 0] -= 50.0
    adv2, _ = compute_gae(rewards2, values2, dones, last_value, 0.99, 0.9)
    torch.testing.assert_close(adv2[:3, 0], adv[:3, 0])
    assert not torch.allclose(adv2[3:, 0], adv[3:, 0])
    # ... and the last value is not used for an env whose last step ended its episode
    dones_last = torch.zeros(6, 3)
    dones_last[-1] = 1.0
    a1, _ = compute_gae(rewards, values, dones_last, last_value, 0.99, 0.9)
    a2, _ = compute_gae(rewards, values, dones_last, last_value + 7.0, 0.99, 0.9)
    torch.testing.assert_close(a1, a2)
    # without dones the last value does matter (the test is sensitive to it)
    a3, _ = compute_gae(rewards, values, torch.zeros(6, 3), last_value + 7.0, 0.99, 0.9)
    assert not torch.allclose(a1, a3)
    # exact value at env 1's boundary
    torch.testing.assert_close(adv[4, 1], rewards[4, 1] - values[4, 1])
