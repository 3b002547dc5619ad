"""Intrinsic rewards: the IntrinsicReward contract and RND."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.rewards import INTRINSIC_REWARDS, RND, IntrinsicReward, TransitionBatch

VEC = spaces.Box(-np.inf, np.inf, (6,), np.float32)
IMG = spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACT = spaces.Discrete(3)


def batch_from(next_obs):
    t, n = next_obs.shape[:2]
    return TransitionBatch(
        obs=torch.zeros_like(next_obs),
        actions=torch.zeros(t, n, dtype=torch.int64),
        next_obs=next_obs,
        dones=torch.zeros(t, n),
    )


def vec_obs(t, n, seed, center=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return center + scale * torch.randn(t, n, 6, generator=g)


def test_rnd_compute_shape_finite_non_negative_vector():
    torch.manual_seed(0)
    rnd = RND(VEC, ACT, hidden_dim=32, latent_dim=16)
    batch = batch_from(vec_obs(5, 3, 0))
    bonus = rnd.compute(batch)
    assert bonus.shape == (5, 3)
    assert torch.isfinite(bonus).all()
    assert (bonus >= 0).all()
    assert bonus.sum() > 0
    assert not bonus.requires_grad


def test_rnd_compute_and_update_image():
    torch.manual_seed(0)
    rnd = RND(IMG, ACT, latent_dim=8, batch_size=4, update_proportion=1.0)
    g = torch.Generator().manual_seed(0)
    next_obs = torch.randint(0, 256, (2, 2, *IMG.shape), generator=g, dtype=torch.uint8)
    batch = batch_from(next_obs)
    bonus = rnd.compute(batch)
    assert bonus.shape == (2, 2)
    assert torch.isfinite(bonus).all() and (bonus >= 0).all()
    metrics = rnd.update(batch)
    assert set(metrics) == {"rnd_loss"}
    assert np.isfinite(metrics["rnd_loss"]) and metrics["rnd_loss"] >= 0
    reward = rnd.reward(batch, step=0)
    assert reward.shape == (2, 2) and torch.isfinite(reward).all()


@pytest.mark.parametrize("obs_norm", [False, True])
def test_rnd_novel_observations_score_higher(obs_norm):
    torch.manual_seed(0)
    rnd = RND(
        VEC,
        ACT,
        obs_norm=obs_norm,
        hidden_dim=64,
        latent_dim=16,
        lr=3e-3,
        batch_size=64,
        update_proportion=1.0,
    )
    familiar = batch_from(vec_obs(16, 4, 1, center=0.0, scale=0.3))
    for _ in range(30):
        rnd.compute(familiar)  # as in training: stats follow the data that is seen
        rnd.update(familiar)
    # fresh samples from the same distribution vs samples from far away
    seen_like = rnd.compute(batch_from(vec_obs(16, 4, 2, center=0.0, scale=0.3)))
    novel = rnd.compute(batch_from(vec_obs(16, 4, 3, center=3.0, scale=0.3)))
    assert novel.mean() > 5 * seen_like.mean()


def test_rnd_update_lowers_its_own_loss():
    torch.manual_seed(0)
    rnd = RND(VEC, ACT, hidden_dim=32, latent_dim=8, lr=3e-3, batch_size=32, update_proportion=1.0)
    batch = batch_from(vec_obs(8, 4, 5))
    rnd.compute(batch)  # fold the batch into the observation statistics
    before = rnd.compute(batch).mean().item()
    losses = [rnd.update(batch)["rnd_loss"] for _ in range(20)]
    after = rnd.compute(batch).mean().item()
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])
    assert after < 0.5 * before


def test_rnd_target_is_frozen_and_predictor_trains():
    torch.manual_seed(0)
    rnd = RND(VEC, ACT, hidden_dim=16, latent_dim=4, update_proportion=1.0)
    assert all(not p.requires_grad for p in rnd.target.parameters())
    target_before = [p.clone() for p in rnd.target.parameters()]
    pred_before = [p.clone() for p in rnd.predictor.parameters()]
    rnd.update(batch_from(vec_obs(4, 2, 0)))
    for a, b in zip(target_before, rnd.target.parameters(), strict=True):
        assert torch.equal(a, b)
    assert any(
        not torch.equal(a, b) for a, b in zip(pred_before, rnd.predictor.parameters(), strict=True)
    )


def test_rnd_obs_norm_updates_statistics():
    torch.manual_seed(0)
    rnd = RND(VEC, ACT, hidden_dim=16, latent_dim=4)
    obs = vec_obs(10, 4, 0, center=2.0, scale=3.0)
    rnd.compute(batch_from(obs))
    flat = obs.reshape(-1, 6).double()
    torch.testing.assert_close(rnd.obs_stats.mean, flat.mean(0), rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(rnd.obs_stats.var, flat.var(0, unbiased=False), rtol=1e-3, atol=1e-3)
    no_norm = RND(VEC, ACT, obs_norm=False, hidden_dim=16, latent_dim=4)
    no_norm.compute(batch_from(obs))
    assert torch.equal(no_norm.obs_stats.mean, torch.zeros(6, dtype=torch.float64))


def test_rnd_rejects_non_box_space():
    with pytest.raises(TypeError, match="RND"):
        RND(spaces.Discrete(4), ACT)


def test_weight_schedule():
    rnd = RND(VEC, ACT, coef=0.5, coef_decay=0.01, hidden_dim=8, latent_dim=4)
    for step in (0, 1, 10, 1000):
        assert rnd.weight(step) == pytest.approx(0.5 * 0.99**step)
    constant = RND(VEC, ACT, coef=2.0, hidden_dim=8, latent_dim=4)
    assert constant.weight(0) == constant.weight(10**6) == 2.0
    with pytest.raises(ValueError, match="coef_decay"):
        RND(VEC, ACT, coef_decay=1.0)
    with pytest.raises(ValueError, match="coef_decay"):
        RND(VEC, ACT, coef_decay=-0.1)


def test_reward_applies_weight_and_norm():
    torch.manual_seed(0)
    batch = batch_from(vec_obs(4, 3, 0))
    raw_rnd = RND(
        VEC,
        ACT,
        coef=0.5,
        coef_decay=0.1,
        reward_norm="none",
        obs_norm=False,
        hidden_dim=16,
        latent_dim=4,
    )
    raw = raw_rnd.compute(batch)
    torch.testing.assert_close(raw_rnd.reward(batch, step=3), raw * 0.5 * 0.9**3)

    mm = RND(VEC, ACT, reward_norm="minmax", obs_norm=False, hidden_dim=16, latent_dim=4)
    r = mm.reward(batch, step=0)
    assert r.min().item() == pytest.approx(0.0, abs=1e-6)
    assert r.max().item() == pytest.approx(1.0, abs=1e-6)

    rms = RND(VEC, ACT, reward_norm="rms", obs_norm=False, hidden_dim=16, latent_dim=4)
    r = rms.reward(batch, step=0)
    raw = rms.compute(batch)
    torch.testing.assert_close(r, raw / (rms.reward_stats.std.float() + 1e-8))
    assert rms.reward_stats.count.item() == pytest.approx(12, abs=1e-3)


@pytest.mark.parametrize("norm", ["rms", "minmax", "none"])
def test_reward_norm_valid_options(norm):
    assert RND(VEC, ACT, reward_norm=norm, hidden_dim=8, latent_dim=4).reward_norm == norm


@pytest.mark.parametrize("norm", ["RMS", "std", "", None])
def test_reward_norm_invalid_options(norm):
    with pytest.raises(ValueError, match="reward_norm"):
        RND(VEC, ACT, reward_norm=norm, hidden_dim=8, latent_dim=4)


def test_intrinsic_reward_is_abstract():
    with pytest.raises(TypeError):
        IntrinsicReward(VEC, ACT)  # type: ignore[abstract]

    class OnlyCompute(IntrinsicReward):
        def compute(self, batch):
            return torch.zeros_like(batch.dones)

    with pytest.raises(TypeError):
        OnlyCompute(VEC, ACT)  # type: ignore[abstract]


def test_minimal_subclass_and_registry():
    class Constant(IntrinsicReward):
        def compute(self, batch):
            return torch.ones_like(batch.dones)

        def update(self, batch):
            return {}

    bonus = Constant(VEC, ACT, coef=3.0, reward_norm="none")
    batch = batch_from(vec_obs(2, 2, 0))
    torch.testing.assert_close(bonus.reward(batch, step=0), torch.full((2, 2), 3.0))
    bonus.reset_episodes(torch.ones(2, dtype=torch.bool))  # default no-op
    assert INTRINSIC_REWARDS.get("rnd") is RND
