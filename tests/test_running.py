"""Running statistics and the observation / reward normalisers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.normalization import ObsNormalizer, RewardNormalizer
from rlkit.utils.running import RunningMeanStd


def test_running_mean_std_matches_numpy_over_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 3)) * [1.0, 0.1, 10.0] for n in (7, 50, 1, 13)]
    rms = RunningMeanStd((3,))
    for b in batches:
        rms.update(torch.as_tensor(b, dtype=torch.float32))
    data = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean.numpy(), data.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rms.var.numpy(), data.var(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rms.std.numpy(), data.std(0), rtol=1e-4, atol=1e-5)
    assert rms.count.item() == pytest.approx(len(data), abs=1e-3)
    assert rms.mean.dtype == torch.float64


def test_the_numpy_path_equals_the_torch_path_and_writes_the_buffers() -> None:
    """Plain CPU batches take the NumPy path (in place on the buffers); a batch that takes part
    in autograd takes the torch one: both give the same statistics."""
    fast, slow = RunningMeanStd((3,)), RunningMeanStd((3,))
    buffers = [fast.mean.data_ptr(), fast.var.data_ptr(), fast.count.data_ptr()]
    generator = torch.Generator().manual_seed(0)
    for i, rows in enumerate((8, 1, 50, 3)):
        x = torch.randn(rows, 3, generator=generator) * (i + 1) + i
        fast.update(x)
        slow.update(x.clone().requires_grad_())
    torch.testing.assert_close(fast.mean, slow.mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast.var, slow.var, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast.count, slow.count)
    assert [fast.mean.data_ptr(), fast.var.data_ptr(), fast.count.data_ptr()] == buffers
    assert fast.count.item() == pytest.approx(62, abs=1e-3)


def test_running_mean_std_scalar_shape_and_buffers():
    rms = RunningMeanStd(())
    assert {name for name, _ in rms.named_buffers()} == {"mean", "var", "count"}
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-5, 5, 20), rng.uniform(0, 1, 30)
    rms.update(torch.as_tensor(a))
    rms.update(torch.as_tensor(b))
    both = np.concatenate([a, b])
    assert rms.mean.item() == pytest.approx(both.mean(), rel=1e-4, abs=1e-5)
    assert rms.var.item() == pytest.approx(both.var(), rel=1e-4, abs=1e-5)


def test_running_mean_std_normalize_and_clip():
    rms = RunningMeanStd((2,))
    rms.update(torch.tensor([[0.0, 10.0], [2.0, 30.0]]))
    x = torch.tensor([[1.0, 20.0], [3.0, 1000.0]])
    out = rms.normalize(x)
    assert out.dtype == torch.float32
    expected = (x.double() - rms.mean) / torch.sqrt(rms.var + 1e-8)
    torch.testing.assert_close(out, expected.float())
    clipped = rms.normalize(x, clip=2.0)
    assert clipped.abs().max().item() == pytest.approx(2.0)
    assert clipped[1, 1].item() == pytest.approx(2.0)


def test_obs_normalizer_vector_space():
    space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    norm = ObsNormalizer(space, clip=5.0)
    rng = np.random.default_rng(2)
    data = torch.as_tensor(rng.normal([1.0, -2.0, 5.0], [1.0, 3.0, 0.5], size=(200, 3)))
    norm.update(data.float())
    out = norm(data.float())
    assert out.shape == (200, 3)
    torch.testing.assert_close(out.mean(0), torch.zeros(3), atol=1e-3, rtol=0)
    torch.testing.assert_close(out.std(0, unbiased=False), torch.ones(3), atol=5e-3, rtol=0)
    assert norm(torch.full((1, 3), 1e6)).max().item() == pytest.approx(5.0)


def test_obs_normalizer_skips_image_keys():
    space = spaces.Dict(
        {
            "image": spaces.Box(0, 255, (3, 8, 8), np.uint8),
            "vec": spaces.Box(-np.inf, np.inf, (2,), np.float32),
        }
    )
    norm = ObsNormalizer(space)
    assert set(norm.stats) == {"vec"}
    g = torch.Generator().manual_seed(0)
    obs = {
        "image": torch.randint(0, 256, (16, 3, 8, 8), generator=g, dtype=torch.uint8),
        "vec": torch.randn(16, 2, generator=g) * 4 + 7,
    }
    norm.update(obs)
    out = norm(obs)
    assert out["image"].dtype == torch.uint8
    assert torch.equal(out["image"], obs["image"])
    torch.testing.assert_close(out["vec"].mean(0), torch.zeros(2), atol=1e-3, rtol=0)
    assert not torch.allclose(out["vec"], obs["vec"])


def test_obs_normalizer_image_space_is_passthrough():
    space = spaces.Box(0, 255, (3, 8, 8), np.uint8)
    norm = ObsNormalizer(space)
    assert len(norm.stats) == 0
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    norm.update(x)
    assert norm(x) is x


def test_reward_normalizer_scales_by_discounted_return_std():
    gamma = 0.9
    num_envs = 4
    norm = RewardNormalizer(num_envs, gamma, clip=1e9)
    rng = np.random.default_rng(3)
    returns = np.zeros(num_envs)
    history = []
    for step in range(30):
        rewards = rng.normal(1.0, 2.0, num_envs)
        dones = (rng.random(num_envs) < 0.15).astype(np.float64)
        if step == 0:
            dones[:] = 0.0
        out = norm(torch.as_tensor(rewards, dtype=torch.float32), torch.as_tensor(dones))
        # reference: VecNormalize's discounted return, its std over everything seen so far
        returns = returns * gamma + rewards
        history.append(returns.copy())
        expected = rewards / np.sqrt(np.var(np.concatenate(history)) + 1e-8)
        np.testing.assert_allclose(out.numpy(), expected, rtol=2e-3, atol=1e-5)
        returns = returns * (1.0 - dones)
    assert out.dtype == torch.float32


def test_reward_normalizer_done_resets_return():
    norm = RewardNormalizer(2, 0.99)
    norm(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(norm.returns, torch.tensor([0.0, 1.0], dtype=torch.float64))
    norm(torch.tensor([2.0, 2.0]), torch.tensor([0.0, 0.0]))
    torch.testing.assert_close(norm.returns, torch.tensor([2.0, 2.99], dtype=torch.float64))


def test_reward_normalizer_clip():
    norm = RewardNormalizer(2, 0.99, clip=0.5)
    out = norm(torch.tensor([100.0, -100.0]), torch.zeros(2))
    assert out.abs().max().item() == pytest.approx(0.5)
