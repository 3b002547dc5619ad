"""The fused CPU kernel (rlkit.policies.fused) against plain autograd, and when agents use it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlkit.agents import A2C, PPO
from rlkit.distributions import Bernoulli, Categorical, DiagGaussian, MultiCategorical
from rlkit.encoders import MLP, NatureCNN
from rlkit.encoders.mlp import Identity
from rlkit.envs import make_vec_env
from rlkit.policies import ActorCritic, DecoupledActorCritic
from rlkit.policies.fused import SMALL_MATMUL, fused_kernel
from rlkit.prototypes.on_policy import normalize
from rlkit.storages.rollout import RolloutBatch

VEC = spaces.Box(-1.0, 1.0, (5,), dtype=np.float32)
BOX = spaces.Box(-2.0, 2.0, (2,), dtype=np.float32)
GRID = spaces.Box(-1.0, 1.0, (3, 2), dtype=np.float32)
BYTES = spaces.Box(0, 255, (6,), dtype=np.uint8)


def _policy(case: str) -> ActorCritic:
    """The layouts the kernel covers (each a different code path in it)."""
    torch.manual_seed(0)
    if case == "discrete":
        return ActorCritic(VEC, spaces.Discrete(2))
    if case == "discrete_start_relu":
        return ActorCritic(VEC, spaces.Discrete(3, start=-1), activation="relu")
    if case == "shared_trunk":
        return ActorCritic(VEC, spaces.Discrete(4), share_trunk=True)
    if case == "no_trunk":
        return ActorCritic(VEC, spaces.Discrete(3), hidden_sizes=())
    if case == "box":
        return ActorCritic(VEC, BOX)
    if case == "box_state_dependent_std":
        # Narrow log-std bounds so the clamp is active for some samples.
        dist = DiagGaussian(BOX, state_dependent_std=True, log_std_bounds=(-0.02, 0.02))
        return ActorCritic(VEC, BOX, distribution=dist)
    if case == "multi_discrete":
        return ActorCritic(VEC, spaces.MultiDiscrete([3, 3, 3]))
    if case == "mlp_encoder":
        return ActorCritic(
            GRID, spaces.Discrete(3), encoder=MLP(GRID, 16, (8,)), hidden_sizes=(12, 10)
        )
    if case == "uint8_obs":
        return ActorCritic(BYTES, spaces.Discrete(2))
    raise ValueError(case)


CASES = [
    "discrete",
    "discrete_start_relu",
    "shared_trunk",
    "no_trunk",
    "box",
    "box_state_dependent_std",
    "multi_discrete",
    "mlp_encoder",
    "uint8_obs",
]


def _batch(policy: ActorCritic, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random observations and raw (stored-layout) actions."""
    obs_space, act_space = policy.observation_space, policy.action_space
    obs_space.seed(1)
    act_space.seed(2)
    obs = torch.as_tensor(np.stack([obs_space.sample() for _ in range(size)]))
    raw = np.stack([np.asarray(act_space.sample()) for _ in range(size)])
    if isinstance(act_space, spaces.Discrete):
        actions = torch.as_tensor(raw - act_space.start, dtype=torch.int64)
    elif isinstance(act_space, spaces.MultiDiscrete):
        actions = torch.as_tensor(raw.reshape(size, -1), dtype=torch.int64)
    else:  # unbounded Gaussian samples can leave the box: use some outside it too
        actions = torch.as_tensor(raw.reshape(size, -1) * 1.5, dtype=torch.float32)
    return obs, actions


def _assert_grads_close(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]):
    assert actual.keys() == expected.keys()
    for name, ref in expected.items():
        scale = max(1.0, float(ref.abs().max()))
        torch.testing.assert_close(actual[name], ref, rtol=1e-4, atol=2e-6 * scale, msg=name)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("size", [37, 300])  # NumPy-only products / torch.mm for the large ones
def test_kernel_matches_autograd(case: str, size: int) -> None:
    policy = _policy(case)
    kernel = fused_kernel(policy)
    assert kernel is not None
    obs, actions = _batch(policy, size)
    gen = torch.Generator().manual_seed(3)
    d_logp, d_ent, d_value = (torch.randn(size, generator=gen) for _ in range(3))

    log_prob, entropy, value, _ = policy.evaluate_actions(obs, actions)
    (d_logp * log_prob + d_ent * entropy + d_value * value).sum().backward()
    expected = {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}
    assert len(expected) == len(list(policy.parameters()))
    policy.zero_grad(set_to_none=True)

    ev = kernel.evaluate(obs, actions)
    assert ev.entropy is not None
    torch.testing.assert_close(ev.log_prob, log_prob.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ev.entropy, entropy.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ev.value, value.detach(), rtol=1e-5, atol=1e-5)
    kernel.backward(ev, d_logp, d_ent, d_value)
    _assert_grads_close({n: p.grad for n, p in policy.named_parameters()}, expected)


def test_large_batch_takes_the_torch_matmul_path() -> None:
    # The size parametrisation above only tests both paths if 300 x 64 x 64 is "large".
    assert 37 * 64 * 64 <= SMALL_MATMUL < 300 * 64 * 64


def test_backward_accumulates_and_skips_frozen_parameters() -> None:
    policy = _policy("box")
    policy.actor_trunk[0].weight.requires_grad_(False)
    kernel = fused_kernel(policy)
    assert kernel is not None
    obs, actions = _batch(policy, 16)
    ev = kernel.evaluate(obs, actions, entropy=False)
    assert ev.entropy is None
    ones = torch.ones(16)
    kernel.backward(ev, ones, None, ones)
    once = {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}
    kernel.backward(ev, ones, None, ones)
    for name, p in policy.named_parameters():
        if name == "actor_trunk.0.weight":
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad, 2 * once[name])


def test_value_only_loss_leaves_actor_gradients_zero() -> None:
    policy = _policy("discrete")
    kernel = fused_kernel(policy)
    assert kernel is not None
    obs, actions = _batch(policy, 8)
    ev = kernel.evaluate(obs, actions)
    kernel.backward(ev, torch.zeros(8), None, torch.ones(8))
    assert float(policy.actor_trunk[0].weight.grad.abs().sum()) == 0.0
    assert float(policy.critic_trunk[0].weight.grad.abs().sum()) > 0.0


@pytest.mark.parametrize("packed", [False, True])  # sample() / the rollout's sampler()
@pytest.mark.parametrize("size", [8, 300])  # the sampler falls back to sample() for big batches
@pytest.mark.parametrize(
    "case",
    [
        "discrete",
        "discrete_start_relu",
        "box",
        "box_state_dependent_std",
        "multi_discrete",
        "shared_trunk",
        "no_trunk",
        "mlp_encoder",
        "uint8_obs",
    ],
)
def test_sampling_draws_what_the_policy_draws(case: str, size: int, packed: bool) -> None:
    policy = _policy(case)
    kernel = fused_kernel(policy)
    assert kernel is not None
    obs, _ = _batch(policy, size)
    sample = kernel.sampler() if packed else kernel.sample
    torch.manual_seed(5)
    actions, log_probs, values = sample(obs)
    torch.manual_seed(5)
    out = policy(obs)
    expected = out.dist.sample()
    if actions.dtype == torch.int64:
        assert torch.equal(actions, expected)
    else:
        torch.testing.assert_close(actions, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(log_probs, out.dist.log_prob(expected).detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(values, out.value.detach(), atol=1e-5, rtol=0)


class _ForwardOverride(ActorCritic):
    def forward(self, obs: Any, state: Any = None, episode_start: Any = None) -> Any:
        return super().forward(obs * 2, state, episode_start)


class _MyIdentity(Identity):
    """A subclass that changes what the encoder computes: the kernel must step aside."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(obs) * 2


class _PlainIdentity(Identity):
    """A subclass that keeps Identity's forward: it keeps the kernel (capabilities, not
    exact types, decide)."""


class _FeatureReadingCategorical(Categorical):
    """Changes only a distribution hook the policy calls (``from_features``): the kernel,
    which computes the family itself, must step aside for it."""

    def from_features(self, params: Tensor, features: Tensor, mask: Tensor | None = None) -> Any:
        return super().from_features(params * 0.5, features, mask)


def _hooked() -> ActorCritic:
    policy = ActorCritic(VEC, spaces.Discrete(2))
    policy.actor_trunk[0].register_forward_hook(lambda *args: None)
    return policy


IMAGE = spaces.Box(0, 255, (3, 36, 36), dtype=np.uint8)
UNSUPPORTED: dict[str, Callable[[], nn.Module]] = {
    "cnn encoder": lambda: ActorCritic(IMAGE, spaces.Discrete(2), encoder=NatureCNN(IMAGE)),
    "encoder subclass changing forward": lambda: ActorCritic(
        VEC, spaces.Discrete(2), encoder=_MyIdentity(VEC)
    ),
    "forward override": lambda: _ForwardOverride(VEC, spaces.Discrete(2)),
    "bernoulli": lambda: ActorCritic(
        VEC, spaces.MultiBinary(3), distribution=Bernoulli(spaces.MultiBinary(3))
    ),
    "uneven multi-discrete": lambda: ActorCritic(
        VEC,
        spaces.MultiDiscrete([2, 3]),
        distribution=(MultiCategorical(spaces.MultiDiscrete([2, 3]))),
    ),
    "elu": lambda: ActorCritic(VEC, spaces.Discrete(2), activation="elu"),
    "float64": lambda: ActorCritic(VEC, spaces.Discrete(2)).double(),
    "not on the cpu": lambda: ActorCritic(VEC, spaces.Discrete(2)).to("meta"),
    "hooks": _hooked,
    "distribution overriding from_features": lambda: ActorCritic(
        VEC, spaces.Discrete(2), distribution=_FeatureReadingCategorical(spaces.Discrete(2))
    ),
    "two-network policy": lambda: DecoupledActorCritic(VEC, spaces.Discrete(2)),
}


def test_subclasses_that_keep_the_maths_keep_the_kernel() -> None:
    policy = ActorCritic(VEC, spaces.Discrete(2), encoder=_PlainIdentity(VEC))
    assert fused_kernel(policy) is not None

    class Renamed(ActorCritic):  # a subclass adding nothing the kernel would skip
        pass

    assert fused_kernel(Renamed(VEC, spaces.Discrete(2))) is not None


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_unsupported_layouts_fall_back(name: str) -> None:
    assert fused_kernel(UNSUPPORTED[name]()) is None


# --------------------------------------------------------------------------- agents
def _agents(
    cls: type[PPO] | type[A2C], env_id: str, env_kwargs: dict[str, Any] | None = None, **hyper: Any
) -> tuple[Any, Any]:
    """Two identical agents, the second forced onto the autograd path."""
    agents = []
    for fused in (True, False):
        env = make_vec_env(env_id, num_envs=4, seed=0, env_kwargs=env_kwargs)
        agent = cls(env, seed=0, **hyper)
        agent.use_fused_kernels = fused
        agents.append(agent)
    fast, slow = agents
    assert fast.fused_kernel() is not None and slow.fused_kernel() is None
    slow.policy.load_state_dict(fast.policy.state_dict())
    return fast, slow


def _prepare(agent: Any) -> None:
    """One rollout with returns, advantages and (full-batch) normalisation, as iteration()."""
    agent.collect_rollout()
    with torch.no_grad():
        last_value = agent.policy.value(agent._current_obs())
    agent.storage.compute_returns_and_advantages(
        last_value, agent.config.gamma, agent.config.gae_lambda
    )
    if agent.config.normalize_advantages and agent.config.batch_size >= len(agent.storage):
        agent.storage.advantages = normalize(agent.storage.advantages)


def test_fused_rollout_matches_autograd_rollout() -> None:
    """Same actions, values and log-probs, and the same truncation bootstrap (episodes are cut
    at 6 steps, so most end truncated and their rewards carry gamma * V(final obs))."""
    fast, slow = _agents(PPO, "CartPole-v1", env_kwargs={"max_episode_steps": 6}, num_steps=16)
    torch.manual_seed(11)
    fast.collect_rollout()
    torch.manual_seed(11)
    slow.collect_rollout()
    a, b = fast.storage, slow.storage
    assert torch.equal(a.actions, b.actions)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.dones, b.dones)
    assert int(a.dones.sum()) >= 8
    bootstrapped = a.rewards != 1.0
    assert bootstrapped.any()
    torch.testing.assert_close(a.rewards, b.rewards, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.log_probs, b.log_probs, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.values, b.values, atol=1e-5, rtol=0)
    # stored values are V(obs) of each step, not the bootstrap values of truncated envs
    with torch.no_grad():
        expected = fast.policy.value(a.obs.reshape(64, -1)).reshape(16, 4)
    torch.testing.assert_close(a.values, expected, atol=1e-5, rtol=0)


PPO_SETTINGS = {
    "cartpole defaults": ("CartPole-v1", {}),
    "value clip, entropy, minibatches, target kl": (
        "CartPole-v1",
        {"clip_range_vf": 0.1, "ent_coef": 0.01, "batch_size": 32, "target_kl": 0.05},
    ),
    "pendulum (gaussian)": ("Pendulum-v1", {"ent_coef": 0.001, "clip_range": 0.1}),
}


@pytest.mark.parametrize("setting", list(PPO_SETTINGS))
def test_ppo_fused_update_matches_autograd_update(setting: str) -> None:
    env_id, extra = PPO_SETTINGS[setting]
    hyper = {"num_steps": 32, "num_epochs": 4, "lr": 3e-3, "batch_size": 128, **extra}
    fast, slow = _agents(PPO, env_id, **hyper)
    _prepare(fast)
    slow.storage.load_state_dict(fast.storage.state_dict())
    before = [p.detach().clone() for p in fast.policy.parameters()]
    torch.manual_seed(0)
    fast_metrics = fast.update()
    torch.manual_seed(0)
    slow_metrics = slow.update()
    assert fast_metrics.keys() == slow_metrics.keys()
    for key, value in slow_metrics.items():
        assert fast_metrics[key] == pytest.approx(value, rel=1e-3, abs=1e-5), key
    moved = 0.0
    for p0, p, q in zip(before, fast.policy.parameters(), slow.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=2e-5)
        moved = max(moved, float((p.detach() - p0).abs().max()))
    assert moved > 1e-3  # the update did something


def test_a2c_fused_update_matches_autograd_update() -> None:
    fast, slow = _agents(A2C, "CartPole-v1", ent_coef=0.01)
    for _ in range(3):
        _prepare(fast)
        slow.storage.load_state_dict(fast.storage.state_dict())
        fast_metrics, slow_metrics = fast.update(), slow.update()
        for key, value in slow_metrics.items():
            assert fast_metrics[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
        fast.storage.reset()
        slow.storage.reset()
    for p, q in zip(fast.policy.parameters(), slow.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=2e-5)


def test_ppo_subclass_hooks_run_on_the_kernel_path() -> None:
    """A PPO variant that adds loss parts (DrAC-style) gets them applied on the kernel path."""

    class WithPenalty(PPO):
        calls = 0

        def extra_losses(self, mb: RolloutBatch, values: torch.Tensor) -> dict[str, Any]:
            WithPenalty.calls += 1
            return {"penalty": 0.0 * values.mean()}

    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = WithPenalty(env, seed=0, num_steps=8, num_epochs=2, batch_size=16)
    metrics = agent.iteration()
    assert WithPenalty.calls == 2
    assert "loss/penalty" in metrics


def test_fused_training_still_learns_a_little() -> None:
    """End to end through the fused path: a short run clearly beats a random CartPole policy."""
    env = make_vec_env("CartPole-v1", num_envs=8, seed=0)
    agent = PPO(
        env,
        seed=0,
        num_steps=32,
        batch_size=256,
        num_epochs=20,
        lr=1e-3,
        gamma=0.98,
        gae_lambda=0.8,
    )
    assert agent.fused_kernel() is not None
    agent.train(15_000, progress_bar=False)
    assert agent.evaluate(episodes=10)["return_mean"] > 100


# --------------------------------------------------------------------------- optimizer
def test_flat_adam_fused_and_plain_steps_match_torch_adam() -> None:
    """FlatAdam's fused step (called directly, as the agents do) and its plain step (the
    reference backend) are torch's Adam."""
    from rlkit.utils.optim import FlatAdam, optimizer_step

    results = []
    for fused in (True, False):
        torch.manual_seed(1)
        a = nn.Parameter(torch.randn(300))
        b = nn.Parameter(a.detach().clone())
        ref = torch.optim.Adam([a], lr=3e-3, eps=1e-8)
        opt = FlatAdam([b], lr=3e-3, eps=1e-8, fused=fused)
        for _ in range(10):
            g = torch.randn(300)
            a.grad, b.grad = g.clone(), g.clone()
            ref.step()
            optimizer_step(opt)
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
        assert float(opt.state[b]["step"]) == 10.0
        results.append(b.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-6, atol=1e-7)


def test_global_module_hooks_disable_the_kernel() -> None:
    policy = _policy("discrete")
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *args: None)
    try:
        assert fused_kernel(policy) is None
    finally:
        handle.remove()
    assert fused_kernel(policy) is not None
