"""Off-policy prototype and policies: shapes, batched critics, target updates, collection
(warm-up, true next observations, terminated vs truncated), optimizers, checkpoints, export."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnxruntime as ort
import pytest
import torch
from gymnasium import spaces
from torch import nn

from rlkit.agents import DDPG, DQN, SAC, TD3, SACDiscrete
from rlkit.distributions import OrnsteinUhlenbeckNoise
from rlkit.encoders import MLP
from rlkit.envs import make_vec_env
from rlkit.export import to_onnx
from rlkit.policies import (
    CategoricalActorCritic,
    DenseStack,
    DeterministicActorCritic,
    EnsembleMLP,
    QNetwork,
    SquashedGaussianActorCritic,
)
from rlkit.prototypes import FlatOptimizer, OffPolicyAgent, TargetNetwork, load_agent
from rlkit.rewards import RND
from rlkit.storages import ReplayStorage

BOX_OBS = spaces.Box(-1.0, 1.0, (3,), np.float32)
BOX_ACT = spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
DISCRETE = spaces.Discrete(3, start=-1)
TINY: dict[str, Any] = {"learning_starts": 32, "batch_size": 16, "buffer_size": 1000}
SMALL_NET = {"hidden_sizes": [32, 32]}
AGENTS: dict[str, tuple[type[OffPolicyAgent], str]] = {
    "dqn": (DQN, "CartPole-v1"),
    "sac_discrete": (SACDiscrete, "CartPole-v1"),
    "sac": (SAC, "Pendulum-v1"),
    "td3": (TD3, "Pendulum-v1"),
    "ddpg": (DDPG, "Pendulum-v1"),
}


class CountingEnv(gym.Env[np.ndarray, Any]):
    """Observation ``[t, episode]``; episodes last ``length`` steps and end terminated on odd
    episodes, truncated on even ones; reward ``t``."""

    def __init__(self, length: int = 5, discrete: bool = True) -> None:
        self.length = length
        self.observation_space = spaces.Box(0.0, 1000.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2) if discrete else spaces.Box(-1.0, 1.0, (1,))
        self.t = 0
        self.episode = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.t, self.episode], np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        self.episode += 1
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        end = self.t >= self.length
        odd = self.episode % 2 == 1
        return self._obs(), float(self.t), end and odd, end and not odd, {}


def _agent(algo: str, num_envs: int = 2, **kw: Any) -> OffPolicyAgent:
    cls, env_id = AGENTS[algo]
    env = make_vec_env(env_id, num_envs=num_envs, seed=0)
    return cls(env, seed=0, **{**TINY, **SMALL_NET, **kw})


def _obs(agent: OffPolicyAgent, n: int = 8) -> np.ndarray:
    space = agent.observation_space
    space.seed(1)
    return np.clip(np.stack([space.sample() for _ in range(n)]), -5, 5).astype(space.dtype)


# --------------------------------------------------------------------------- policies
@pytest.mark.parametrize("dueling", [False, True])
def test_q_network_shapes_and_greedy_acting(dueling: bool) -> None:
    policy = QNetwork(BOX_OBS, DISCRETE, hidden_sizes=(16, 8), dueling=dueling)
    obs = torch.rand(5, 3) * 2 - 1
    q = policy.q_values(obs)
    assert q.shape == (5, 3)
    actions, state = policy.act(obs)
    assert state is None
    torch.testing.assert_close(actions, q.argmax(-1) - 1)  # Discrete(3, start=-1)
    torch.testing.assert_close(policy.act(obs, deterministic=True)[0], actions)
    if dueling:  # V + A - mean(A): the mean over actions of Q is the value stream
        assert policy.value_head is not None
        hidden = policy.trunk(policy.encoder(obs))
        torch.testing.assert_close(q.mean(-1, keepdim=True), policy.value_head(hidden))


def test_q_network_rejects_box_actions() -> None:
    with pytest.raises(TypeError, match=r"QNetwork does not support action space Box"):
        QNetwork(BOX_OBS, BOX_ACT)


def test_ensemble_matches_separate_networks() -> None:
    torch.manual_seed(0)
    ens = EnsembleMLP(3, 5, [7, 6], 2)
    x = torch.randn(4, 5)
    out = ens(x)
    assert out.shape == (3, 4, 2)
    for e in range(3):
        h = x
        for i, layer in enumerate(ens.layers):
            h = h @ layer.weight[e] + layer.bias[e, 0]
            if i < len(ens.layers) - 1:
                h = torch.relu(h)
        torch.testing.assert_close(out[e], h)
    torch.testing.assert_close(ens(x, members=slice(1, 2)), out[1:2])
    # detach_params: gradient reaches the input, not the weights
    x.requires_grad_(True)
    ens(x, detach_params=True).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in ens.parameters())


def test_dense_stack_numpy_acting_path_follows_the_weights() -> None:
    torch.manual_seed(0)
    stack = DenseStack(4, [32, 32], 3)
    x = torch.randn(5, 4)
    with torch.inference_mode():
        fast = stack(x)  # small batch, no autograd: the NumPy path
    torch.testing.assert_close(fast, stack(x))
    FlatOptimizer([stack], lr=0.1)  # parameters move into one buffer
    with torch.no_grad():
        for p in stack.parameters():
            p.mul_(0.5)
    after = stack(x)  # autograd on: the torch path
    with torch.inference_mode():
        torch.testing.assert_close(stack(x), after)
    assert not torch.allclose(after, fast)


def test_twin_critics_are_independent() -> None:
    policy = SquashedGaussianActorCritic(BOX_OBS, BOX_ACT, hidden_sizes=[16, 16])
    feats = policy.features(torch.rand(6, 3))
    q = policy.q_values(feats, torch.rand(6, 2) * 2 - 1)
    assert q.shape == (2, 6)
    q[0].sum().backward()
    w = policy.critic.layers[0].weight.grad
    assert w is not None and w[0].abs().sum() > 0 and w[1].abs().sum() == 0


@pytest.mark.parametrize(
    "cls", [DeterministicActorCritic, SquashedGaussianActorCritic], ids=lambda c: c.__name__
)
def test_continuous_policies_act_within_bounds(cls: type) -> None:
    torch.manual_seed(0)
    policy = cls(BOX_OBS, BOX_ACT, hidden_sizes=[16])
    obs = torch.rand(64, 3) * 2 - 1
    low, high = torch.as_tensor(BOX_ACT.low), torch.as_tensor(BOX_ACT.high)
    for deterministic in (True, False):
        actions, _ = policy.act(obs, deterministic=deterministic)
        assert actions.shape == (64, 2) and actions.dtype == torch.float32
        assert ((actions >= low) & (actions <= high)).all()
    mode, _ = policy.act(obs, deterministic=True)
    sampled, _ = policy.act(obs, deterministic=False)
    assert not torch.allclose(mode, sampled)
    torch.testing.assert_close(policy(obs), mode)
    # normalise / rescale round trip
    torch.testing.assert_close(policy.to_env(policy.normalize_actions(mode)), mode)
    assert policy.normalize_actions(low.expand(3, 2)).eq(-1).all()


def test_sac_fast_sampling_matches_the_distribution() -> None:
    torch.manual_seed(0)
    policy = SquashedGaussianActorCritic(BOX_OBS, BOX_ACT, hidden_sizes=[16])
    with torch.no_grad():  # spread the means so some actions saturate tanh
        policy.actor.layers[-1].weight.mul_(30.0)
    feats = policy.features(torch.rand(256, 3) * 2 - 1)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    fast_a, fast_lp = policy.sample_with_log_prob(feats, g1)
    ref_a, ref_lp = policy.action_distribution(feats).rsample_with_log_prob(g2)
    torch.testing.assert_close(fast_a, ref_a)
    torch.testing.assert_close(fast_lp, ref_lp, rtol=1e-5, atol=1e-4)
    assert fast_a.abs().max() > 0.999  # saturated rows are covered
    fast_grad = torch.autograd.grad((fast_lp + fast_a.sum(-1)).sum(), policy.actor.parameters())
    ref_grad = torch.autograd.grad((ref_lp + ref_a.sum(-1)).sum(), policy.actor.parameters())
    for a, b in zip(fast_grad, ref_grad, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "cls", [DeterministicActorCritic, SquashedGaussianActorCritic], ids=lambda c: c.__name__
)
def test_continuous_policies_need_finite_bounds(cls: type) -> None:
    with pytest.raises(ValueError, match="finite bounds"):
        cls(BOX_OBS, spaces.Box(-np.inf, np.inf, (2,), np.float32))


def test_categorical_actor_critic() -> None:
    policy = CategoricalActorCritic(BOX_OBS, DISCRETE, hidden_sizes=[16])
    obs = torch.rand(32, 3)
    assert policy.q_values(policy.features(obs)).shape == (2, 32, 3)
    for deterministic in (True, False):
        actions, _ = policy.act(obs, deterministic=deterministic)
        assert actions.dtype == torch.int64 and set(actions.tolist()) <= {-1, 0, 1}
    logits = policy.actor(policy.features(obs))
    torch.testing.assert_close(policy.act(obs, deterministic=True)[0], logits.argmax(-1) - 1)


# --------------------------------------------------------------------------- targets, optimizer
def _module() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_target_soft_and_hard_updates() -> None:
    online = _module()
    opt = FlatOptimizer([online], lr=0.1)
    target = TargetNetwork(online)
    assert len(target._runs) == 1  # one flat buffer on each side: one lerp per update
    assert all(not p.requires_grad for p in target.parameters())
    before = [p.detach().clone() for p in target.parameters()]
    opt.step(online(torch.randn(8, 3)).pow(2).sum())  # the online net moves
    target.update(0.25)
    for old, new, src in zip(before, target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * src)
    target.update(1.0)
    for new, src in zip(target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(new, src)
    # updating the target does not touch the online network
    snapshot = [p.detach().clone() for p in online.parameters()]
    with torch.no_grad():
        for p in target.parameters():
            p.add_(1.0)
    for p, s in zip(online.parameters(), snapshot, strict=True):
        torch.testing.assert_close(p, s)


def test_target_tracks_only_the_given_modules() -> None:
    policy = SquashedGaussianActorCritic(BOX_OBS, BOX_ACT, hidden_sizes=[8])
    critic_opt = FlatOptimizer(policy.critic_modules(), lr=0.1)
    FlatOptimizer(policy.actor_modules(), lr=0.1)
    target = TargetNetwork(policy, track=policy.critic_modules())
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(1.0)
    actor_before = [p.clone() for p in target.net.actor.parameters()]
    target.update(1.0)
    for p, s in zip(target.net.critic.parameters(), policy.critic.parameters(), strict=True):
        torch.testing.assert_close(p, s)
    for p, s in zip(target.net.actor.parameters(), actor_before, strict=True):
        torch.testing.assert_close(p, s)
    assert critic_opt.flat.numel() == sum(p.numel() for p in policy.critic.parameters())


def test_flat_optimizer_clips_the_gradient_norm() -> None:
    online = _module()
    opt = FlatOptimizer([online], lr=1e-3, max_grad_norm=0.5)
    opt.step(online(torch.randn(8, 3)).pow(2).sum() * 100)
    assert opt.flat.grad is not None
    assert torch.linalg.vector_norm(opt.flat.grad) <= 0.5 + 1e-4


# --------------------------------------------------------------------------- collection
@pytest.mark.parametrize("discrete", [True, False])
def test_stores_true_next_obs_and_keeps_terminated_and_truncated_apart(discrete: bool) -> None:
    env = make_vec_env(lambda: CountingEnv(5, discrete), num_envs=2, seed=0)
    cls = DQN if discrete else SAC
    agent = cls(env, seed=0, learning_starts=1000, buffer_size=100, batch_size=8, gamma=0.9)
    agent.collect(20)
    assert agent.global_step == 40 and len(agent.storage) == 40
    storage = agent.storage
    obs = storage.store.obs(np.arange(40))
    next_obs = storage.store.next_obs(np.arange(40))
    # within an episode next_obs is the following step; at the end it is the final obs (t=5)
    np.testing.assert_array_equal(next_obs[:, 0], obs[:, 0] + 1)
    ends = obs[:, 0] == 4
    assert ends.sum() == 8
    np.testing.assert_array_equal(next_obs[ends, 1], obs[ends, 1])  # same episode, not reset
    episode_odd = obs[:, 1] % 2 == 1
    np.testing.assert_array_equal(storage.terminated[:40], ends & episode_odd)
    np.testing.assert_array_equal(storage.truncated[:40], ends & ~episode_odd)
    np.testing.assert_array_equal(storage.rewards[:40], obs[:, 0] + 1)
    batch = storage.sample(256, torch.Generator().manual_seed(0))
    term = batch.obs[:, 0].eq(4) & batch.obs[:, 1].remainder(2).eq(1)
    expected = torch.where(term, 0.0, 0.9)
    torch.testing.assert_close(batch.discounts, expected)


def test_warm_up_is_random_then_the_policy_acts() -> None:
    agent = _agent("dqn", num_envs=1, learning_starts=200, exploration_initial_eps=0.0,
                   exploration_final_eps=0.0, train_freq=10_000)  # fmt: skip
    agent.train(400, progress_bar=False)
    assert agent.num_updates == 0  # train_freq 10_000: no update yet
    obs = torch.as_tensor(agent.storage.store.obs(np.arange(400)))
    stored = torch.as_tensor(agent.storage.actions[:400])
    greedy = agent.policy.act(obs)[0]
    warm, after = slice(0, 200), slice(200, 400)
    assert torch.equal(stored[after], greedy[after])  # eps 0: greedy after warm-up
    assert (stored[warm] != greedy[warm]).sum() > 50  # ~half of random actions differ


def test_train_freq_and_gradient_steps() -> None:
    agent = _agent("dqn", num_envs=2, learning_starts=0, train_freq=4, gradient_steps=3)
    agent.train(80, progress_bar=False)  # 10 rounds of 4 vector steps
    assert agent.global_step == 80 and agent.num_updates == 30
    agent = _agent("dqn", num_envs=2, learning_starts=0, train_freq=4, gradient_steps=-1)
    agent.train(80, progress_bar=False)
    assert agent.num_updates == 80  # as many as transitions collected


def test_hard_target_update_interval() -> None:
    agent = _agent("dqn", learning_starts=0, train_freq=1, target_update_interval=5, tau=1.0)
    assert isinstance(agent, DQN)
    agent.train(2 * 4, progress_bar=False)  # 4 updates: target still at its initial weights
    assert agent.num_updates == 4
    diffs = [
        (p - q).abs().max()
        for p, q in zip(agent.target.parameters(), agent.policy.parameters(), strict=True)
    ]
    assert max(diffs) > 0
    agent.train(2 * 5, progress_bar=False)  # update 5: hard copy
    for p, q in zip(agent.target.parameters(), agent.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q)


# --------------------------------------------------------------------------- primitives
def test_custom_storage_and_encoder() -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    storage = ReplayStorage(
        env.single_observation_space, env.single_action_space, capacity=500, num_envs=2,
        n_step=3,
    )  # fmt: skip
    enc = MLP(env.single_observation_space, feature_dim=16)
    agent = DQN(env, seed=0, storage=storage, encoder=enc, **TINY)
    assert agent.storage is storage and agent.policy.encoder is enc
    agent.train(100, progress_bar=False)
    assert len(storage) == 100 and agent.num_updates > 0
    spec_agent = DQN(env, seed=0, storage={"id": "replay", "capacity": 64}, **TINY)
    assert spec_agent.storage.capacity == 64 and spec_agent.storage.num_envs == 2
    with pytest.raises(ValueError, match="gamma"):
        DQN(env, storage={"id": "replay", "capacity": 64, "gamma": 0.5}, gamma=0.99)
    with pytest.raises(ValueError, match="laid out for 1 envs, but the env has 2"):
        DQN(env, storage={"id": "replay", "capacity": 64, "num_envs": 1})
    with pytest.raises(ValueError, match="either policy= or encoder="):
        DQN(env, policy="q_network", encoder="identity")


def test_intrinsic_reward_on_sampled_batches() -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    rnd = RND(env.single_observation_space, env.single_action_space, hidden_dim=32)
    agent = DQN(env, seed=0, intrinsic_reward=rnd, log_interval=64, **TINY)
    rows = agent.train(64, progress_bar=False)
    assert rows is agent
    metrics = agent.iteration()
    assert "intrinsic/rnd_loss" in metrics and "intrinsic/reward_mean" in metrics
    assert metrics["intrinsic/reward_mean"] > 0
    batch = agent.storage.sample(16, torch.Generator().manual_seed(0))
    prepared, transitions, _ = agent.prepare_batch(batch)
    assert transitions is not None and transitions.dones.shape == (16,)
    assert not torch.allclose(prepared.rewards, batch.rewards)
    assert (prepared.rewards > batch.rewards).all()


@pytest.mark.parametrize("algo", ["dqn", "sac"])
def test_obs_normalisation_applies_to_sampled_batches(algo: str) -> None:
    agent = _agent(algo, normalize_obs=True)
    agent.train(64, progress_bar=False)
    assert agent.obs_normalizer is not None
    batch = agent.storage.sample(16, torch.Generator().manual_seed(0))
    prepared, _, _ = agent.prepare_batch(batch)
    torch.testing.assert_close(prepared.obs, agent.obs_normalizer(batch.obs))


def test_ou_noise_is_stepped_and_reset() -> None:
    env = make_vec_env("Pendulum-v1", num_envs=2, seed=0)
    noise = OrnsteinUhlenbeckNoise(env.single_action_space, num_envs=2)
    policy = DeterministicActorCritic(
        env.single_observation_space, env.single_action_space, noise=noise, hidden_sizes=[16]
    )
    agent = DDPG(env, seed=0, policy=policy, learning_starts=0, buffer_size=500, batch_size=8)
    agent.collect(10)
    assert noise.state.abs().sum() > 0
    agent.on_episode_end(np.array([True, False]))
    assert noise.state[0].abs().sum() == 0 and noise.state[1].abs().sum() > 0


# --------------------------------------------------------------------------- checkpoints
def _opt_state(agent: OffPolicyAgent) -> dict[str, dict[str, torch.Tensor]]:
    return {
        name: {
            f"{i}.{k}": v.clone()
            for i, state in enumerate(opt.state.values())
            for k, v in state.items()
            if isinstance(v, torch.Tensor)
        }
        for name, opt in agent.optimizers().items()
    }


@pytest.mark.parametrize("algo", sorted(AGENTS))
def test_save_load_identical_actions_and_resume(algo: str, tmp_path: Path) -> None:
    agent = _agent(algo)
    agent.train(96, progress_bar=False)
    assert agent.num_updates > 0
    path = agent.save(tmp_path / "ckpt")
    assert not (path / "replay.h5").exists()
    loaded = load_agent(path)
    assert type(loaded) is type(agent)
    obs = _obs(agent)
    np.testing.assert_array_equal(
        agent.act(obs, deterministic=True), loaded.act(obs, deterministic=True)
    )
    assert (loaded.global_step, loaded.num_updates) == (agent.global_step, agent.num_updates)
    before, after = _opt_state(agent), _opt_state(loaded)
    assert set(before) == set(after) and len(before) >= 1
    for name in before:
        assert before[name] and before[name].keys() == after[name].keys()
        for key, value in before[name].items():
            torch.testing.assert_close(after[name][key], value, msg=f"{name}.{key}")
    for name, module in agent.modules().items():
        for key, value in module.state_dict().items():
            torch.testing.assert_close(loaded.modules()[name].state_dict()[key], value)
    # without the replay the loaded agent refills its storage and continues training
    loaded.train(loaded.global_step + 64, progress_bar=False)
    assert loaded.num_updates > agent.num_updates


def test_resume_with_replay_restores_the_storage(tmp_path: Path) -> None:
    agent = _agent("sac", save_replay=True, prioritized_replay=True)
    agent.train(96, progress_bar=False)
    path = agent.save(tmp_path / "ckpt")
    assert (path / "replay.h5").is_file()
    assert not list(tmp_path.glob(".*replay*"))  # the staged file was moved in
    loaded = SAC.load(path)
    assert loaded.storage is not agent.storage and len(loaded.storage) == len(agent.storage)
    for key, value in agent.storage.state_dict().items():
        torch.testing.assert_close(loaded.storage.state_dict()[key], value, msg=key)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    b1, b2 = agent.storage.sample(32, g1), loaded.storage.sample(32, g2)
    torch.testing.assert_close(b1.obs, b2.obs)
    torch.testing.assert_close(b1.weights, b2.weights)
    loaded.train(loaded.global_step + 32, progress_bar=False)
    assert len(loaded.storage) == len(agent.storage) + 32
    # a checkpoint whose replay file is gone says so
    (path / "replay.h5").unlink()
    with pytest.raises(Exception, match=r"replay\.h5"):
        SAC.load(path)
    assert len(SAC.load(path, save_replay=False).storage) == 0


def test_periodic_checkpoints_include_the_replay(tmp_path: Path) -> None:
    agent = _agent("dqn", save_replay=True, log_interval=32)
    agent.train(128, run_dir=tmp_path / "run", progress_bar=False, checkpoint_every=64,
                tensorboard=False)  # fmt: skip
    ckpt = tmp_path / "run" / "checkpoint"
    assert (ckpt / "replay.h5").is_file()
    resumed = DQN.load(tmp_path / "run")
    assert resumed.global_step == 128 and len(resumed.storage) == 128
    header = (tmp_path / "run" / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"loss/td", "train/epsilon", "replay/size"} <= set(header)


# --------------------------------------------------------------------------- export
@pytest.mark.parametrize("algo", ["dqn", "sac", "td3", "sac_discrete"])
def test_onnx_export_matches_onnxruntime(algo: str, tmp_path: Path) -> None:
    agent = _agent(algo, normalize_obs=True)
    agent.train(64, progress_bar=False)
    result = to_onnx(agent, tmp_path / "policy.onnx")
    assert result.parity is not None and result.parity.ok, result.parity
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    obs = _obs(agent, 50)
    (out,) = session.run(None, {"obs": obs})
    expected = agent.act(obs, deterministic=True)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    if np.issubdtype(expected.dtype, np.floating):
        np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)
    else:
        np.testing.assert_array_equal(out, expected)
    # exporting deep-copies the acting path: the agent keeps training afterwards
    params = copy.deepcopy(agent.policy.state_dict())
    agent.train(agent.global_step + 32, progress_bar=False)
    assert any(not torch.equal(params[k], v) for k, v in agent.policy.state_dict().items())
