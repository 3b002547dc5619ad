"""Bounded and exploration-noise families: SquashedNormal, TruncatedNormal, NormalNoise, OU."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributions as td
from gymnasium import spaces

from rlkit.configurable import build_from_spec
from rlkit.distributions.base import DISTRIBUTIONS
from rlkit.distributions.noise import NormalNoise, OrnsteinUhlenbeckNoise
from rlkit.distributions.squashed import SQUASH_EPS, SquashedNormal, TruncatedNormal

B = 6


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def box(low: Any, high: Any, shape: tuple[int, ...] | None = None) -> spaces.Box:
    return spaces.Box(
        np.asarray(low, np.float32) if shape is None else low,
        np.asarray(high, np.float32) if shape is None else high,
        shape,
        np.float32,
    )


# --------------------------------------------------------------------------- SquashedNormal


def squashed_reference_log_prob(
    u: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, low: Any, high: Any
) -> torch.Tensor:
    """Change of variables written out independently in float64: a = low + (tanh u + 1) * w/2."""
    u, mean, std = u.double(), mean.double(), std.double()
    half = (torch.as_tensor(high) - torch.as_tensor(low)).double() / 2
    base = td.Normal(mean, std).log_prob(u)
    log_det = torch.log(half * (1.0 - torch.tanh(u) ** 2))  # |da/du| = half * sech^2(u)
    return (base - log_det).sum(-1)


def test_squashed_shapes_mode_and_change_of_variables():
    low, high = [-1.0, 0.0, -3.0], [1.0, 2.0, 5.0]
    fam = SquashedNormal(box(low, high))
    assert fam.num_params == 6 and fam.action_shape == (3,) and fam.action_dtype == torch.float32
    params = torch.randn(B, 6, generator=gen(0))
    dist = fam(params)
    mean, log_std = params[:, :3], params[:, 3:].clamp(-20.0, 2.0)  # default log_std_bounds
    assert (params[:, 3:] > 2.0).any()  # the clamp is exercised
    lo, hi = torch.tensor(low), torch.tensor(high)
    torch.testing.assert_close(dist.mode(), lo + (torch.tanh(mean) + 1) * (hi - lo) / 2)

    # |u| <= 3 keeps the float32 atanh round trip accurate (the saturated regime is tested below)
    u = (mean + log_std.exp() * torch.randn(B, 3, generator=gen(1))).clamp(-3.0, 3.0)
    actions = lo + (torch.tanh(u) + 1) * (hi - lo) / 2
    ref = squashed_reference_log_prob(u, mean, log_std.exp(), lo, hi)
    lp = dist.log_prob(actions)
    assert lp.shape == (B,)
    torch.testing.assert_close(lp.double(), ref, atol=2e-3, rtol=1e-4)
    # and against torch's own transformed distribution
    torch_ref = td.TransformedDistribution(
        td.Normal(mean, log_std.exp()),
        [td.TanhTransform(), td.AffineTransform((hi + lo) / 2, (hi - lo) / 2)],
    )
    torch.testing.assert_close(lp, torch_ref.log_prob(actions).sum(-1), atol=2e-3, rtol=1e-4)


def test_squashed_rsample_with_log_prob_matches_log_prob():
    fam = SquashedNormal(box([-2.0, 0.0], [3.0, 1.0]))
    dist = fam(torch.randn(B, 4, generator=gen(2)) * 0.5)
    a, lp = dist.rsample_with_log_prob(gen(3))
    torch.testing.assert_close(a, dist.sample(gen(3)))
    torch.testing.assert_close(lp, dist.log_prob(a), atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize(("low", "high"), [(-1.0, 1.0), (-2.0, 3.0)])
def test_squashed_density_integrates_to_one(low, high):
    fam = SquashedNormal(box([low], [high]))
    params = torch.tensor([[0.3, 0.2]])  # mean 0.3, std e^0.2
    grid = torch.linspace(low, high, 40001)[1:-1].unsqueeze(-1)
    dist = fam(params.expand(grid.shape[0], 2))
    density = dist.log_prob(grid).double().exp()
    integral = torch.trapezoid(density, grid.squeeze(-1).double())
    assert abs(integral.item() - 1.0) < 1e-3


def test_squashed_entropy_raises_and_monte_carlo_estimate_matches_integral():
    fam = SquashedNormal(box([-2.0], [3.0]))
    params = torch.tensor([[0.3, -0.4]])
    with pytest.raises(TypeError, match="no closed-form entropy"):
        fam(params).entropy()
    grid = torch.linspace(-2.0, 3.0, 40001)[1:-1].unsqueeze(-1)
    log_p = fam(params.expand(grid.shape[0], 2)).log_prob(grid).double()
    exact = -torch.trapezoid(log_p.exp() * log_p, grid.squeeze(-1).double()).item()
    n = 20000
    est = fam(params.expand(n, 2)).entropy_estimate(num_samples=1, generator=gen(4))
    assert est.shape == (n,)
    se = est.double().std().item() / math.sqrt(n)
    assert abs(est.double().mean().item() - exact) < 4 * se
    # averaging more samples per row reduces per-row variance
    est16 = fam(params.expand(500, 2)).entropy_estimate(num_samples=16, generator=gen(5))
    assert est16.std() < est[:500].std()
    with pytest.raises(ValueError, match="num_samples"):
        fam(params).entropy_estimate(0)


@pytest.mark.parametrize(("low", "high"), [(-1.0, 1.0), (-2.0, 3.0)])
def test_squashed_samples_strictly_inside_and_boundary_log_prob_finite(low, high):
    fam = SquashedNormal(box([low] * 2, [high] * 2))
    params = torch.tensor([[50.0, -50.0, 2.0, 2.0], [0.0, 0.0, 5.0, 5.0]]).repeat(500, 1)
    dist = fam(params)
    for a in (dist.sample(gen(0)), dist.rsample(gen(1))):
        assert ((a > low) & (a < high)).all()
    # mode() is tanh(mean) rescaled, unclamped: it may sit on a bound when tanh saturates
    torch.testing.assert_close(dist.mode()[0], torch.tensor([high, low]))
    edges = torch.tensor([[low, high], [high, low]])
    assert torch.isfinite(fam(params[:2]).log_prob(edges)).all()
    # the clamp is at 1 - eps in tanh space
    a = dist.sample(gen(0))
    y = (a - (high + low) / 2) / ((high - low) / 2)
    assert y.abs().max() <= 1 - SQUASH_EPS + 1e-7


def test_squashed_rsample_gradients_and_log_std_clamp():
    fam = SquashedNormal(box([-1.0, -1.0], [1.0, 1.0]))
    params = torch.tensor([[0.1, -0.2, -0.5, 0.3], [0.0, 0.0, 30.0, -30.0]], requires_grad=True)
    dist = fam(params)
    torch.testing.assert_close(dist.log_std[1], torch.tensor([2.0, -20.0]))
    a, lp = dist.rsample_with_log_prob(gen(0))
    (a.sum() + lp.sum()).backward()
    assert params.grad is not None and torch.isfinite(params.grad).all()
    assert (params.grad[0] != 0).all()  # mean and log_std both receive gradient
    assert (params.grad[1, 2:] == 0).all()  # clamped log_std: no gradient
    p2 = params.detach().clone().requires_grad_(True)
    fam(p2).rsample(gen(1)).sum().backward()
    assert p2.grad is not None and p2.grad[0].abs().sum() > 0


def test_squashed_custom_log_std_bounds_and_postprocess():
    fam = SquashedNormal(box(-1, 1, (2, 2)), log_std_bounds=(-5.0, 1.0))
    assert fam.num_params == 8 and fam.action_shape == (4,)
    dist = fam(torch.tensor([[0.0] * 4 + [-9.0] * 4]))
    torch.testing.assert_close(dist.log_std, torch.full((1, 4), -5.0))
    out = fam.postprocess(dist.sample(gen(0)))
    assert out.shape == (1, 2, 2)
    assert fam.action_space.contains(out[0].numpy())


def test_squashed_requires_finite_bounds():
    with pytest.raises(ValueError, match="finite bounds"):
        SquashedNormal(spaces.Box(-np.inf, np.inf, (2,), np.float32))
    with pytest.raises(ValueError, match="finite bounds"):
        SquashedNormal(box([-1.0, -np.inf], [1.0, 1.0]))
    with pytest.raises(ValueError, match="high > low"):
        SquashedNormal(box([0.0], [0.0]))


# --------------------------------------------------------------------------- TruncatedNormal


def drqv2_reference_sample(mean, std, low, high, clip, eps, generator):
    """DrQ-v2 utils.TruncatedNormal.sample written out: clip the noise, then clamp the action."""
    noise = torch.randn(mean.shape, generator=generator) * std
    if clip is not None:
        noise = torch.clamp(noise, -clip, clip)
    return torch.clamp(mean + noise, low + eps, high - eps)


def test_truncated_matches_drqv2_and_clips_noise():
    fam = TruncatedNormal(box([-1.0] * 3, [1.0] * 3))
    assert fam.num_params == 3 and fam.action_shape == (3,)
    mean = torch.tanh(torch.randn(2000, 3, generator=gen(0))) * 0.5
    dist = fam(mean, std=5.0, clip=0.3)
    a = dist.sample(gen(1))
    torch.testing.assert_close(a, drqv2_reference_sample(mean, 5.0, -1.0, 1.0, 0.3, 1e-6, gen(1)))
    noise = a - mean
    assert noise.abs().max() <= 0.3 + 1e-6
    assert (noise.abs() > 0.3 - 1e-5).float().mean() > 0.9  # std 5 >> clip: nearly all clip
    # no clip: wide noise, but the action stays within [low + eps, high - eps]
    wide = fam(mean, std=5.0).sample(gen(2))
    assert (wide - mean).abs().max() > 0.3
    assert wide.min() >= -1.0 + 1e-6 - 1e-7 and wide.max() <= 1.0 - 1e-6 + 1e-7
    assert (wide.abs() > 0.999).any()  # some hit the clamp


def test_truncated_within_asymmetric_bounds():
    space = box([0.0, -5.0], [2.0, 5.0])
    fam = TruncatedNormal(space, std=3.0)
    a = fam(torch.zeros(3000, 2)).sample(gen(0))
    lo, hi = torch.tensor([0.0, -5.0]), torch.tensor([2.0, 5.0])
    assert ((a >= lo) & (a <= hi)).all()
    assert (a[:, 0] == 1e-6).any()  # clamped at low + eps


def test_truncated_std_is_explicit():
    fam = TruncatedNormal(box([-1.0], [1.0]))
    with pytest.raises(ValueError, match="explicit std"):
        fam(torch.zeros(2, 1))
    with pytest.raises(ValueError, match="std"):
        fam(torch.zeros(2, 1), std=0.0)
    with pytest.raises(ValueError, match="std"):
        TruncatedNormal(box([-1.0], [1.0]), std=-1.0)
    fixed = TruncatedNormal(box([-1.0], [1.0]), std=0.2, clip=0.3)
    torch.testing.assert_close(fixed(torch.zeros(2, 1)).std, torch.full((2, 1), 0.2))
    assert fixed(torch.zeros(2, 1)).clip == 0.3
    over = fixed(torch.zeros(2, 1), std=0.5, clip=0.1)
    torch.testing.assert_close(over.std, torch.full((2, 1), 0.5))
    assert over.clip == 0.1
    # per-row std tensor broadcasts
    per_row = fam(torch.zeros(2, 1), std=torch.tensor([[0.1], [0.2]]))
    torch.testing.assert_close(per_row.std, torch.tensor([[0.1], [0.2]]))


def test_truncated_log_prob_entropy_mode_are_the_normal():
    fam = TruncatedNormal(box([-1.0] * 2, [1.0] * 2))
    mean = torch.tensor([[0.2, -0.3], [1.5, -2.0]])
    dist = fam(mean, std=0.4)
    ref = td.Independent(td.Normal(mean, torch.full_like(mean, 0.4)), 1)
    actions = torch.tensor([[0.0, 0.1], [0.9, -0.9]])
    torch.testing.assert_close(dist.log_prob(actions), ref.log_prob(actions))
    torch.testing.assert_close(dist.entropy(), ref.entropy())
    torch.testing.assert_close(dist.mode(), torch.tensor([[0.2, -0.3], [1 - 1e-6, -1 + 1e-6]]))


def test_truncated_rsample_straight_through_gradient():
    fam = TruncatedNormal(box([-1.0] * 2, [1.0] * 2))
    mean = torch.tensor([[0.0, 0.5], [3.0, -3.0]], requires_grad=True)  # row 1 always clamped
    a = fam(mean, std=0.1, clip=0.3).rsample(gen(0))
    torch.testing.assert_close(a[1].detach(), torch.tensor([1 - 1e-6, -1 + 1e-6]))
    a.sum().backward()
    assert mean.grad is not None
    torch.testing.assert_close(mean.grad, torch.ones(2, 2))


def test_truncated_unbounded_box_is_allowed():
    fam = TruncatedNormal(spaces.Box(-np.inf, np.inf, (2,), np.float32), std=1.0)
    a = fam(torch.full((4, 2), 100.0)).sample(gen(0))
    assert (a > 90).all()


# --------------------------------------------------------------------------- NormalNoise


def test_normal_noise_scale_clip_and_mode():
    space = box([-1.0, 0.0], [1.0, 10.0])  # half-widths 1 and 5
    fam = NormalNoise(space, sigma=0.1)
    assert fam.num_params == 2 and fam.action_shape == (2,)
    action = torch.tensor([0.0, 5.0]).expand(20000, 2)
    dist = fam(action)
    torch.testing.assert_close(dist.mode(), action)
    noise = dist.sample(gen(0)) - action
    torch.testing.assert_close(noise.std(0), torch.tensor([0.1, 0.5]), rtol=0.03, atol=0)
    torch.testing.assert_close(noise.mean(0), torch.zeros(2), atol=0.01, rtol=0)
    # per-call sigma, as a schedule would pass it
    wide = fam(action, sigma=0.3).sample(gen(0)) - action
    torch.testing.assert_close(wide.std(0), torch.tensor([0.3, 1.5]), rtol=0.03, atol=0)
    # TD3 target smoothing: noise clipped at noise_clip (in half-width units)
    smooth = NormalNoise(space, sigma=0.2, noise_clip=0.5)
    s = smooth(action, sigma=2.0).sample(gen(1)) - action
    assert s[:, 0].abs().max() <= 0.5 + 1e-6 and s[:, 1].abs().max() <= 2.5 + 1e-5
    assert s[:, 0].abs().max() >= 0.5 - 1e-6


def test_normal_noise_clips_to_bounds_and_has_no_density():
    space = box([-1.0, 0.0], [1.0, 10.0])
    fam = NormalNoise(space, sigma=5.0)
    action = torch.tensor([[0.9, 9.5], [-0.9, 0.5]]).repeat(500, 1)
    a = fam(action).sample(gen(0))
    assert ((a >= torch.tensor([-1.0, 0.0])) & (a <= torch.tensor([1.0, 10.0]))).all()
    assert (a[:, 0] == 1.0).any() and (a[:, 0] == -1.0).any()
    torch.testing.assert_close(fam(action, sigma=0.0).sample(gen(0)), action)
    with pytest.raises(TypeError, match="log_prob"):
        fam(action).log_prob(action)
    with pytest.raises(TypeError, match="entropy"):
        fam(action).entropy()
    with pytest.raises(TypeError, match="reparameterised"):
        fam(action).rsample()
    with pytest.raises(ValueError, match="sigma"):
        fam(action, sigma=-0.1)


# --------------------------------------------------------------------------- Ornstein-Uhlenbeck


def test_ou_stationary_variance_and_mean():
    theta, sigma, dt, n_envs = 0.15, 0.2, 1e-2, 4096
    fam = OrnsteinUhlenbeckNoise(box([-1.0], [1.0]), num_envs=n_envs, theta=theta, sigma=sigma)
    g = gen(0)
    for _ in range(3000):  # burn-in: (1 - theta dt)^(2n) = e^-9
        fam.step(g)
    samples = torch.stack([fam.step(g) for _ in range(3000)][::50])  # [60, envs, 1]
    var = samples.var().item()
    exact_discrete = sigma**2 / (theta * (2 - theta * dt))
    assert abs(var / exact_discrete - 1) < 0.05
    assert abs(var / (sigma**2 / (2 * theta)) - 1) < 0.05
    assert abs(samples.mean().item()) < 0.02


def test_ou_mean_reverts():
    fam = OrnsteinUhlenbeckNoise(box([-1.0] * 2, [1.0] * 2), num_envs=3, theta=0.5, dt=0.1, mu=0.2)
    fam.state.fill_(1.0)
    for _ in range(10):
        fam.step(sigma=0.0)
    expected = 0.2 + 0.8 * (1 - 0.5 * 0.1) ** 10
    torch.testing.assert_close(fam.state, torch.full((3, 2), expected))
    # with noise, the cross-env average reverts the same way
    noisy = OrnsteinUhlenbeckNoise(box([-1.0], [1.0]), num_envs=20000, theta=0.5, dt=0.1)
    noisy.state.fill_(1.0)
    g = gen(1)
    for _ in range(10):
        noisy.step(g)
    assert abs(noisy.state.mean().item() - 0.95**10) < 0.01


def test_ou_reset_zeroes_only_masked_envs():
    fam = OrnsteinUhlenbeckNoise(box([-1.0] * 2, [1.0] * 2), num_envs=4)
    fam.step(gen(0))
    before = fam.state.clone()
    assert (before != 0).all()
    fam.reset(torch.tensor([True, False, True, False]))
    torch.testing.assert_close(fam.state[[0, 2]], torch.zeros(2, 2))
    torch.testing.assert_close(fam.state[[1, 3]], before[[1, 3]])
    fam.reset(np.array([False, True, False, False]))
    torch.testing.assert_close(fam.state[3], before[3])
    assert (fam.state[:3] == 0).all()
    fam.reset()
    assert (fam.state == 0).all()
    with pytest.raises(ValueError, match="env_mask"):
        fam.reset(torch.tensor([True, False]))


def test_ou_sample_is_a_snapshot_and_clips():
    space = box([-1.0, 0.0], [1.0, 4.0])  # half-widths 1 and 2
    fam = OrnsteinUhlenbeckNoise(space, num_envs=3, sigma=0.3)
    state_before_step = fam.state.clone()
    noise = fam.step(gen(0))
    assert not torch.equal(noise, state_before_step)
    noise.zero_()  # step returns a copy
    assert (fam.state != 0).all()
    action = torch.tensor([[0.0, 2.0], [0.5, 1.0], [-0.5, 3.0]])
    dist = fam(action)
    state = fam.state.clone()
    first = dist.sample(gen(1))
    for seed in range(5):
        torch.testing.assert_close(dist.sample(gen(seed)), first)
    torch.testing.assert_close(fam.state, state)  # sampling never advances the process
    torch.testing.assert_close(first, action + state * torch.tensor([1.0, 2.0]))
    fam.step(gen(2))
    torch.testing.assert_close(dist.sample(), first)  # the snapshot is not the live buffer
    torch.testing.assert_close(dist.mode(), action)
    big = fam(action, noise=torch.full((3, 2), 100.0)).sample()
    torch.testing.assert_close(big, torch.tensor([[1.0, 4.0]] * 3))
    with pytest.raises(ValueError, match="3 envs"):
        fam(torch.zeros(5, 2))
    assert "state" not in fam.state_dict()
    with pytest.raises(TypeError, match="log_prob"):
        dist.log_prob(action)


# --------------------------------------------------------------------------- common


FAMILIES = [
    pytest.param(lambda: SquashedNormal(box([-1.0, 0.0], [1.0, 3.0])), {}, id="squashed"),
    pytest.param(
        lambda: TruncatedNormal(box([-1.0, 0.0], [1.0, 3.0]), clip=0.3),
        {"std": 0.5},
        id="truncated",
    ),
    pytest.param(lambda: NormalNoise(box([-1.0, 0.0], [1.0, 3.0])), {}, id="normal_noise"),
    pytest.param(
        lambda: OrnsteinUhlenbeckNoise(box([-1.0, 0.0], [1.0, 3.0]), num_envs=B),
        {},
        id="ou_noise",
    ),
]


@pytest.mark.parametrize(("make", "kwargs"), FAMILIES)
def test_registered_spec_round_trip_and_bounds(make, kwargs):
    fam = make()
    assert DISTRIBUTIONS.get(fam.registry_id) is type(fam)
    rebuilt = build_from_spec("distribution", fam.spec())
    assert type(rebuilt) is type(fam) and rebuilt.spec() == fam.spec()
    if isinstance(fam, OrnsteinUhlenbeckNoise):
        fam.step(gen(9), sigma=3.0)
    params = torch.rand(B, fam.num_params, generator=gen(0)) * torch.tensor(
        [2.0, 3.0] * (fam.num_params // 2)
    ) - torch.tensor([1.0, 0.0] * (fam.num_params // 2))
    buffers = {k: v.clone() for k, v in fam.named_buffers()}
    dist = fam(params, **kwargs)
    a = dist.sample(gen(1))
    assert a.shape == (B, 2) and not a.requires_grad
    assert ((a >= torch.tensor([-1.0, 0.0])) & (a <= torch.tensor([1.0, 3.0]))).all()
    for _ in range(3):
        torch.testing.assert_close(dist.sample(gen(1)), a)  # same generator, same draw
    for k, v in fam.named_buffers():
        torch.testing.assert_close(v, buffers[k])  # sampling left the family untouched
    out = fam.postprocess(a)
    for row in out.numpy():
        assert fam.action_space.contains(row)


@pytest.mark.parametrize(
    "cls", [SquashedNormal, TruncatedNormal, NormalNoise, OrnsteinUhlenbeckNoise]
)
def test_wrong_action_space_type_error(cls):
    with pytest.raises(TypeError) as info:
        cls(spaces.Discrete(3))
    assert cls.__name__ in str(info.value) and "action space" in str(info.value)


@pytest.mark.parametrize("cls", [SquashedNormal, NormalNoise, OrnsteinUhlenbeckNoise])
def test_unbounded_box_error(cls):
    with pytest.raises(ValueError, match="finite bounds"):
        cls(spaces.Box(-np.inf, np.inf, (2,), np.float32))


def test_ou_argument_errors():
    with pytest.raises(ValueError, match="num_envs"):
        OrnsteinUhlenbeckNoise(box([-1.0], [1.0]), num_envs=0)
    with pytest.raises(ValueError, match="dt"):
        OrnsteinUhlenbeckNoise(box([-1.0], [1.0]), dt=0.0)
    with pytest.raises(ValueError, match="theta"):
        OrnsteinUhlenbeckNoise(box([-1.0], [1.0]), theta=-1.0)


def test_ppo_trains_with_squashed_normal_using_the_entropy_estimate() -> None:
    """No closed-form entropy: evaluate_actions falls back to -log_prob(actions)."""
    from rlkit.agents import PPO
    from rlkit.envs import make_vec_env

    env = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    agent = PPO(env, seed=0, distribution="squashed_normal", num_steps=16, batch_size=32)
    agent.train(64, progress_bar=False)
    obs = agent.storage.obs.reshape(-1, 3)
    actions = agent.storage.actions.reshape(-1, 1)
    log_prob, entropy, _, _ = agent.policy.evaluate_actions(obs, actions)
    torch.testing.assert_close(entropy, -log_prob)
    assert torch.isfinite(entropy).all()
    low, high = env.single_action_space.low, env.single_action_space.high
    assert ((actions >= float(low[0])) & (actions <= float(high[0]))).all()
