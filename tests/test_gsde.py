"""gSDE (generalised state-dependent exploration) for SAC: the maths against an independent
formula and Stable-Baselines3's distribution, the redraw schedule in the off-policy loop, and
clear errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.agents import REDQ, SAC, TQC
from rlkit.envs import make_vec_env
from rlkit.policies import GSDEActorCritic, GSDEQuantileActorCritic

OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = spaces.Box(-2.0, 2.0, (2,), np.float32)


def policy(log_std_init: float = -1.0) -> GSDEActorCritic:
    torch.manual_seed(0)
    return GSDEActorCritic(OBS, ACT, hidden_sizes=[8, 8], log_std_init=log_std_init)


def test_sample_and_log_prob_follow_the_state_dependent_marginal() -> None:
    """The action is ``tanh(mean + z @ (sigma * eps))`` with this update's ``eps``; its
    log-density is that of ``N(mean, z^2 @ sigma^2 + 1e-6)`` minus ``log(1 - tanh(u)^2)``,
    computed here in float64 with torch.distributions."""
    pol = policy()
    with torch.no_grad():
        pol.sde.log_std.uniform_(-1.5, -0.5)
    features = torch.randn(5, 3)
    generator = torch.Generator().manual_seed(1)
    pol.sde.reset_noise(generator)
    action, log_prob = pol.sample_with_log_prob(features)
    mean, latent = pol.actor(features)
    eps = pol.sde.training_draw
    assert eps is not None
    sigma = pol.sde.log_std.exp().double()
    u = mean.double() + latent.double() @ (sigma * eps.double())
    scale = (latent.double().square() @ sigma.square() + 1e-6).sqrt()
    expected = torch.distributions.Normal(mean.double(), scale).log_prob(u)
    expected = (expected - torch.log(1 - torch.tanh(u).square())).sum(-1)
    torch.testing.assert_close(action.double(), torch.tanh(u), atol=1e-6, rtol=0)
    torch.testing.assert_close(log_prob.double(), expected, atol=1e-4, rtol=1e-5)
    # reparameterised: the gradient reaches log sigma, and through z the hidden layers
    (action.sum() + log_prob.sum()).backward()
    assert pol.sde.log_std.grad is not None and pol.sde.log_std.grad.abs().sum() > 0


def test_matches_stable_baselines3_distribution() -> None:
    """Same mean, latent, sigma and weight draw as Stable-Baselines3's
    StateDependentNoiseDistribution (full std, squashed, features not learned): same action
    and log-probability."""
    sb3 = pytest.importorskip("stable_baselines3.common.distributions")
    pol = policy(-0.7)
    features = torch.randn(6, 3)
    pol.sde.reset_noise(torch.Generator().manual_seed(2))
    with torch.no_grad():
        action, log_prob = pol.sample_with_log_prob(features)
        mean, latent = pol.actor(features)
        dist = sb3.StateDependentNoiseDistribution(2, full_std=True, squash_output=True)
        dist.sample_weights(pol.sde.log_std)
        assert pol.sde.training_draw is not None
        dist.exploration_mat = pol.sde.std() * pol.sde.training_draw
        dist.proba_distribution(mean, pol.sde.log_std, latent)
        theirs = dist.sample()
        torch.testing.assert_close(action, theirs, atol=1e-6, rtol=0)
        torch.testing.assert_close(log_prob, dist.log_prob(theirs), atol=2e-3, rtol=1e-4)


def test_acting_weights_hold_per_row_and_deterministic_is_the_mean() -> None:
    pol = policy()
    pol.sde.resample(4, torch.Generator().manual_seed(0))
    obs = torch.randn(4, 3)
    a1, _ = pol.act(obs)
    a2, _ = pol.act(obs)
    torch.testing.assert_close(a1, a2)  # same state, same draw: same action
    mean, _ = pol.actor(pol.features(obs))
    det, _ = pol.act(obs, deterministic=True)
    torch.testing.assert_close(det, pol.to_env(torch.tanh(mean)))
    assert not torch.allclose(a1, det)
    pol.sde.resample(4, torch.Generator().manual_seed(1))
    assert not torch.allclose(pol.act(obs)[0], a1)


class RecordingSAC(SAC):
    """Records the acting weights each exploration step sees (a user's subclass)."""

    def explore(self, obs: Any) -> np.ndarray:
        self.seen.append(self.policy.sde.exploration.clone())
        return super().explore(obs)


@pytest.mark.parametrize(("sample_freq", "draws_at"), [(-1, {0, 8}), (3, {0, 3, 6, 8, 11})])
def test_weights_are_redrawn_per_round_and_every_sample_freq(
    sample_freq: int, draws_at: set[int]
) -> None:
    """train_freq 8 over 12 vector steps (learning_starts 0): a draw at each round start and,
    with sde_sample_freq 3, every 3 steps into a round (Stable-Baselines3's schedule)."""
    env = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    agent = RecordingSAC(
        env, seed=0, use_sde=True, sde_sample_freq=sample_freq, learning_starts=0,
        train_freq=8, gradient_steps=1, batch_size=8, hidden_sizes=[8], log_interval=24,
    )  # fmt: skip
    agent.seen = []
    agent.train(24, progress_bar=False)
    seen = agent.seen
    assert len(seen) == 12 and seen[0].shape == (2, 8, 1)
    changed = {0} | {i for i in range(1, 12) if not torch.equal(seen[i], seen[i - 1])}
    assert changed == draws_at
    env.close()


def test_use_sde_builds_the_gsde_policy_and_checkpoints_rebuild_it(tmp_path: Any) -> None:
    env = make_vec_env("Pendulum-v1", num_envs=1, seed=0)
    agent = SAC(env, seed=0, use_sde=True, log_std_init=-2.5, hidden_sizes=[16])
    assert isinstance(agent.policy, GSDEActorCritic)
    assert torch.all(agent.policy.sde.log_std == -2.5)
    agent.save(tmp_path / "ck")
    loaded = SAC.load(tmp_path / "ck")
    assert isinstance(loaded.policy, GSDEActorCritic)
    assert loaded.policy.sde.log_std.shape == (16, 1)


def test_tqc_with_use_sde_builds_quantile_critics_and_the_gsde_actor() -> None:
    env = make_vec_env("Pendulum-v1", num_envs=1, seed=0)
    agent = TQC(env, seed=0, use_sde=True, n_critics=2, n_quantiles=5, hidden_sizes=[8])
    assert isinstance(agent.policy, GSDEQuantileActorCritic)
    features = agent.policy.features(torch.zeros(3, 3))
    action, log_prob = agent.policy.sample_with_log_prob(features)
    assert agent.policy.quantiles(features, action).shape == (2, 3, 5)
    assert log_prob.shape == (3,) and agent.sde is agent.policy.sde


def test_use_sde_without_a_gsde_policy_is_one_clear_error() -> None:
    env = make_vec_env("Pendulum-v1", num_envs=1, seed=0)
    with pytest.raises(ValueError, match=r"REDQ: use_sde=True needs .*SquashedGaussianActorCritic"):
        REDQ(env, use_sde=True)
    with pytest.raises(ValueError, match=r"sde_sample_freq=0 .*integer >= 1 or -1"):
        SAC(env, use_sde=True, sde_sample_freq=0)
    with pytest.raises(ValueError, match="clip_mean"):
        GSDEActorCritic(OBS, ACT, clip_mean=-1.0)


def test_log_std_init_sets_the_initial_noise_scale() -> None:
    """sigma = exp(log_std_init) per latent unit and action: the per-state std of a latent
    ``z`` is ``exp(log_std_init) * |z|`` (plus the 1e-6 variance floor)."""
    pol = policy(-3.67)
    latent = torch.tensor([[3.0, 4.0, 0, 0, 0, 0, 0, 0]])
    expected = math.sqrt((5.0 * math.exp(-3.67)) ** 2 + 1e-6)
    torch.testing.assert_close(pol.sde.scale(latent), torch.full((1, 2), expected))


def test_sac_updates_match_stable_baselines3_in_lockstep() -> None:
    """From the same weights, on the same five batches and the same weight draws, rlkit's SAC
    with gSDE and Stable-Baselines3's (``use_sde=True``; its SAC policy learns the features,
    ``learn_features=True``) end with the same actor, critics and targets (float tolerance)."""
    pytest.importorskip("stable_baselines3")
    import gymnasium as gym
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    from rlkit.storages.replay import ReplayBatch

    settings = {"batch_size": 8, "ent_coef": 0.1, "gamma": 0.9999, "tau": 0.01}
    ours = SAC(
        make_vec_env("MountainCarContinuous-v0", num_envs=1, seed=0), seed=0, use_sde=True,
        log_std_init=-1.0, hidden_sizes=[16, 16], learning_starts=0, **settings,
    )  # fmt: skip
    theirs = SB3SAC(
        "MlpPolicy", gym.make("MountainCarContinuous-v0"), use_sde=True, learning_starts=0,
        policy_kwargs={"log_std_init": -1.0, "net_arch": [16, 16]}, seed=0, device="cpu",
        **settings,
    )  # fmt: skip
    pol, actor = ours.policy, theirs.actor
    pairs = [
        (pol.actor.latent[0], actor.latent_pi[0]),
        (pol.actor.latent[2], actor.latent_pi[2]),
        (pol.actor.mu, actor.mu[0]),
    ]
    critics = [(pol.critic, theirs.critic), (ours.target.net.critic, theirs.critic_target)]
    with torch.no_grad():
        for mine, sb3 in pairs:
            mine.weight.copy_(sb3.weight)
            mine.bias.copy_(sb3.bias)
        pol.sde.log_std.copy_(actor.log_std)
        for mine_c, sb3_c in critics:
            for member, q in enumerate((sb3_c.qf0, sb3_c.qf1)):
                linears = [m for m in q if isinstance(m, torch.nn.Linear)]
                for layer, linear in zip(mine_c.layers, linears, strict=True):
                    layer.weight[member].copy_(linear.weight.t())
                    layer.bias[member, 0].copy_(linear.bias)
    gen = torch.Generator().manual_seed(1)
    current: dict[str, Any] = {}

    def sample(batch_size: int, env: Any = None) -> ReplayBufferSamples:
        b = current["batch"]
        return ReplayBufferSamples(
            b.obs, b.actions, b.next_obs, b.dones.unsqueeze(1), b.rewards.unsqueeze(1), None
        )

    def reset_noise(batch_size: int = 1) -> None:
        actor.action_dist.exploration_mat = actor.log_std.exp() * current["draw"]
        actor.action_dist.exploration_matrices = actor.action_dist.exploration_mat[None]

    theirs.replay_buffer.sample = sample  # type: ignore[method-assign]
    actor.reset_noise = reset_noise  # type: ignore[method-assign]
    theirs._setup_learn(10, None)
    for _ in range(5):
        obs = torch.rand(8, 2, generator=gen) * torch.tensor([1.8, 0.14]) - torch.tensor(
            [1.2, 0.07]
        )
        dones = (torch.rand(8, generator=gen) < 0.2).float()
        current["batch"] = batch = ReplayBatch(
            obs=obs, actions=torch.rand(8, 1, generator=gen) * 2 - 1,
            rewards=torch.randn(8, generator=gen), next_obs=obs + 0.01,
            discounts=0.9999 * (1 - dones), dones=dones, weights=torch.ones(8),
            indices=torch.zeros(8, dtype=torch.long),
        )  # fmt: skip
        current["draw"] = pol.sde.training_draw = torch.randn(16, 1, generator=gen)
        theirs.train(gradient_steps=1, batch_size=8)
        ours.num_updates += 1
        ours.update(batch)
        ours.update_targets()
    for mine, sb3 in pairs:
        torch.testing.assert_close(mine.weight, sb3.weight, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(pol.sde.log_std, actor.log_std, atol=1e-6, rtol=1e-5)
    for mine_c, sb3_c in critics:
        for member, q in enumerate((sb3_c.qf0, sb3_c.qf1)):
            first = mine_c.layers[0].weight[member]
            torch.testing.assert_close(first, q[0].weight.t(), atol=1e-6, rtol=1e-5)
