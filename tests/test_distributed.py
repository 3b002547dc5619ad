"""The distributed prototype without Ray: actors' trajectories, truncation bootstrapping,
sync/async modes and policy lag, local and subprocess backends giving identical runs, fault
tolerance (crashes, kills, hangs, drops), checkpoint resume, intrinsic rewards, primitives,
clean shutdown and knob errors; IMPALA and APPO learn CartPole-v1 with the local backend."""

from __future__ import annotations

import csv
import functools
import logging
import multiprocessing
import os
import signal
import sys
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import SyncVectorEnv

from rlkit.agents import APPO, IMPALA
from rlkit.config.presets import load_preset
from rlkit.distributed import (
    ActorSpec,
    ActorWorker,
    PolicyWeights,
    TrajectoryBatch,
    import_ray,
    ray_missing_message,
    stack_trajectories,
)
from rlkit.encoders import MLP
from rlkit.envs import make_vec_env
from rlkit.policies import ActorCritic
from rlkit.prototypes import DistributedAgent, Evaluate, load_agent
from rlkit.rewards.base import IntrinsicReward, TransitionBatch

#: small runs on the CPU (tests pass CPU tensors to the learner and compare runs bit for bit)
TINY: dict[str, Any] = {"num_actors": 2, "num_steps": 8, "device": "cpu"}


def _env(num_envs: int = 2, seed: int = 0, **kwargs: Any) -> Any:
    return make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed, **kwargs)


def _weights(agent: DistributedAgent) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in agent.policy.state_dict().items()}


def _assert_same_weights(a: DistributedAgent, b: DistributedAgent) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0, msg=key)


# --------------------------------------------------------------------------- trajectories
def _actor(num_steps: int = 24, max_steps: int = 6, seed: int = 3) -> ActorWorker:
    env = _env()
    policy = ActorCritic(env.single_observation_space, env.single_action_space)
    spec = ActorSpec(
        actor_id=0,
        env="CartPole-v1",
        num_envs=2,
        num_steps=num_steps,
        seed=seed,
        sample_seed=1,
        env_kwargs={"max_episode_steps": max_steps},
        policy_module=policy,
    )
    actor = ActorWorker(spec)
    actor.set_weights(PolicyWeights(0, {"policy": policy.state_dict()}))
    return actor


def test_actor_trajectory_replays_exactly() -> None:
    """Observations, rewards, termination/truncation flags and final observations of an unroll
    match a fresh copy of the env stepped with the same actions."""
    actor = _actor()
    first = actor.collect(None, 0)
    second = actor.collect(None, 0)  # unrolls continue where the last one stopped
    replay = make_vec_env("CartPole-v1", 2, env_kwargs={"max_episode_steps": 6})
    obs, _ = replay.reset(seed=3)
    for traj in (first, second):
        d = traj.data
        assert d.obs.shape == (24, 2, 4) and d.actions.shape == (24, 2)
        assert d.versions.tolist() == [0, 0] and traj.version == 0
        finals: dict[tuple[int, int], np.ndarray] = {}
        for t in range(24):
            np.testing.assert_allclose(d.obs[t].numpy(), obs)
            obs, reward, term, trunc, info = replay.step(d.actions[t].numpy())
            np.testing.assert_allclose(d.rewards[t].numpy(), reward)
            assert d.terminated[t].tolist() == term.tolist()
            assert d.truncated[t].tolist() == (trunc & ~term).tolist()
            for i in np.flatnonzero(term | trunc):
                finals[(t, int(i))] = info["final_obs"][i]
        np.testing.assert_allclose(d.bootstrap_obs.numpy(), obs)
        assert sorted(finals) == [tuple(s) for s in d.final_steps.tolist()]
        for k, (t, i) in enumerate(d.final_steps.tolist()):
            np.testing.assert_allclose(d.final_obs[k].numpy(), finals[(t, i)])
        assert d.truncated.any(), "max_episode_steps=6 truncates inside a 24-step unroll"
        assert len(traj.episode_returns) == int(d.dones.sum())
    # behaviour log-probs are the policy's
    with torch.no_grad():
        dist, _ = actor.policy.action_distribution(second.data.obs.reshape(-1, 4))
        lp = dist.log_prob(second.data.actions.reshape(-1)).reshape(24, 2)
    torch.testing.assert_close(lp, second.data.log_probs)


def test_actor_refuses_a_version_it_was_not_sent() -> None:
    actor = _actor()
    with pytest.raises(RuntimeError, match="version"):
        actor.collect(None, 5)


def test_stacking_and_column_selection_keep_final_observations() -> None:
    actor = _actor()
    a, b = actor.collect(None, 0), actor.collect(None, 0)
    batch = stack_trajectories([a, b])
    assert batch.num_envs == 4 and batch.versions.tolist() == [0] * 4
    next_obs = batch.next_obs()
    for part, cols in ((a.data, [0, 1]), (b.data, [2, 3])):
        torch.testing.assert_close(next_obs[:, cols], part.next_obs())
    sub = batch.columns(torch.tensor([3, 0]))
    torch.testing.assert_close(sub.next_obs(), next_obs[:, [3, 0]])
    torch.testing.assert_close(sub.truncated, batch.truncated[:, [3, 0]])
    # next_obs at an episode end is the true final observation, not the reset one
    inside = [k for k, (t, _) in enumerate(a.data.final_steps.tolist()) if t < 23]
    t, i = a.data.final_steps[inside[0]].tolist()
    torch.testing.assert_close(a.data.next_obs()[t, i], a.data.final_obs[inside[0]])
    assert not torch.equal(a.data.final_obs[inside[0]], a.data.obs[t + 1, i])


def test_learner_bootstraps_truncation_from_final_value_not_termination() -> None:
    agent = IMPALA(_env(), seed=0, **TINY)
    actor = _actor(num_steps=64, max_steps=25)
    batch: TrajectoryBatch = actor.collect(None, 0).data
    assert batch.terminated.any() and batch.truncated.any()
    ev = agent.evaluate_batch(batch)
    with torch.no_grad():
        values = agent.policy.value(batch.obs.reshape(-1, 4)).reshape(64, 2)
        boot = agent.policy.value(batch.bootstrap_obs)
        finals = agent.policy.value(batch.final_obs)
    torch.testing.assert_close(ev.values.detach(), values)
    expected = torch.cat([values[1:], boot[None]])
    for k, (t, i) in enumerate(batch.final_steps.tolist()):
        expected[t, i] = 0.0 if batch.terminated[t, i] else finals[k]
    torch.testing.assert_close(ev.next_values, expected)
    # on-policy V-trace of this batch: truncated steps bootstrap gamma * V(final obs)
    vt = agent.vtrace_targets(batch, batch.log_probs, ev.values, ev.next_values)
    k = int(batch.truncated[batch.final_steps[:, 0], batch.final_steps[:, 1]].nonzero()[0])
    t, i = batch.final_steps[k].tolist()
    torch.testing.assert_close(vt.vs[t, i], batch.rewards[t, i] + agent.config.gamma * finals[k])


# --------------------------------------------------------------------------- learning
def _preset(algo: str) -> tuple[int, dict[str, Any]]:
    settings = load_preset(algo, "CartPole-v1")
    num_envs = settings.pop("num_envs")
    settings.pop("total_steps")
    return num_envs, settings


def impala_cartpole(seed: int) -> dict[str, float]:
    num_envs, hyper = _preset("impala")
    env = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    agent = IMPALA(env, seed=seed, **hyper).train(100_000, progress_bar=False)
    return agent.evaluate(episodes=20)


def appo_cartpole(seed: int) -> dict[str, float]:
    """Up to 100k steps, evaluating 20 deterministic episodes every 10k; stops at >= 475."""
    num_envs, hyper = _preset("appo")
    env = make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)
    evaluations = Evaluate(every=10_000, episodes=20, stop_at=475)
    APPO(env, seed=seed, **hyper).train(100_000, progress_bar=False, callbacks=evaluations)
    assert evaluations.best is not None
    reached = evaluations.reached_at
    return {"best": evaluations.best, "reached_at": float(reached if reached is not None else -1)}


@pytest.mark.learning
def test_impala_learns_cartpole_local_backend() -> None:
    """2 in-process actors x 8 envs, sync, the preset; 100k steps (~10 s on 2 cores).
    Seeds 0-4 (env seeded like the agent) reach 441-473 (``python benchmarks/learning_seeds.py
    impala_cartpole``); a random policy scores ~22. Threshold: 20-episode mean >= 400."""
    result = impala_cartpole(0)
    assert result["return_mean"] >= 400, result


@pytest.mark.learning
def test_appo_learns_cartpole_local_backend() -> None:
    """APPO preset (4 epochs x 4 minibatches per batch) reaches a 20-episode deterministic mean
    >= 475 at a 10k-step evaluation within 100k steps (time to a score; the return at 100k is
    bimodal across seeds: in an earlier sweep seed 1 scored 181 there, the other seeds 500).
    Validated on an Intel Xeon (AVX-512), seeds 0-11: 12 of 12 reach it, at 10k-50k steps
    (``python benchmarks/learning_seeds.py appo_cartpole --seeds 0-11``)."""
    result = appo_cartpole(0)
    assert result["best"] >= 475 and result["reached_at"] > 0, result


# --------------------------------------------------------------------------- modes
@pytest.mark.parametrize("cls", [IMPALA, APPO])
def test_sync_and_async_modes_run_and_log_policy_lag(cls: type, tmp_path: Path) -> None:
    lags = {}
    for mode in ("sync", "async"):
        agent = cls(_env(), seed=0, mode=mode, num_actors=3, num_steps=8, device="cpu")
        agent.train(960, run_dir=tmp_path / mode, progress_bar=False, tensorboard=False)
        assert agent.global_step >= 960 and agent.pool is None
        with (tmp_path / mode / "progress.csv").open() as f:
            rows = list(csv.DictReader(f))
        lags[mode] = [float(r["distributed/policy_lag_max"]) for r in rows]
        trajectories = [float(r["distributed/trajectories"]) for r in rows]
        versions = [float(r["distributed/policy_version"]) for r in rows]
        assert versions == list(range(1, len(rows) + 1))
        if mode == "sync":
            assert set(trajectories) == {3.0}
    assert set(lags["sync"]) == {0.0}
    # async in-process: one actor per update, the others still hold older weights
    assert max(lags["async"]) >= 2.0


def test_sync_runs_are_identical_on_local_and_process_backends() -> None:
    agents = []
    for backend in ("local", "process"):
        agent = IMPALA(_env(), seed=0, backend=backend, **TINY)
        agent.train(160, progress_bar=False)  # 5 updates of 2 actors x 2 envs x 8 steps
        agents.append(agent)
    assert agents[0].num_updates == agents[1].num_updates == 5
    _assert_same_weights(*agents)
    assert list(agents[0].episodes.returns) == list(agents[1].episodes.returns)


# --------------------------------------------------------------------------- fault tolerance
class FlakyEnv(gym.Wrapper):
    """CartPole whose ``step`` raises for the instances listed in ``crash`` (by creation order)."""

    created: ClassVar[int] = 0
    crash: ClassVar[set[int]] = set()

    def __init__(self) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.index = FlakyEnv.created
        FlakyEnv.created += 1

    def step(self, action: Any) -> Any:
        if self.index in FlakyEnv.crash:
            raise RuntimeError(f"env instance {self.index} broke")
        return super().step(action)


def _flaky_agent(crash: set[int], **kw: Any) -> IMPALA:
    FlakyEnv.created, FlakyEnv.crash = 0, set()
    agent = IMPALA(make_vec_env(FlakyEnv, 1, seed=0), seed=0, num_steps=8, device="cpu", **kw)
    FlakyEnv.crash = crash  # instance 0 is the env given to the agent; actors build 1, 2, ...
    return agent


def test_crashed_actor_is_restarted_and_training_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    agent = _flaky_agent({2}, num_actors=2, max_restarts=2)  # actor 1's first env breaks
    with caplog.at_level(logging.WARNING, logger="rlkit"):
        agent.train(160, progress_bar=False)
    assert agent.global_step >= 160
    assert "actor 1 failed (RuntimeError: env instance 2 broke); restarting it" in caplog.text
    assert agent.num_updates > 0


def test_actor_is_dropped_after_max_restarts(caplog: pytest.LogCaptureFixture) -> None:
    agent = _flaky_agent(set(range(2, 100)), num_actors=2, max_restarts=2)  # actor 1 never works
    with caplog.at_level(logging.WARNING, logger="rlkit"):
        agent.train(160, progress_bar=False)
    assert agent.global_step >= 160  # actor 0 alone
    assert caplog.text.count("actor 1 failed") == 3
    assert "after 2 restarts; dropping it, training goes on with 1 actor(s)" in caplog.text


def test_all_actors_failing_stops_training_with_the_error() -> None:
    agent = _flaky_agent(set(range(1, 100)), num_actors=2, max_restarts=1)
    with pytest.raises(RuntimeError, match=r"all 2 actors failed.*env instance .* broke"):
        agent.train(160, progress_bar=False)
    assert agent.pool is None


class KillActorAt(IMPALA):
    """Kills actor 0's process (SIGKILL) before update ``kill_at``."""

    kill_at = 3
    killed: ClassVar[list[int]] = []

    def iteration(self) -> dict[str, float]:
        if self.num_updates == self.kill_at and self.pool is not None:
            pid = self.pool.backend.pid(0)  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
            KillActorAt.killed.append(pid)
        return super().iteration()


def test_killed_process_actor_is_restarted_and_no_process_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = KillActorAt(_env(), seed=0, backend="process", mode="async", **TINY)
    with caplog.at_level(logging.WARNING, logger="rlkit"):
        agent.train(400, progress_bar=False)
    assert agent.global_step >= 400 and KillActorAt.killed
    assert "actor 0 failed (ActorError: actor 0: process died" in caplog.text
    assert "restarting it (restart 1 of 3)" in caplog.text
    assert multiprocessing.active_children() == []
    with pytest.raises(ProcessLookupError):  # reaped, not a zombie
        os.kill(KillActorAt.killed[0], 0)


class FailingLearner(IMPALA):
    def update(self, batch: TrajectoryBatch) -> dict[str, float]:
        if self.num_updates == 2:
            raise ValueError("learner bug")
        return super().update(batch)


def test_actor_processes_stop_when_training_raises() -> None:
    agent = FailingLearner(_env(), seed=0, backend="process", **TINY)
    with pytest.raises(ValueError, match="learner bug"):
        agent.train(10_000, progress_bar=False)
    assert agent.pool is None
    assert multiprocessing.active_children() == []


class HangingEnv(gym.Wrapper):
    """CartPole whose ``step`` hangs in the first actor process that claims ``marker``."""

    def __init__(self, marker: str, learner_pid: int) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.hang = False
        if os.getpid() != learner_pid:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                self.hang = True
            except FileExistsError:
                pass

    def step(self, action: Any) -> Any:
        self.steps = getattr(self, "steps", 0) + 1
        if self.hang and self.steps > 20:  # after its actor delivered two unrolls
            signal.pause()  # never returns
        return super().step(action)


def test_hung_actor_is_replaced_after_actor_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "hung"
    env = make_vec_env(functools.partial(HangingEnv, str(marker), os.getpid()), 2, seed=0)
    agent = IMPALA(env, seed=0, backend="process", actor_timeout_s=3.0, **TINY)
    with caplog.at_level(logging.WARNING, logger="rlkit"):
        agent.train(320, progress_bar=False)
    assert marker.exists() and agent.global_step >= 320
    assert "returned nothing for" in caplog.text and "restarting it" in caplog.text
    assert multiprocessing.active_children() == []


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_resume(tmp_path: Path) -> None:
    agent = IMPALA(_env(), seed=0, normalize_obs=True, **TINY)
    agent.train(320, run_dir=tmp_path / "run", checkpoint_every=160, progress_bar=False)
    assert (tmp_path / "run" / "checkpoint" / "config.json").exists()
    path = agent.save(tmp_path / "ckpt")
    loaded = IMPALA.load(path)
    _assert_same_weights(agent, loaded)
    assert (loaded.global_step, loaded.num_updates) == (agent.global_step, agent.num_updates)
    assert loaded.policy_version == agent.num_updates == 10
    assert loaded.obs_normalizer is not None and agent.obs_normalizer is not None
    torch.testing.assert_close(
        loaded.obs_normalizer.state_dict(), agent.obs_normalizer.state_dict()
    )
    state = agent.optimizer.state_dict()["state"][0]
    torch.testing.assert_close(loaded.optimizer.state_dict()["state"][0], state)
    assert isinstance(load_agent(path), IMPALA)
    # the resumed run continues from version 10 (actors get those weights: lag 0 in sync)
    metrics = loaded.iteration()
    assert metrics["distributed/policy_version"] == 11.0
    assert metrics["distributed/policy_lag_max"] == 0.0
    loaded.close()
    loaded.train(640, progress_bar=False)
    assert loaded.global_step >= 640 and loaded.num_updates == 20


# --------------------------------------------------------------------------- primitives
class ConstantBonus(IntrinsicReward):
    """Adds 1 to every reward (raw, no normalisation): easy to see in the learner's batch."""

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        assert batch.next_obs is not None
        return torch.ones_like(batch.dones)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        return {"calls": 1.0}


class RecordingIMPALA(IMPALA):
    batches: ClassVar[list[TrajectoryBatch]] = []

    def update(self, batch: TrajectoryBatch) -> dict[str, float]:
        RecordingIMPALA.batches.append(batch)
        return super().update(batch)


def test_intrinsic_reward_is_added_before_vtrace_targets() -> None:
    env = _env()
    bonus = ConstantBonus(env.single_observation_space, env.single_action_space, reward_norm="none")
    plain = RecordingIMPALA(_env(), seed=0, **TINY)
    plain.iteration()
    plain.close()
    with_bonus = RecordingIMPALA(_env(), seed=0, intrinsic_reward=bonus, **TINY)
    metrics = with_bonus.iteration()
    with_bonus.close()
    base, boosted = RecordingIMPALA.batches[-2], RecordingIMPALA.batches[-1]
    torch.testing.assert_close(boosted.rewards, base.rewards + 1.0)
    assert metrics["rollout/intrinsic_reward_mean"] == 1.0
    assert metrics["intrinsic/calls"] == 1.0


def test_rnd_bonus_trains_with_the_agent() -> None:
    agent = IMPALA(_env(), seed=0, intrinsic_reward="rnd", **TINY)
    agent.train(160, progress_bar=False)
    assert agent.intrinsic_reward is not None
    assert "intrinsic_reward" in agent.modules()


def test_swappable_primitives_reach_remote_actors() -> None:
    env = _env()
    agent = IMPALA(env, seed=0, encoder={"id": "mlp", "feature_dim": 32}, **TINY)
    assert isinstance(agent.policy.encoder, MLP) and agent.policy.encoder.feature_dim == 32
    spec = agent.actor_spec(0, 0, remote=True)
    assert spec.policy_module is None and spec.policy_spec["encoder"]["id"] == "mlp"
    actor = ActorWorker(spec)  # rebuilt from JSON, as in a subprocess or a Ray actor
    actor.set_weights(agent.weights())
    torch.testing.assert_close(actor.policy.state_dict(), agent.policy.state_dict())
    obs = torch.randn(5, 4)
    torch.testing.assert_close(
        actor.policy.action_distribution(obs)[0].logits,
        agent.policy.action_distribution(obs)[0].logits,
    )


@pytest.mark.parametrize("cls", [IMPALA, APPO])
def test_image_observations_with_augmentation(cls: type, tmp_path: Path) -> None:
    env = make_vec_env("rlkit/PixelReach-v0", num_envs=2, seed=0)
    agent = cls(env, seed=0, augmentation="random_shift", **TINY).train(64, progress_bar=False)
    assert agent.num_updates == 2 and agent.augmentation is not None
    images = torch.randint(0, 256, (8, *env.single_observation_space.shape), dtype=torch.uint8)
    assert not torch.equal(agent.augment(images), images)  # the learner sees shifted frames
    loaded = cls.load(agent.save(tmp_path / "ckpt"))
    assert type(loaded.augmentation) is type(agent.augmentation)


class UnregisteredPolicy(ActorCritic):
    pass


def test_unregistered_policy_travels_as_a_module() -> None:
    env = _env()
    policy = UnregisteredPolicy(env.single_observation_space, env.single_action_space)
    agent = IMPALA(env, seed=0, policy=policy, **TINY)
    spec = agent.actor_spec(1, 0, remote=True)
    assert spec.policy_spec is None and spec.policy_module is agent.policy


def test_act_and_evaluate_after_training() -> None:
    agent = APPO(_env(), seed=0, **TINY).train(160, progress_bar=False)
    obs = np.zeros((3, 4), dtype=np.float32)
    actions = agent.act(obs, deterministic=True)
    assert actions.shape == (3,) and actions.dtype == np.int64
    assert agent.act(obs[0]).shape == ()
    result = agent.evaluate(episodes=4)
    assert result["episodes"] == 4.0


# --------------------------------------------------------------------------- knobs
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_actors": 0}, "num_actors=0"),
        ({"envs_per_actor": 0}, "envs_per_actor=0"),
        ({"num_steps": 0}, "num_steps=0"),
        ({"max_restarts": -1}, "max_restarts=-1"),
        ({"rho_bar": 0.0}, "rho_bar=0.0"),
        ({"backend": "mpi"}, "backend='mpi' (backend must be one of 'local', 'process', 'ray'"),
        ({"mode": "semi"}, "mode='semi' (mode must be one of 'sync', 'async')"),
        ({"clip_range": 0.0}, "clip_range=0.0"),
    ],
)
def test_bad_knobs_are_named(kwargs: dict[str, Any], message: str) -> None:
    cls = APPO if "clip_range" in kwargs else IMPALA
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cls(_env(), **kwargs)


def test_env_must_come_from_make_vec_env() -> None:
    env = SyncVectorEnv([lambda: gym.make("CartPole-v1")])
    with pytest.raises(ValueError, match="make_vec_env"):
        IMPALA(env)


def test_unpicklable_env_factory_is_refused_by_the_process_backend() -> None:
    agent = IMPALA(make_vec_env(lambda: gym.make("CartPole-v1"), 1), backend="process")
    with pytest.raises(ValueError, match="cannot be pickled"):
        agent.train(100, progress_bar=False)
    assert multiprocessing.active_children() == []


def test_missing_ray_message_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert 'pip install "rlkit[ray]"' in ray_missing_message()
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ImportError, match=r'pip install "rlkit\[ray\]"'):
        import_ray()
    agent = IMPALA(_env(), backend="ray")
    with pytest.raises(ImportError, match=r"rlkit\[ray\]"):
        agent.train(100, progress_bar=False)
