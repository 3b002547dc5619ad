"""DrQv2 agent and its policy: spaces, defaults, the update's gradient paths, targets, the
explicit std schedule, prioritized replay and checkpoints (tiny networks on 16x16 frames)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlkit.envs  # noqa: F401  (registers the tasks)
from rlkit.agents import DrQv2, DrQv2Config
from rlkit.augmentations.basic import RandomShift
from rlkit.encoders.drq import DrQCNN
from rlkit.envs import make_vec_env
from rlkit.envs.pixel_control import ENV_ID, PixelPointMass
from rlkit.policies.drqv2 import DrQv2ActorCritic
from rlkit.storages import PixelStore, ReplayStorage

TINY: dict[str, Any] = {
    "hidden_sizes": [32],
    "feature_dim": 8,
    "batch_size": 8,
    "learning_starts": 16,
    "buffer_size": 500,
    "std_schedule": "linear(1.0,0.1,200)",
    "seed": 0,
    "num_threads": 1,
}


class _UnboundedPointMass(PixelPointMass):
    def __init__(self) -> None:
        super().__init__(size=16)
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)


def _env(num_envs: int = 1, **env_kwargs: Any) -> gym.vector.VectorEnv:
    return make_vec_env(
        ENV_ID, num_envs=num_envs, seed=0, env_kwargs={"size": 16, "max_steps": 10, **env_kwargs}
    )


def _agent(**kwargs: Any) -> DrQv2:
    return DrQv2(_env(), **{**TINY, **kwargs})


def test_defaults_follow_the_authors_code() -> None:
    cfg = DrQv2Config()
    assert (cfg.lr, cfg.batch_size, cfg.tau, cfg.n_step, cfg.train_freq) == (1e-4, 256, 0.01, 3, 2)
    assert (cfg.feature_dim, cfg.std_clip, cfg.frame_stack, cfg.learning_starts) == (
        50,
        0.3,
        3,
        2000,
    )
    agent = DrQv2(_env(), seed=0, num_threads=1)
    policy = agent.policy
    assert isinstance(policy, DrQv2ActorCritic) and isinstance(policy.encoder, DrQCNN)
    assert policy.hidden_sizes == [1024, 1024] and policy.num_critics == 2
    trunk = policy.actor[0]
    assert [type(m).__name__ for m in trunk] == ["Linear", "LayerNorm", "Tanh"]
    assert [type(m).__name__ for m in policy.critic.trunk] == ["Linear", "LayerNorm", "Tanh"]
    assert isinstance(agent.augmentation, RandomShift) and agent.augmentation.pad == 4
    storage = agent.storage
    assert isinstance(storage, ReplayStorage) and storage.n_step == 3
    assert isinstance(storage.store, PixelStore) and storage.store.s == 3
    assert policy.std == pytest.approx(0.1)  # acting std outside training: the schedule's end


def test_spaces_are_checked_with_clear_errors() -> None:
    vector = make_vec_env("Pendulum-v1", num_envs=1, seed=0)
    with pytest.raises(TypeError, match="needs uint8 image observations"):
        DrQv2(vector)
    discrete = make_vec_env("rlkit/PixelReach-v0", num_envs=1, seed=0)
    with pytest.raises(TypeError, match="action space"):
        DrQv2(discrete)
    with pytest.raises(ValueError, match="frame_stack=2 does not divide the 9 channels"):
        DrQv2(_env(), frame_stack=2)
    unbounded = make_vec_env(_UnboundedPointMass, num_envs=1)
    with pytest.raises(ValueError, match="finite bounds"):
        DrQv2(unbounded)
    with pytest.raises(ValueError, match="std_clip"):
        DrQv2(_env(), std_clip=0.0)
    with pytest.raises(ValueError, match=r"std_schedule=.*unknown schedule"):
        DrQv2(_env(), std_schedule="cosine(1,0)")


def _filled(agent: DrQv2, steps: int = 40) -> DrQv2:
    agent.collect(steps)
    return agent


def _batch(agent: DrQv2) -> Any:
    batch = agent.storage.sample(agent.config.batch_size, agent._generator)
    return agent.prepare_batch(batch)[0]


def _flat(modules: list[torch.nn.Module]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).clone() for m in modules for p in m.parameters()])


def test_encoder_learns_only_from_the_critic_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = _filled(_agent())
    policy = agent.policy
    critic_flat = agent.critic_optimizer.flat
    assert critic_flat.grad is not None
    critic_flat.grad.zero_()
    original = agent.clip_and_step
    monkeypatch.setattr(
        agent,
        "clip_and_step",
        lambda loss, opt=None: None if opt is agent.critic_optimizer else original(loss, opt),
    )
    enc_before, actor_before = _flat([policy.encoder]), _flat([policy.actor])
    agent.update(_batch(agent))
    encoder_grads = torch.cat([p.grad.reshape(-1) for p in policy.encoder.parameters()])
    assert torch.count_nonzero(encoder_grads) == 0  # the actor loss never reaches the encoder
    assert torch.equal(_flat([policy.encoder]), enc_before)
    assert not torch.equal(_flat([policy.actor]), actor_before)


def test_critic_step_trains_encoder_and_critics_not_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = _filled(_agent())
    policy = agent.policy
    original = agent.clip_and_step
    monkeypatch.setattr(
        agent,
        "clip_and_step",
        lambda loss, opt=None: None if opt is agent.actor_optimizer else original(loss, opt),
    )
    before = {k: _flat([m]) for k, m in [("enc", policy.encoder), ("critic", policy.critic)]}
    actor_before = _flat([policy.actor])
    metrics = agent.update(_batch(agent))
    assert not torch.equal(_flat([policy.encoder]), before["enc"])
    assert not torch.equal(_flat([policy.critic]), before["critic"])
    assert torch.equal(_flat([policy.actor]), actor_before)
    assert set(metrics) >= {"loss/critic", "loss/actor", "train/target_q"}


def test_critic_target_is_a_soft_copy_of_the_critic_trunk_included() -> None:
    agent = _filled(_agent(tau=0.25))
    target = agent.critic_target.net
    assert torch.equal(_flat([target]), _flat([agent.policy.critic]))  # starts equal
    old_target = _flat([target])
    agent.train_step()
    new_critic = _flat([agent.policy.critic])
    expected = 0.75 * old_target + 0.25 * new_critic
    torch.testing.assert_close(_flat([target]), expected)
    assert not torch.equal(_flat([target]), new_critic)
    assert all(not p.requires_grad for p in target.parameters())


def test_exploration_std_follows_the_explicit_schedule() -> None:
    agent = _agent(std_schedule="linear(1.0,0.1,200)")
    assert agent.iteration_metrics()["train/std"] == pytest.approx(1.0)
    agent.global_step = 100
    assert agent.iteration_metrics()["train/std"] == pytest.approx(0.55)
    agent.global_step = 10_000
    assert agent.iteration_metrics()["train/std"] == pytest.approx(0.1)
    # with a vanishing std, exploring is acting deterministically
    quiet = _agent(std_schedule="0.000001")
    obs = quiet._to_tensor(quiet._current_obs())
    with torch.no_grad():
        explored = quiet.explore(obs)
        greedy, _ = quiet.policy.act(obs, deterministic=True)
    np.testing.assert_allclose(explored, greedy.numpy(), atol=1e-4)
    # and the noise is really there with the schedule's std
    loud = _agent(std_schedule="0.5")
    obs = loud._to_tensor(loud._current_obs())
    with torch.no_grad():
        samples = np.stack([loud.explore(obs)[0] for _ in range(400)])
        mean = loud.policy.action_distribution(loud.policy.features(obs)).mean[0].numpy()
    inside = np.abs(mean) < 0.5
    if inside.any():  # far from the bounds the clamp does not matter
        assert np.std(samples[:, inside], axis=0) == pytest.approx(0.5, rel=0.2)


def test_policy_maps_normalised_actions_to_any_finite_box() -> None:
    space = gym.spaces.Box(0, 255, (3, 16, 16), np.uint8)
    action_space = gym.spaces.Box(
        np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32), dtype=np.float32
    )
    policy = DrQv2ActorCritic(space, action_space, hidden_sizes=[16], feature_dim=4)
    obs = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    for deterministic in (True, False):
        actions, _ = policy.act(obs, deterministic=deterministic)
        assert actions.shape == (5, 2)
        assert (actions[:, 0] >= -2).all() and (actions[:, 0] <= 2).all()
        assert (actions[:, 1] >= 0).all() and (actions[:, 1] <= 10).all()
    env_actions = torch.tensor([[-2.0, 0.0], [2.0, 10.0], [0.0, 5.0]])
    normalised = policy.normalize_actions(env_actions)
    torch.testing.assert_close(normalised, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))
    torch.testing.assert_close(policy.to_env(normalised), env_actions)
    q = policy.q_values(policy.features(obs), torch.zeros(5, 2))
    assert q.shape == (2, 5)


def test_prioritized_replay_receives_td_errors() -> None:
    agent = _filled(_agent(prioritized_replay=True))
    sampler = agent.storage.sampler
    assert sampler.max_priority == 1.0
    for _ in range(3):
        agent.train_step()
    assert sampler.max_priority != 1.0


def test_learns_from_random_warmup_and_checkpoint_round_trip(tmp_path: Path) -> None:
    agent = _agent(save_replay=True)
    agent.train(60, progress_bar=False)
    assert agent.num_updates == (60 - 16) // 2 + 1  # every 2nd step from learning_starts on
    path = agent.save(tmp_path / "drqv2")
    loaded = DrQv2.load(path, env=_env())
    assert loaded.global_step == agent.global_step and loaded.num_updates == agent.num_updates
    assert len(loaded.storage) == len(agent.storage)
    assert isinstance(loaded.storage.store, PixelStore)
    obs = np.stack([PixelPointMass(size=16).reset(seed=s)[0] for s in range(4)])
    np.testing.assert_array_equal(
        loaded.act(obs, deterministic=True), agent.act(obs, deterministic=True)
    )
    torch.testing.assert_close(_flat([loaded.critic_target]), _flat([agent.critic_target]))
    result = loaded.evaluate(episodes=2)
    assert result["length_mean"] == 10.0
