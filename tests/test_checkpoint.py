"""Checkpoint round trips, resume, atomic writes and clear errors for bad checkpoints."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from safetensors import safe_open

from rlkit.agents import A2C, PPO
from rlkit.checkpoint import CheckpointError
from rlkit.encoders import ENCODERS, Encoder
from rlkit.envs import make_vec_env
from rlkit.policies import ActorCritic
from rlkit.prototypes import Agent, OnPolicyAgent, load_agent

TINY = {"num_steps": 16, "batch_size": 16, "num_epochs": 2}


class DictObsEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Dict observation (two vector keys), continuous action; 20-step episodes."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict(
            {
                "position": spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32),
                "velocity": spaces.Box(-5.0, 5.0, shape=(2,), dtype=np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.t = 0

    def _obs(self) -> dict[str, np.ndarray]:
        return {
            "position": self.np_random.uniform(-1, 1, 3).astype(np.float32),
            "velocity": self.np_random.uniform(-5, 5, 2).astype(np.float32),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self._obs(), float(-np.square(action).sum()), False, self.t >= 20, {}


def _make_env(kind: str, seed: int = 0, num_envs: int = 2) -> gym.vector.VectorEnv:
    if kind == "dict":
        return make_vec_env(DictObsEnv, num_envs=num_envs, seed=seed)
    return make_vec_env(kind, num_envs=num_envs, seed=seed)


def _obs_batch(env: gym.vector.VectorEnv, n: int = 16, seed: int = 123) -> Any:
    space = env.single_observation_space
    space.seed(seed)
    samples = [space.sample() for _ in range(n)]
    if isinstance(space, spaces.Dict):
        return {k: np.stack([s[k] for s in samples]) for k in space.spaces}
    # keep unbounded dims (CartPole velocities) in a sensible range
    return np.clip(np.stack(samples), -3, 3).astype(space.dtype)


def _params(agent: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in agent.policy.state_dict().items()}


def _assert_same_params(a: Any, b: Any) -> None:
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], rtol=0, atol=0, msg=k)


def _assert_same_optimizer(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["state"].keys() == sb["state"].keys()
    assert len(sa["state"]) > 0
    for idx in sa["state"]:
        assert sa["state"][idx].keys() == sb["state"][idx].keys()
        for key, value in sa["state"][idx].items():
            other = sb["state"][idx][key]
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(value, other, rtol=0, atol=0, msg=f"{idx}.{key}")
            else:
                assert value == other
    for ga, gb in zip(sa["param_groups"], sb["param_groups"], strict=True):
        assert ga == gb


@pytest.fixture(scope="module")
def ppo_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A small trained CartPole PPO checkpoint (read-only for tests) and its parameters."""
    env = _make_env("CartPole-v1")
    agent = PPO(env, seed=0, **TINY).train(64, progress_bar=False)
    path = agent.save(tmp_path_factory.mktemp("ppo") / "ckpt")
    params = _params(agent)
    env.close()
    return path, params


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(
    ("kind", "agent_cls"),
    [
        ("Pendulum-v1", PPO),
        ("CartPole-v1", PPO),
        ("dict", PPO),
        ("CartPole-v1", A2C),
        ("Pendulum-v1", A2C),
    ],
)
def test_round_trip_identical_actions_and_params(
    tmp_path: Path, kind: str, agent_cls: type
) -> None:
    env = _make_env(kind)
    agent = agent_cls(env, seed=0, **TINY).train(64, progress_bar=False)
    path = agent.save(tmp_path / "ckpt")
    loaded = agent_cls.load(path, env=_make_env(kind, seed=1))
    assert type(loaded) is agent_cls
    _assert_same_params(agent, loaded)
    obs = _obs_batch(env)
    a1 = agent.act(obs, deterministic=True)
    a2 = loaded.act(obs, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    assert a1.shape[0] == 16
    # the loaded agent got the training hyperparameters back
    assert loaded.config == agent.config
    _assert_same_optimizer(agent.optimizer, loaded.optimizer)
    env.close()


def test_loaded_weights_override_seeded_init(tmp_path: Path) -> None:
    """Guard: a freshly built agent with another seed really differs (so equality is earned)."""
    env = _make_env("Pendulum-v1")
    a = PPO(env, seed=0, **TINY)
    b = PPO(_make_env("Pendulum-v1"), seed=1, **TINY)
    obs = _obs_batch(env)
    assert not np.array_equal(a.act(obs, deterministic=True), b.act(obs, deterministic=True))
    path = a.save(tmp_path / "a")
    c = PPO.load(path, env=_make_env("Pendulum-v1"), seed=1)
    np.testing.assert_array_equal(a.act(obs, deterministic=True), c.act(obs, deterministic=True))
    assert c.config.seed == 1  # keyword overrides replace hyperparameters


def test_load_without_env_uses_recorded_env_id(ppo_ckpt: tuple[Path, Any]) -> None:
    path, params = ppo_ckpt
    agent = PPO.load(path)
    assert agent.env.num_envs == 2
    assert agent.env.single_observation_space.shape == (4,)
    for k, v in agent.policy.state_dict().items():
        torch.testing.assert_close(v, params[k], rtol=0, atol=0)
    agent.env.close()


def test_load_callable_env_needs_env_argument(tmp_path: Path) -> None:
    agent = PPO(_make_env("dict"), seed=0, **TINY)
    path = agent.save(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match=r"callable; pass env="):
        PPO.load(path)


def test_obs_normalisation_state_survives(tmp_path: Path) -> None:
    env = _make_env("Pendulum-v1")
    agent = PPO(env, seed=0, normalize_obs=True, normalize_reward=True, **TINY)
    agent.train(64, progress_bar=False)
    assert agent.obs_normalizer is not None
    state = {k: v.clone() for k, v in agent.obs_normalizer.state_dict().items()}
    assert any("count" in k for k in state)
    assert any(float(v.abs().sum()) > 0 for k, v in state.items() if "mean" in k)
    path = agent.save(tmp_path / "ckpt")
    loaded = PPO.load(path, env=_make_env("Pendulum-v1"))
    assert loaded.obs_normalizer is not None and loaded.reward_normalizer is not None
    loaded_state = loaded.obs_normalizer.state_dict()
    assert loaded_state.keys() == state.keys()
    for k in state:
        torch.testing.assert_close(loaded_state[k], state[k], rtol=0, atol=0)
    assert agent.reward_normalizer is not None
    for k, v in agent.reward_normalizer.state_dict().items():
        torch.testing.assert_close(loaded.reward_normalizer.state_dict()[k], v, rtol=0, atol=0)
    obs = torch.as_tensor(_obs_batch(env))
    torch.testing.assert_close(loaded.preprocess(obs), agent.preprocess(obs), rtol=0, atol=0)
    # normalisation is on the acting path: identical deterministic actions
    np.testing.assert_array_equal(
        agent.act(obs.numpy(), deterministic=True), loaded.act(obs.numpy(), deterministic=True)
    )
    # and a fresh normaliser would act differently (so the comparison above is meaningful)
    fresh = PPO.load(path, env=_make_env("Pendulum-v1"))
    assert fresh.obs_normalizer is not None
    fresh.obs_normalizer.load_state_dict(
        PPO(_make_env("Pendulum-v1"), normalize_obs=True).obs_normalizer.state_dict()  # type: ignore[union-attr]
    )
    assert not torch.allclose(fresh.preprocess(obs), agent.preprocess(obs))


# --------------------------------------------------------------------------- resume
def test_resume_restores_counters_and_optimizer(tmp_path: Path) -> None:
    env = _make_env("CartPole-v1")
    agent = PPO(env, seed=0, **TINY).train(64, progress_bar=False)
    assert (agent.global_step, agent.num_updates) == (64, 2)
    path = agent.save(tmp_path / "ckpt")
    resumed = PPO.load(path, env=_make_env("CartPole-v1", seed=1))
    assert (resumed.global_step, resumed.num_updates) == (64, 2)
    opt_a, opt_b = agent.optimizer.state_dict(), resumed.optimizer.state_dict()
    for idx, entry in opt_a["state"].items():
        torch.testing.assert_close(opt_b["state"][idx]["exp_avg"], entry["exp_avg"], rtol=0, atol=0)
        torch.testing.assert_close(
            opt_b["state"][idx]["exp_avg_sq"], entry["exp_avg_sq"], rtol=0, atol=0
        )
        assert float(opt_b["state"][idx]["step"]) == float(entry["step"]) > 0
    _assert_same_optimizer(agent.optimizer, resumed.optimizer)
    # the restored optimizer drives the restored parameters (views into one flat buffer)
    (flat,) = [p for g in resumed.optimizer.param_groups for p in g["params"]]
    assert flat is resumed.flat_params
    start, size = flat.data_ptr(), flat.numel() * flat.element_size()
    assert all(start <= p.data_ptr() < start + size for p in resumed.policy.parameters())
    before = _params(resumed)
    resumed.train(128, progress_bar=False)
    assert (resumed.global_step, resumed.num_updates) == (128, 4)
    after = _params(resumed)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # continuing to a target already reached does nothing
    resumed.train(96, progress_bar=False)
    assert resumed.global_step == 128


def test_periodic_checkpoints_during_train(tmp_path: Path) -> None:
    agent = PPO(_make_env("CartPole-v1"), seed=0, **TINY)
    agent.train(
        96, run_dir=tmp_path / "run", progress_bar=False, checkpoint_every=32, tensorboard=False
    )
    cfg = json.loads((tmp_path / "run" / "checkpoint" / "config.json").read_text())
    assert cfg["counters"]["global_step"] == 96
    # loading a run directory finds its checkpoint/
    loaded = load_agent(tmp_path / "run", env=_make_env("CartPole-v1"))
    assert loaded.global_step == 96


# --------------------------------------------------------------------------- file handling
def test_save_refuses_existing_dir_and_keeps_old(tmp_path: Path) -> None:
    env = _make_env("CartPole-v1")
    agent = PPO(env, seed=0, **TINY).train(32, progress_bar=False)
    path = agent.save(tmp_path / "ckpt")
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    old_params = _params(agent)
    agent.train(64, progress_bar=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        agent.save(path)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    # no temporary directories left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    # still loads as the old agent
    old = PPO.load(path, env=_make_env("CartPole-v1"))
    assert old.global_step == 32
    for k, v in old_params.items():
        torch.testing.assert_close(old.policy.state_dict()[k], v, rtol=0, atol=0)

    agent.save(path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    new = PPO.load(path, env=_make_env("CartPole-v1"))
    assert new.global_step == 64
    _assert_same_params(agent, new)
    assert any(not torch.equal(old_params[k], v) for k, v in _params(new).items())


def test_checkpoint_holds_no_pickle(ppo_ckpt: tuple[Path, Any]) -> None:
    path, _ = ppo_ckpt
    names = sorted(p.name for p in path.iterdir())
    assert names == ["config.json", "model.safetensors", "training_state.safetensors"]
    assert all(p.is_file() for p in path.iterdir())
    config = json.loads((path / "config.json").read_text())
    assert config["agent"] == "ppo"
    assert config["counters"] == {"global_step": 64, "num_updates": 2}
    for name in names[1:]:
        raw = (path / name).read_bytes()
        assert not raw.startswith(b"\x80")  # pickle protocol marker
        assert not raw.startswith(b"PK")  # torch.save zip archive
        with safe_open(str(path / name), framework="pt") as f:
            assert len(list(f.keys())) > 0


def test_truncated_model_file(tmp_path: Path, ppo_ckpt: tuple[Path, Any]) -> None:
    path = Path(shutil.copytree(ppo_ckpt[0], tmp_path / "ckpt"))
    model = path / "model.safetensors"
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors is corrupt or truncated"):
        PPO.load(path, env=_make_env("CartPole-v1"))


def test_garbage_model_file(tmp_path: Path, ppo_ckpt: tuple[Path, Any]) -> None:
    path = Path(shutil.copytree(ppo_ckpt[0], tmp_path / "ckpt"))
    (path / "model.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        PPO.load(path, env=_make_env("CartPole-v1"))


@pytest.mark.parametrize("missing", ["model.safetensors", "training_state.safetensors"])
def test_missing_tensor_file(tmp_path: Path, ppo_ckpt: tuple[Path, Any], missing: str) -> None:
    path = Path(shutil.copytree(ppo_ckpt[0], tmp_path / "ckpt"))
    (path / missing).unlink()
    with pytest.raises(CheckpointError, match=f"missing {missing}"):
        PPO.load(path, env=_make_env("CartPole-v1"))


def test_missing_directory_and_config(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint directory"):
        PPO.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"config\.json not found"):
        load_agent(tmp_path / "empty")


def test_corrupt_config(tmp_path: Path, ppo_ckpt: tuple[Path, Any]) -> None:
    path = Path(shutil.copytree(ppo_ckpt[0], tmp_path / "ckpt"))
    (path / "config.json").write_text('{"format": 1, "agent": ')
    with pytest.raises(CheckpointError, match="corrupt"):
        PPO.load(path, env=_make_env("CartPole-v1"))


def test_space_mismatch_names_both_spaces(ppo_ckpt: tuple[Path, Any]) -> None:
    env = make_vec_env("Acrobot-v1", num_envs=2, seed=0)
    with pytest.raises(CheckpointError) as info:
        PPO.load(ppo_ckpt[0], env=env)
    message = str(info.value)
    assert "observation space" in message
    assert repr(env.single_observation_space) in message
    assert repr(gym.make("CartPole-v1").observation_space) in message  # the saved space
    env.close()


def test_action_space_mismatch(ppo_ckpt: tuple[Path, Any]) -> None:
    # CartPole's obs with a 3-action space: same observation space, different action space
    cartpole3 = make_vec_env(lambda: _ThreeActions(gym.make("CartPole-v1")), num_envs=2)
    with pytest.raises(CheckpointError, match=r"action space Discrete\(2\).*Discrete\(3\)"):
        PPO.load(ppo_ckpt[0], env=cartpole3)
    cartpole3.close()


class _ThreeActions(gym.ActionWrapper[Any, Any, Any]):
    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.action_space = spaces.Discrete(3)

    def action(self, action: Any) -> Any:
        return min(int(action), 1)


def test_wrong_agent_class(ppo_ckpt: tuple[Path, Any]) -> None:
    with pytest.raises(CheckpointError, match=r"'ppo' agent, not 'a2c'.*PPO\.load"):
        A2C.load(ppo_ckpt[0], env=_make_env("CartPole-v1"))


def test_load_agent_dispatches(tmp_path: Path, ppo_ckpt: tuple[Path, Any]) -> None:
    ppo = load_agent(ppo_ckpt[0], env=_make_env("CartPole-v1"))
    assert type(ppo) is PPO
    for k, v in ppo.policy.state_dict().items():
        torch.testing.assert_close(v, ppo_ckpt[1][k], rtol=0, atol=0)
    a2c_path = A2C(_make_env("CartPole-v1"), seed=0).save(tmp_path / "a2c")
    assert type(load_agent(a2c_path, env=_make_env("CartPole-v1"))) is A2C
    assert type(Agent.load(a2c_path, env=_make_env("CartPole-v1"))) is A2C
    assert type(OnPolicyAgent.load(ppo_ckpt[0], env=_make_env("CartPole-v1"))) is PPO
    # a run directory resolves to its final/ checkpoint
    shutil.copytree(ppo_ckpt[0], tmp_path / "run" / "final")
    assert type(load_agent(tmp_path / "run", env=_make_env("CartPole-v1"))) is PPO


def test_a2c_rmsprop_state_round_trip(tmp_path: Path) -> None:
    agent = A2C(_make_env("CartPole-v1"), seed=0).train(40, progress_bar=False)
    assert isinstance(agent.optimizer, torch.optim.RMSprop)
    path = agent.save(tmp_path / "a2c")
    loaded = A2C.load(path, env=_make_env("CartPole-v1"))
    assert isinstance(loaded.optimizer, torch.optim.RMSprop)
    _assert_same_optimizer(agent.optimizer, loaded.optimizer)
    for idx, entry in agent.optimizer.state_dict()["state"].items():
        assert float(entry["square_avg"].abs().sum()) > 0
        torch.testing.assert_close(
            loaded.optimizer.state_dict()["state"][idx]["square_avg"], entry["square_avg"]
        )
    assert (loaded.global_step, loaded.num_updates) == (40, 4)


# --------------------------------------------------------------------------- custom encoders
class TanhEncoder(Encoder):
    """A user-defined encoder that is not registered."""

    def __init__(self, observation_space: spaces.Space[Any], feature_dim: int = 8) -> None:
        super().__init__(observation_space, feature_dim)
        self.linear = torch.nn.Linear(int(np.prod(observation_space.shape)), feature_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.tanh(self.linear(obs.flatten(1).float()))


class RegisteredTanhEncoder(TanhEncoder):
    pass


ENCODERS.register("test_checkpoint_tanh")(RegisteredTanhEncoder)


def _custom_encoder_ckpt(tmp_path: Path, enc_cls: type) -> tuple[Any, Path]:
    env = _make_env("CartPole-v1")
    agent = PPO(env, seed=0, encoder=enc_cls(env.single_observation_space, 8), **TINY)
    agent.train(32, progress_bar=False)
    return agent, agent.save(tmp_path / "ckpt")


def test_unregistered_encoder_saves_and_load_error_is_clear(tmp_path: Path) -> None:
    _, path = _custom_encoder_ckpt(tmp_path, TanhEncoder)
    config = json.loads((path / "config.json").read_text())
    encoder_spec = config["primitives"]["policy"]["encoder"]
    assert encoder_spec["id"] is None
    assert encoder_spec["class"].endswith("TanhEncoder")
    assert encoder_spec["feature_dim"] == 8
    with pytest.raises((CheckpointError, ValueError), match=r"TanhEncoder is not registered"):
        PPO.load(path, env=_make_env("CartPole-v1"))


def test_unregistered_encoder_load_with_policy_object(tmp_path: Path) -> None:
    """``Agent.load`` documents that keyword overrides replace primitives: passing the policy
    object (built with the custom encoder) must let an unregistered encoder's checkpoint load."""
    agent, path = _custom_encoder_ckpt(tmp_path, TanhEncoder)
    env = _make_env("CartPole-v1")
    policy = ActorCritic(
        env.single_observation_space,
        env.single_action_space,
        encoder=TanhEncoder(env.single_observation_space, 8),
    )
    loaded = PPO.load(path, env=env, policy=policy)
    assert loaded.policy is policy
    _assert_same_params(agent, loaded)
    obs = _obs_batch(env)
    np.testing.assert_array_equal(
        agent.act(obs, deterministic=True), loaded.act(obs, deterministic=True)
    )


def test_registered_custom_encoder_round_trip(tmp_path: Path) -> None:
    agent, path = _custom_encoder_ckpt(tmp_path, RegisteredTanhEncoder)
    loaded = PPO.load(path, env=_make_env("CartPole-v1"))
    assert type(loaded.policy.encoder) is RegisteredTanhEncoder
    assert loaded.policy.encoder.feature_dim == 8
    _assert_same_params(agent, loaded)


def test_lr_override_on_load_reaches_the_optimizer(ppo_ckpt: tuple[Path, Any]) -> None:
    path, _ = ppo_ckpt
    agent = PPO.load(path, env=_make_env("CartPole-v1"), lr=5e-4)
    assert agent.config.lr == 5e-4
    assert all(g["lr"] == 5e-4 for g in agent.optimizer.param_groups)


def test_checkpoint_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = PPO(_make_env("CartPole-v1"), seed=0, **TINY).save(tmp_path / "ckpt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in path.iterdir())
