"""DrAC, DAAC and PPG: construction, training, checkpoints, errors; their policies and the
PixelReach task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium.vector import VectorEnv

import rlkit.envs.pixel  # noqa: F401  (registers rlkit/PixelReach-v0)
from rlkit.agents.daac import DAAC
from rlkit.agents.drac import DrAC
from rlkit.agents.ppg import PPG
from rlkit.augmentations import Identity, RandomShift
from rlkit.encoders import MLP
from rlkit.envs import make_vec_env
from rlkit.envs.pixel import PixelReach
from rlkit.policies import ActorCritic
from rlkit.policies.auxiliary import AuxiliaryActorCritic
from rlkit.policies.decoupled import DecoupledActorCritic, encode_actions
from rlkit.prototypes import OnPolicyAgent, load_agent

PIXEL = "rlkit/PixelReach-v0"
TINY: dict[str, Any] = {"num_steps": 8, "batch_size": 16, "num_epochs": 1}
AGENT_KW: dict[str, dict[str, Any]] = {
    "drac": {},
    "daac": {"value_epochs": 2},
    "ppg": {"n_pi": 2, "aux_epochs": 2},
}
CLASSES: dict[str, type[OnPolicyAgent]] = {"drac": DrAC, "daac": DAAC, "ppg": PPG}
# DrAC's default augmentation needs images; DAAC and PPG run on both kinds.
CASES = [
    ("drac", PIXEL),
    ("daac", "CartPole-v1"),
    ("daac", PIXEL),
    ("daac", "Pendulum-v1"),
    ("ppg", "CartPole-v1"),
    ("ppg", PIXEL),
    ("ppg", "Pendulum-v1"),
]


def _env(env_id: str, seed: int = 0) -> VectorEnv:
    return make_vec_env(env_id, num_envs=2, seed=seed)


def _agent(algo: str, env_id: str, **kw: Any) -> OnPolicyAgent:
    return CLASSES[algo](_env(env_id), seed=0, **{**TINY, **AGENT_KW[algo], **kw})


def _obs(env: VectorEnv, n: int = 8) -> np.ndarray:
    space = env.single_observation_space
    space.seed(1)
    return np.clip(np.stack([space.sample() for _ in range(n)]), -3, 3).astype(space.dtype)


def _opt_state(agent: OnPolicyAgent) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for name, opt in agent.optimizers().items():
        out[name] = {
            f"{i}.{k}": v.clone()
            for i, state in enumerate(opt.state.values())
            for k, v in state.items()
            if isinstance(v, torch.Tensor)
        }
    return out


# ------------------------------------------------------------------ pixel task
def test_pixel_reach_frames_and_rewards() -> None:
    env = PixelReach()
    obs, _ = env.reset(seed=3)
    assert obs.shape == (3, 40, 40) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert (obs[0] == 255).any() and (obs[1] == 255).any()  # agent and target visible
    # walk straight to the target: reward 1 and termination on arrival
    agent, target = env._agent.copy(), env._target.copy()
    moves = []
    dr, dc = target - agent
    moves += [1 if dr > 0 else 0] * abs(int(dr)) + [3 if dc > 0 else 2] * abs(int(dc))
    for i, a in enumerate(moves):
        obs, reward, terminated, truncated, _ = env.step(a)
        last = i == len(moves) - 1
        assert (reward, terminated, truncated) == (float(last), last, False)
    # never reaching: truncated after max_steps
    env.reset(seed=3)
    env._target = np.array([4, 4])
    env._agent = np.array([0, 0])
    for t in range(20):
        _, reward, terminated, truncated, _ = env.step(0)  # bump into the top wall
        assert reward == 0.0 and not terminated and truncated == (t == 19)
    with pytest.raises(ValueError, match="action"):
        env.step(7)


def test_pixel_reach_is_seeded_and_registered() -> None:
    a, b = make_vec_env(PIXEL, num_envs=2, seed=5), make_vec_env(PIXEL, num_envs=2, seed=5)
    oa, ob = a.reset(seed=5)[0], b.reset(seed=5)[0]
    np.testing.assert_array_equal(oa, ob)


# ------------------------------------------------------------------ policies
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", PIXEL])
def test_two_network_policies_share_nothing(env_id: str) -> None:
    env = _env(env_id)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    for cls in (DecoupledActorCritic, AuxiliaryActorCritic):
        policy = cls(obs_space, act_space)
        actor = {id(p) for m in policy.actor_modules() for p in m.parameters()}
        critic = {id(p) for m in policy.critic_modules() for p in m.parameters()}
        assert not actor & critic
        assert actor | critic == {id(p) for p in policy.parameters()}
        assert policy.encoder is not policy.value_encoder
        obs = torch.as_tensor(_obs(env))
        out = policy(obs)
        assert out.value.shape == (8,)
        # the value does not depend on the policy network and vice versa
        policy.value(obs).sum().backward()
        assert all(p.grad is None for m in policy.actor_modules() for p in m.parameters())


def test_decoupled_advantage_head_sees_the_action() -> None:
    env = _env("CartPole-v1")
    policy = DecoupledActorCritic(env.single_observation_space, env.single_action_space)
    obs = torch.as_tensor(_obs(env))
    a0, a1 = torch.zeros(8, dtype=torch.int64), torch.ones(8, dtype=torch.int64)
    assert not torch.allclose(policy.advantage(obs, a0), policy.advantage(obs, a1))
    assert encode_actions(a1, env.single_action_space).tolist() == [[0.0, 1.0]] * 8


def test_auxiliary_value_head() -> None:
    env = _env("CartPole-v1")
    policy = AuxiliaryActorCritic(env.single_observation_space, env.single_action_space)
    obs = torch.as_tensor(_obs(env))
    _, aux = policy.actor_forward(obs)
    torch.testing.assert_close(aux, policy.aux_value(obs))
    policy.aux_value(obs).sum().backward()
    assert all(p.grad is None for m in policy.critic_modules() for p in m.parameters())


def test_custom_encoder_gets_a_separate_value_copy() -> None:
    env = _env("CartPole-v1")
    enc = MLP(env.single_observation_space, feature_dim=32)
    agent = DAAC(env, seed=0, encoder=enc, **TINY)
    policy = agent.policy
    assert isinstance(policy, DecoupledActorCritic)
    assert policy.encoder is enc and isinstance(policy.value_encoder, MLP)
    assert policy.value_encoder is not enc and policy.value_encoder.feature_dim == 32


# ------------------------------------------------------------------ agents
@pytest.mark.parametrize(("algo", "env_id"), CASES)
def test_agent_trains_and_logs(algo: str, env_id: str, tmp_path: Path) -> None:
    agent = _agent(algo, env_id)
    run = tmp_path / "run"
    agent.train(6 * 8 * 2, run_dir=run, progress_bar=False, tensorboard=False)
    assert agent.num_updates == 6
    header = (run / "progress.csv").read_text().splitlines()[0].split(",")
    expected = {
        "drac": ["loss/policy", "loss/value", "loss/aug_policy", "loss/aug_value"],
        "daac": ["loss/policy", "loss/advantage", "loss/value", "loss/entropy"],
        "ppg": ["loss/policy", "loss/value", "aux/clone_kl", "aux/aux_value_loss"],
    }[algo]
    for key in expected:
        assert key in header, (key, header)
    assert np.isfinite(agent.act(_obs(agent.env))).all()


@pytest.mark.parametrize(("algo", "env_id"), CASES)
def test_save_load_round_trip(algo: str, env_id: str, tmp_path: Path) -> None:
    agent = _agent(algo, env_id)
    agent.train(4 * 8 * 2, progress_bar=False)
    path = agent.save(tmp_path / "ckpt")
    loaded = load_agent(path)
    assert type(loaded) is type(agent)
    obs = _obs(agent.env)
    np.testing.assert_array_equal(
        agent.act(obs, deterministic=True), loaded.act(obs, deterministic=True)
    )
    before, after = _opt_state(agent), _opt_state(loaded)
    assert set(before) == set(after) == set(agent.optimizers())
    assert len(before) == (1 if algo == "drac" else 2)
    for name in before:
        assert before[name], f"optimizer {name} has no state"
        assert before[name].keys() == after[name].keys()
        for key, value in before[name].items():
            torch.testing.assert_close(after[name][key], value, msg=f"{name}.{key}")
    assert loaded.global_step == agent.global_step
    # training continues after loading
    loaded.train(loaded.global_step + 16, progress_bar=False)


def test_daac_has_two_optimizers_over_disjoint_buffers() -> None:
    agent = _agent("daac", "CartPole-v1")
    assert isinstance(agent, DAAC)
    assert agent.optimizer is not agent.value_optimizer
    value_before = agent.critic_params.detach().clone()
    actor_before = agent.actor_params.detach().clone()
    agent.config.value_epochs = 0  # policy epochs only: the value network must not move
    agent.iteration()
    torch.testing.assert_close(agent.critic_params.detach(), value_before)
    assert not torch.equal(agent.actor_params.detach(), actor_before)


def test_daac_value_freq() -> None:
    agent = _agent("daac", "CartPole-v1", value_freq=2)
    metrics = [agent.iteration() for _ in range(3)]
    assert ["loss/value" in m for m in metrics] == [True, False, True]


def test_ppg_auxiliary_phase_every_n_pi() -> None:
    agent = _agent("ppg", "CartPole-v1", n_pi=3)
    assert isinstance(agent, PPG)
    metrics = [agent.iteration() for _ in range(6)]
    assert ["aux/clone_kl" in m for m in metrics] == [False, False, True] * 2
    assert not agent._aux_obs  # cleared after each phase


def test_ppg_auxiliary_phase_only_moves_what_it_should() -> None:
    """The clone KL is zero at the start of the phase and stays small with a large beta."""
    agent = _agent("ppg", "CartPole-v1", n_pi=1, aux_epochs=1, beta_clone=1.0)
    metrics = agent.iteration()
    assert 0.0 <= metrics["aux/clone_kl"] < 0.05


def test_drac_does_not_augment_the_ppo_loss() -> None:
    agent = _agent("drac", PIXEL)
    agent.collect_rollout()
    agent.storage.compute_returns_and_advantages(torch.zeros(2), 0.99, 0.95)
    mb = next(iter(agent.minibatches()))
    assert isinstance(mb.obs, torch.Tensor) and isinstance(agent.storage.obs, torch.Tensor)
    flat = agent.storage.obs.reshape(-1, *agent.storage.obs.shape[2:])
    # every minibatch frame is an unshifted stored frame
    for frame in mb.obs:
        assert (flat == frame).flatten(1).all(1).any()
    assert isinstance(agent.augmentation, RandomShift) and agent.augmentation.pad == 4


def test_drac_regulariser_is_zero_with_identity() -> None:
    agent = _agent("drac", PIXEL, augmentation=Identity())
    assert isinstance(agent, DrAC)
    obs = torch.as_tensor(_obs(agent.env))
    policy_reg, value_reg = agent.augmentation_loss(obs)
    assert float(policy_reg.detach()) == pytest.approx(0.0, abs=1e-7)
    assert float(value_reg.detach()) == pytest.approx(0.0, abs=1e-10)
    metrics = agent.iteration()
    assert metrics["loss/aug_policy"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["loss/aug_value"] == pytest.approx(0.0, abs=1e-8)
    # a real shift gives a positive regulariser
    shifted = _agent("drac", PIXEL, augmentation=RandomShift(pad=8))
    assert isinstance(shifted, DrAC)
    p_reg, v_reg = shifted.augmentation_loss(obs)
    assert float(p_reg.detach()) > 0 and float(v_reg.detach()) > 0


def test_drac_on_vector_obs_needs_an_augmentation() -> None:
    with pytest.raises(ValueError, match="DrAC: the default augmentation"):
        DrAC(_env("CartPole-v1"), **TINY)
    # an explicit augmentation (here the identity) is accepted
    DrAC(_env("CartPole-v1"), augmentation="identity", **TINY).iteration()


@pytest.mark.parametrize("cls", [DAAC, PPG])
def test_two_network_agents_reject_other_policies(cls: type[OnPolicyAgent]) -> None:
    env = _env("CartPole-v1")
    policy = ActorCritic(env.single_observation_space, env.single_action_space)
    with pytest.raises(TypeError, match="policy and value networks"):
        cls(env, policy=policy, **TINY)
    with pytest.raises(ValueError, match="not both"):
        cls(env, policy="decoupled_actor_critic", encoder="identity", **TINY)


def test_bad_hyperparameters() -> None:
    with pytest.raises(ValueError, match="value_freq"):
        DAAC(_env("CartPole-v1"), value_freq=0)
    with pytest.raises(ValueError, match="n_pi"):
        PPG(_env("CartPole-v1"), n_pi=0)
