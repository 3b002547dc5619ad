"""The ``fast`` backend's recurrent acting kernel against the policy's own step, and where it
steps aside."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import Tensor

from rlkit.agents import PPO
from rlkit.backends.recurrent_kernel import recurrent_sampler, recurrent_unsupported_reason
from rlkit.encoders import MLP
from rlkit.envs import make_vec_env
from rlkit.policies import LSTMActorCritic, RecurrentActorCritic, RecurrentCore
from rlkit.policies.state import as_tuple

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
DISCRETE = gym.spaces.Discrete(3)
BOX = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)


def _policy(core: str, action_space: Any, **kwargs: Any) -> RecurrentActorCritic:
    torch.manual_seed(0)
    return RecurrentActorCritic(OBS, action_space, core=core, hidden_size=8, **kwargs)  # type: ignore[arg-type]


CASES = {
    "lstm": ("lstm", DISCRETE, {}),
    "gru, two layers": ("gru", DISCRETE, {"num_layers": 2}),
    "lstm, two layers, gaussian, relu": ("lstm", BOX, {"num_layers": 2, "activation": "relu"}),
    "lstm, shared critic": ("lstm", DISCRETE, {"critic": "shared"}),
    "gru, feed-forward critic, mlp encoder": (
        "gru",
        BOX,
        {"critic": "feedforward", "encoder": MLP(OBS, hidden_sizes=(6,))},
    ),
    "lstm, no trunks": ("lstm", DISCRETE, {"hidden_sizes": ()}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_steps_equal_the_policy_steps(case: str) -> None:
    """Ten steps of 4 rows with episode starts in between: the same actions (same draws from
    torch's generator), and log-probs, values and states to float rounding."""
    core, space, kwargs = CASES[case]
    policy = _policy(core, space, **kwargs)
    step = recurrent_sampler(policy)
    assert step is not None, recurrent_unsupported_reason(policy)
    rng = torch.Generator().manual_seed(1)
    state_k = state_p = as_tuple(policy.initial_state(4))
    for t in range(10):
        obs = torch.randn(4, 3, generator=rng)
        starts = (torch.rand(4, generator=rng) < 0.3).float() if t else torch.ones(4)
        torch.manual_seed(100 + t)
        actions, log_prob, value, state_k = step(obs, state_k, starts)
        torch.manual_seed(100 + t)
        with torch.no_grad():
            out = policy(obs, state_p, starts)
            expected = out.dist.sample()
        state_p = as_tuple(out.state)
        if space is DISCRETE:
            assert torch.equal(actions, expected)
        else:
            torch.testing.assert_close(actions, expected, atol=1e-5, rtol=0)
        with torch.no_grad():
            torch.testing.assert_close(log_prob, out.dist.log_prob(expected), atol=1e-5, rtol=0)
        torch.testing.assert_close(value, out.value, atol=1e-5, rtol=0)
        assert len(state_k) == len(state_p)
        for a, b in zip(state_k, state_p, strict=True):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def _ppo(compute: str) -> PPO:
    env_kwargs = {"max_episode_steps": 12}
    env = make_vec_env("rlkit/CartPoleNoVel-v1", num_envs=4, seed=3, env_kwargs=env_kwargs)
    return PPO(env, policy="lstm_actor_critic", num_steps=16, seed=3, compute=compute)


def test_fast_rollout_stores_what_the_module_rollout_stores() -> None:
    """A PPO rollout on ``fast`` (kernel) and on ``reference`` (module): the same actions and
    episodes, log-probs, values, truncation-bootstrapped rewards and stored states to float
    rounding; the report names the kernel."""
    fast, slow = _ppo("fast"), _ppo("reference")
    torch.manual_seed(5)
    fast.collect_rollout()
    torch.manual_seed(5)
    slow.collect_rollout()
    a, b = fast.storage, slow.storage
    assert torch.equal(a.actions, b.actions) and torch.equal(a.dones, b.dones)
    assert int(a.dones.sum()) >= 4  # episodes ended (and were cut at 12 steps) inside
    assert (a.rewards != 1.0).any()  # truncations bootstrapped from the kernel's state
    for x, y in ((a.log_probs, b.log_probs), (a.values, b.values), (a.rewards, b.rewards)):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
    for x, y in zip(a.states, b.states, strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
    choices = {c.component: c for c in fast.backend_report.choices}
    assert choices["policy acting"].implementation == "recurrent acting kernel"
    assert choices["policy acting"].fallback_reason is None


class _OwnDistribution(LSTMActorCritic):
    def actor_distribution(self, memory: Tensor, obs: Any) -> Any:
        return super().actor_distribution(memory, obs)


class _OwnStep(RecurrentCore):
    def _step(self, x: Tensor, state: tuple[Tensor, ...]) -> Any:
        return super()._step(x, state)


class _KeepsTheMaths(LSTMActorCritic):
    """A subclass adding nothing the kernel reproduces keeps it."""

    label = "mine"


def test_subclass_keeping_the_maths_keeps_the_kernel() -> None:
    assert recurrent_sampler(_KeepsTheMaths(OBS, DISCRETE)) is not None


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: _OwnDistribution(OBS, DISCRETE), "overrides actor_distribution"),
        (
            lambda: RecurrentActorCritic(OBS, DISCRETE, core=lambda n: _OwnStep("lstm", n, 8, 1)),
            "overrides _step",
        ),
        (
            lambda: LSTMActorCritic(OBS, DISCRETE, critic_encoder=MLP(OBS, hidden_sizes=(4,))),
            "critic encoder",
        ),
        (lambda: _policy("lstm", DISCRETE).double(), "float32"),
        (
            lambda: RecurrentActorCritic(OBS, BOX, distribution="state_dependent_gaussian"),
            "",
        ),
    ],
)
def test_unsupported_policies_fall_back_with_the_reason(build: Any, reason: str) -> None:
    policy = build()
    assert recurrent_sampler(policy) is None
    assert reason in (recurrent_unsupported_reason(policy) or "<none>")


def test_a_fallback_is_reported_and_acting_still_runs() -> None:
    env = make_vec_env("rlkit/CartPoleNoVel-v1", num_envs=2, seed=0)
    policy = _OwnDistribution(env.single_observation_space, env.single_action_space)
    agent = PPO(env, policy=policy, num_steps=4, seed=0)
    agent.collect_rollout()
    choice = {c.component: c for c in agent.backend_report.choices}["policy acting"]
    assert choice.implementation == "nn.Module + autograd"
    assert "overrides actor_distribution" in (choice.fallback_reason or "")
