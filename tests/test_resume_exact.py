"""Bit-identical resume on CPU: training N + M steps at once equals training N, saving, loading
and training to N + M, for every agent family (real envs, real checkpoints)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from safetensors.torch import load_file, save_file

import rlkit.agents  # noqa: F401  (registers the agents load_agent looks up)
from rlkit.agents import A2C, APPO, DQN, IMPALA, PPG, PPO, QRDQN, R2D2, SAC, TD3, RecurrentSAC
from rlkit.envs import make_vec_env
from rlkit.prototypes import Agent, load_agent
from rlkit.rewards import EpisodicIntrinsicReward

SMALL_OFF = {
    "hidden_sizes": [16, 16],
    "buffer_size": 2000,
    "batch_size": 32,
    "save_replay": True,
    "log_interval": 250,
}

#: family -> (class, env id, N, M, hyperparameters); N is chosen mid-episode, and for the
#: off-policy agents mid-way through a train_freq round and past learning_starts.
CASES: dict[str, tuple[type[Agent], str, int, int, dict[str, Any]]] = {
    "ppo": (PPO, "CartPole-v1", 256, 256, {"num_steps": 32, "batch_size": 32, "num_epochs": 2}),
    "a2c": (A2C, "CartPole-v1", 256, 256, {"num_steps": 8}),
    # the recurrent state entering the next step is carried across the checkpoint
    "ppo_lstm": (
        PPO,
        "CartPole-v1",
        256,
        256,
        {
            "num_steps": 32,
            "batch_size": 64,
            "num_epochs": 2,
            "seq_len": 8,
            "policy": "lstm_actor_critic",
            "anneal_clip_range": True,
        },
    ),
    # resumed with two of three rollouts stored for the next auxiliary phase
    "ppg": (PPG, "CartPole-v1", 256, 256, {"num_steps": 16, "n_pi": 3, "batch_size": 16}),
    "dqn": (
        DQN,
        "CartPole-v1",
        502,
        500,
        {**SMALL_OFF, "learning_starts": 200, "train_freq": 4, "target_update_interval": 50},
    ),
    "qrdqn": (
        QRDQN,
        "CartPole-v1",
        502,
        500,
        {**SMALL_OFF, "learning_starts": 200, "train_freq": 4, "n_quantiles": 5},
    ),
    # the acting memory, the episode-start flags and the sequence replay (states, starts,
    # window priorities) are carried across the checkpoint
    "r2d2": (
        R2D2,
        "CartPole-v1",
        502,
        500,
        {
            **SMALL_OFF,
            "batch_size": 8,
            "learning_starts": 200,
            "train_freq": 4,
            "target_update_interval": 50,
            "burn_in": 2,
            "seq_len": 6,
            "hidden_size": 8,
        },
    ),
    "sac": (SAC, "Pendulum-v1", 300, 300, {**SMALL_OFF, "learning_starts": 100}),
    # the acting gSDE weights drawn mid-round (sde_sample_freq) are carried across
    "sac_gsde": (
        SAC,
        "Pendulum-v1",
        300,
        300,
        {
            **SMALL_OFF,
            "learning_starts": 100,
            "use_sde": True,
            "train_freq": 8,
            "sde_sample_freq": 4,
        },
    ),
    "td3": (TD3, "Pendulum-v1", 300, 300, {**SMALL_OFF, "learning_starts": 100}),
    "recurrent_sac": (
        RecurrentSAC,
        "rlkit/PendulumNoVel-v1",
        300,
        300,
        {
            **SMALL_OFF,
            "batch_size": 4,
            "learning_starts": 100,
            "burn_in": 2,
            "seq_len": 4,
            "hidden_size": 8,
            "train_freq": 4,
        },
    ),
    "impala": (IMPALA, "CartPole-v1", 256, 256, {"num_actors": 2, "num_steps": 16}),
    "appo": (APPO, "CartPole-v1", 256, 256, {"num_actors": 2, "num_steps": 16}),
    # actors' recurrent states (and reset flags) are part of their positions
    "impala_gru": (
        IMPALA,
        "CartPole-v1",
        256,
        256,
        {"num_actors": 2, "num_steps": 16, "policy": {"id": "gru_actor_critic", "hidden_size": 8}},
    ),
}


def differences(a: Agent, b: Agent) -> list[str]:
    """Every weight, buffer and optimizer-state tensor that is not exactly equal."""
    out = []
    assert a.modules().keys() == b.modules().keys()
    for name, module in a.modules().items():
        other = b.modules()[name].state_dict()
        for key, value in module.state_dict().items():
            if not torch.equal(value, other[key]):
                gap = (value.double() - other[key].double()).abs().max().item()
                out.append(f"{name}.{key} (max |diff| {gap:.3g})")
    assert a.optimizers().keys() == b.optimizers().keys()
    for name, opt in a.optimizers().items():
        mine, theirs = opt.state_dict(), b.optimizers()[name].state_dict()
        assert mine["state"].keys() == theirs["state"].keys()
        for index, state in mine["state"].items():
            for key, value in state.items():
                other = theirs["state"][index][key]
                if isinstance(value, torch.Tensor):
                    if not torch.equal(value, other):
                        out.append(f"optimizer {name}[{index}].{key}")
                elif value != other:
                    out.append(f"optimizer {name}[{index}].{key}")
        if mine["param_groups"] != theirs["param_groups"]:
            out.append(f"optimizer {name} param_groups")
    return out


def assert_identical(a: Agent, b: Agent) -> None:
    assert (a.global_step, a.num_updates) == (b.global_step, b.num_updates)
    assert differences(a, b) == []


def split_run(
    make: Callable[[], VectorEnv],
    cls: type[Agent],
    n: int,
    m: int,
    tmp_path: Path,
    reload_env: bool,
    **config: Any,
) -> tuple[Agent, Agent]:
    """(trained N + M at once, trained N then saved, loaded and trained to N + M)."""
    whole = cls(make(), seed=1, num_threads=1, **config).train(n + m, progress_bar=False)
    first = cls(make(), seed=1, num_threads=1, **config).train(n, progress_bar=False)
    first.save(tmp_path / "ckpt")
    first.env.close()
    resumed = load_agent(tmp_path / "ckpt", env=make() if reload_env else None)
    assert resumed.global_step == first.global_step
    resumed.train(n + m, progress_bar=False)
    return whole, resumed


@pytest.mark.parametrize("family", list(CASES))
def test_resume_is_bit_identical(family: str, tmp_path: Path, caplog: Any) -> None:
    cls, env_id, n, m, config = CASES[family]
    caplog.set_level(logging.WARNING, logger="rlkit")
    whole, resumed = split_run(
        lambda: make_vec_env(env_id, num_envs=2, seed=3), cls, n, m, tmp_path, False, **config
    )
    assert_identical(whole, resumed)
    assert not [r for r in caplog.records if "cannot be put back" in r.getMessage()]
    whole.env.close()
    resumed.env.close()


def test_resume_is_bit_identical_with_subprocess_envs(tmp_path: Path) -> None:
    def make() -> VectorEnv:
        return make_vec_env("CartPole-v1", num_envs=2, seed=3, asynchronous=True)

    cls, _, n, m, config = CASES["dqn"]
    whole, resumed = split_run(make, cls, n, m, tmp_path, True, **config)
    assert_identical(whole, resumed)
    whole.env.close()
    resumed.env.close()


@pytest.mark.parametrize("family", ["impala", "appo"])
def test_distributed_resume_is_bit_identical_with_process_actors(
    family: str, tmp_path: Path, caplog: Any
) -> None:
    """Sync mode, actors in subprocesses: their positions are asked of the subprocesses when
    saving and sent back to the new ones when resuming (N = 2 iterations, mid-episode)."""
    cls, env_id, _, _, config = CASES[family]
    caplog.set_level(logging.WARNING, logger="rlkit")
    whole, resumed = split_run(
        lambda: make_vec_env(env_id, num_envs=2, seed=3),
        cls,
        128,
        128,
        tmp_path,
        False,
        **{**config, "backend": "process", "mode": "sync"},
    )
    assert (tmp_path / "ckpt" / "actors.safetensors").is_file()
    assert_identical(whole, resumed)
    assert list(whole.episodes.returns) == list(resumed.episodes.returns)
    assert not [r for r in caplog.records if "cannot be put back" in r.getMessage()]
    whole.env.close()
    resumed.env.close()


def test_run_stopped_mid_way_resumes_from_its_periodic_checkpoint(tmp_path: Path) -> None:
    """The usual case: ``train(N + M, run_dir, checkpoint_every=N)`` stops at N (here a
    callback; a crash or Ctrl-C alike), and the run resumes from ``run_dir/checkpoint`` to the
    same target, learning-rate annealing included."""
    config = {"num_steps": 32, "batch_size": 32, "num_epochs": 2, "anneal_lr": True}

    def make() -> VectorEnv:
        return make_vec_env("CartPole-v1", num_envs=2, seed=3)

    whole = PPO(make(), seed=1, num_threads=1, **config).train(512, progress_bar=False)
    stopped = PPO(make(), seed=1, num_threads=1, **config)
    stopped.train(
        512,
        run_dir=tmp_path / "run",
        checkpoint_every=192,
        progress_bar=False,
        tensorboard=False,
        callbacks=lambda agent, metrics: agent.global_step >= 192,
    )
    assert stopped.global_step == 192
    resumed = load_agent(tmp_path / "run")
    resumed.train(512, progress_bar=False)
    assert_identical(whole, resumed)


def test_resume_continues_the_episodes_in_progress(tmp_path: Path) -> None:
    """The loaded agent's env is mid-episode where the saved one was (not freshly reset), and
    the recent-episode statistics carry over."""
    agent = PPO(make_vec_env("CartPole-v1", num_envs=2, seed=3), seed=1, num_steps=40)
    agent.train(80, progress_bar=False)
    agent.save(tmp_path / "ckpt")
    loaded = load_agent(tmp_path / "ckpt")
    assert isinstance(loaded, PPO)
    assert loaded._obs is not None and agent._obs is not None
    assert torch.equal(loaded._obs, agent._obs)
    assert torch.equal(loaded._episode_starts, agent._episode_starts)
    assert list(loaded.episodes.returns) == list(agent.episodes.returns)
    assert loaded.episodes.episodes == agent.episodes.episodes
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    steps = [e["steps"] for e in config["resume"]["env"]["envs"]]
    assert any(s > 0 for s in steps)  # mid-episode: actions were replayed


def same_step_env(n: int = 2) -> VectorEnv:
    """A vector env not made by make_vec_env: no action recorders."""
    fns = [lambda: gym.make("CartPole-v1") for _ in range(n)]
    return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)


def fallback_warnings(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if "cannot be put back" in r.getMessage()]


def test_env_without_recorder_falls_back_to_a_reset_with_one_warning(
    tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="rlkit")
    agent = PPO(same_step_env(), seed=1, num_steps=16, batch_size=32, num_epochs=1)
    agent.train(64, progress_bar=False)
    agent.save(tmp_path / "foreign")
    loaded = PPO.load(tmp_path / "foreign", env=same_step_env())
    (message,) = fallback_warnings(caplog)
    assert "has no action recorder" in message and "new episodes" in message
    assert loaded._obs is None  # the loop resets the env
    assert torch.equal(loaded._episode_starts, torch.ones(2))
    loaded.train(128, progress_bar=False)
    assert loaded.global_step == 128

    # a checkpoint taken with recorders, loaded into an env without them
    caplog.clear()
    recorded = PPO(make_vec_env("CartPole-v1", num_envs=2, seed=3), seed=1, num_steps=16)
    recorded.train(64, progress_bar=False)
    recorded.save(tmp_path / "recorded")
    PPO.load(tmp_path / "recorded", env=same_step_env()).train(96, progress_bar=False)
    (message,) = fallback_warnings(caplog)
    assert "has no action recorder" in message


class UnseededResetEnv(gym.Env[np.ndarray, np.int64]):
    """Not deterministic given its RNG: each reset draws from fresh OS entropy."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        self.x = np.random.default_rng().uniform(-1, 1, 2).astype(np.float32)
        return self.x.copy(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.t += 1
        self.x = np.clip(self.x + (0.1 if action else -0.1), -1, 1).astype(np.float32)
        return self.x.copy(), float(self.x[0]), False, self.t >= 7, {}


def test_env_that_is_not_deterministic_is_detected(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.WARNING, logger="rlkit")
    agent = PPO(make_vec_env(UnseededResetEnv, num_envs=2, seed=0), seed=1, num_steps=10)
    agent.train(40, progress_bar=False)
    agent.save(tmp_path / "ckpt")
    loaded = PPO.load(tmp_path / "ckpt", env=make_vec_env(UnseededResetEnv, num_envs=2))
    (message,) = fallback_warnings(caplog)
    assert "another observation than the recorded one" in message
    assert loaded._obs is None
    loaded.train(80, progress_bar=False)


class NoisyPPO(PPO):
    """A subclass with a generator of its own, registered for checkpoints."""

    def __init__(self, env: VectorEnv, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.jitter = np.random.default_rng(7)
        self.add_generator("jitter", self.jitter)
        self.shuffle = torch.Generator().manual_seed(8)
        self.add_generator("shuffle", self.shuffle)


def test_add_generator_saves_and_restores_a_subclass_generator(tmp_path: Path) -> None:
    agent = NoisyPPO(make_vec_env("CartPole-v1", num_envs=2, seed=3), seed=1)
    agent.jitter.random(5)
    torch.rand(3, generator=agent.shuffle)
    agent.save(tmp_path / "ckpt")
    loaded = NoisyPPO.load(tmp_path / "ckpt")
    assert set(loaded.generators()) == {"generator", "jitter", "shuffle"}
    assert np.array_equal(loaded.jitter.random(4), agent.jitter.random(4))
    assert torch.equal(
        torch.rand(4, generator=loaded.shuffle), torch.rand(4, generator=agent.shuffle)
    )
    with pytest.raises(TypeError, match=r"add_generator: generator must be a torch\.Generator"):
        agent.add_generator("bad", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'numpy' is reserved"):
        agent.add_generator("numpy", np.random.default_rng())
    with pytest.raises(ValueError, match="already registered"):
        agent.add_generator("jitter", np.random.default_rng())


def test_checkpoint_from_before_exact_resume_still_loads(tmp_path: Path) -> None:
    """Older checkpoints: no ``resume`` entry, the agent's generator as ``state.generator``."""
    agent = PPO(make_vec_env("CartPole-v1", num_envs=2, seed=3), seed=1, num_steps=16)
    agent.train(32, progress_bar=False)
    torch.rand(5, generator=agent._generator)
    path = agent.save(tmp_path / "ckpt")
    config = json.loads((path / "config.json").read_text())
    del config["resume"]
    (path / "config.json").write_text(json.dumps(config))
    tensors = load_file(path / "training_state.safetensors")
    old = {k: v for k, v in tensors.items() if k in ("rng.torch",) or k.startswith("optim.")}
    old["state.generator"] = tensors["rng.generator"]
    save_file(old, path / "training_state.safetensors")
    loaded = PPO.load(path)
    assert loaded._obs is None  # the env starts anew, as before
    assert torch.equal(loaded._generator.get_state(), agent._generator.get_state())
    loaded.train(64, progress_bar=False)


#: episodic intrinsic rewards (small), whose per-env memories are in their state_dict; on a
#: short chain whose episodes end inside rollouts, so memories are cleared and carried over.
EPISODIC: dict[str, dict[str, Any]] = {
    "e3b": {"id": "e3b", "embedding_dim": 8, "hidden_dim": 16},
    "ngu": {"id": "ngu", "embedding_dim": 8, "hidden_dim": 16, "rnd_latent_dim": 8},
    "ride": {"id": "ride", "feature_dim": 8, "hidden_dim": 16},
    "combined": {
        "id": "combined",
        "modules": [
            {"id": "rnd", "latent_dim": 8, "hidden_dim": 16},
            {"id": "ngu", "embedding_dim": 8, "hidden_dim": 16, "rnd_latent_dim": 8},
        ],
    },
}


def chain_env() -> VectorEnv:
    return make_vec_env(
        "rlkit/DeepChain-v0", num_envs=2, seed=3, env_kwargs={"length": 6, "max_steps": 13}
    )


def episodic_config(rid: str) -> dict[str, Any]:
    return {"num_steps": 16, "batch_size": 32, "num_epochs": 2, "intrinsic_reward": EPISODIC[rid]}


@pytest.mark.parametrize("rid", list(EPISODIC))
def test_resume_with_episodic_intrinsic_reward_is_bit_identical(
    rid: str, tmp_path: Path, caplog: Any
) -> None:
    """The per-env episodic memories (and the resets announced for them) are checkpointed, so
    the resumed run scores the unfinished episodes against the same memories."""
    caplog.set_level(logging.WARNING, logger="rlkit")
    whole, resumed = split_run(chain_env, PPO, 96, 96, tmp_path, False, **episodic_config(rid))
    assert whole.intrinsic_reward is not None
    memory = [k for k in whole.intrinsic_reward.state_dict() if k.split(".")[-2] == "episodic"]
    assert memory  # the memories are compared too
    saved = load_file(tmp_path / "ckpt" / "model.safetensors")
    assert any("episodic." in k for k in saved)
    assert_identical(whole, resumed)
    assert not fallback_warnings(caplog)
    whole.env.close()
    resumed.env.close()


@pytest.mark.parametrize("rid", ["e3b", "ngu"])
def test_checkpoint_without_episodic_memory_still_loads(rid: str, tmp_path: Path) -> None:
    """A checkpoint written before the memories were saved (no ``episodic.*`` keys) loads,
    with empty memories, and trains on."""
    agent = PPO(chain_env(), seed=1, **episodic_config(rid))
    agent.train(48, progress_bar=False)
    path = agent.save(tmp_path / "ckpt")
    model = load_file(path / "model.safetensors")
    old = {k: v for k, v in model.items() if "episodic." not in k}
    assert len(old) < len(model)
    save_file(old, path / "model.safetensors")
    loaded = PPO.load(path)
    reward = loaded.intrinsic_reward
    assert isinstance(reward, EpisodicIntrinsicReward)
    assert reward.memory_sizes().numel() == 0
    loaded.train(96, progress_bar=False)
    assert loaded.global_step == 96
    assert int(reward.memory_sizes().sum()) > 0


def test_ppg_with_dict_observations_resumes_its_stored_rollouts(tmp_path: Path) -> None:
    """PPG keeps the rollouts of its next auxiliary phase per observation key."""
    space = gym.spaces.Dict(
        {
            "position": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
            "velocity": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
        }
    )

    def make_env() -> gym.Env[Any, Any]:
        return gym.wrappers.TransformObservation(
            gym.make("CartPole-v1"),
            lambda o: {"position": o[[0, 2]], "velocity": o[[1, 3]]},
            space,
        )

    config = {"num_steps": 16, "n_pi": 3, "batch_size": 16}
    whole, resumed = split_run(
        lambda: make_vec_env(make_env, num_envs=2, seed=3), PPG, 256, 256, tmp_path, True, **config
    )
    assert_identical(whole, resumed)
    assert len(resumed._aux_obs) == len(whole._aux_obs) == 1  # one rollout of the next phase
