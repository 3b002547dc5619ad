"""Ape-X: n-step transitions from unrolls (hand-computed), epsilon-greedy behaviour, the
transition replay, actor-computed priorities reaching the learner's prioritized replay, per-actor
epsilons, identical sync runs on the local and process backends, checkpoint resume with the
replay, clear errors, and learning CartPole (the Ray backend with a killed actor is in
tests/test_distributed_ray.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.agents import DQN, ApeX
from rlkit.agents.apex import ApeXActor
from rlkit.config.presets import load_preset
from rlkit.distributed import (
    ActorWorker,
    EpsilonGreedy,
    TrajectoryBatch,
    nstep_transitions,
)
from rlkit.distributions.categorical import Categorical
from rlkit.envs import make_vec_env
from rlkit.prototypes import Evaluate
from rlkit.storages import ReplayStorage, TransitionReplay

#: small runs: 2 actors x 1 env x 16 steps, learner on the CPU
TINY: dict[str, Any] = {
    "num_actors": 2,
    "num_steps": 16,
    "learning_starts": 32,
    "batch_size": 16,
    "buffer_size": 1024,
    "hidden_sizes": [16],
    "device": "cpu",
}


def _env(num_envs: int = 1, seed: int = 0) -> Any:
    return make_vec_env("CartPole-v1", num_envs=num_envs, seed=seed)


# --------------------------------------------------------------------------- n-step transitions
def _unroll() -> TrajectoryBatch:
    """4 steps x 2 envs; obs[t, b] = 10 b + t. Env 0 runs on (rewards 1, 2, 3, 4); env 1
    (rewards 1) terminates at t = 1 (final obs 51) and is truncated at t = 3 (final obs 53)."""
    obs = torch.tensor([[[10.0 * b + t] for b in range(2)] for t in range(4)])
    terminated = torch.zeros(4, 2, dtype=torch.bool)
    truncated = torch.zeros(4, 2, dtype=torch.bool)
    terminated[1, 1] = True
    truncated[3, 1] = True
    return TrajectoryBatch(
        obs=obs,
        actions=torch.tensor([[0, 1], [1, 0], [0, 0], [1, 1]]),
        rewards=torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]]),
        terminated=terminated,
        truncated=truncated,
        log_probs=torch.zeros(4, 2),
        bootstrap_obs=torch.tensor([[100.0], [110.0]]),
        final_steps=torch.tensor([[1, 1], [3, 1]]),
        final_obs=torch.tensor([[51.0], [53.0]]),
        versions=torch.zeros(2, dtype=torch.long),
    )


def test_nstep_transitions_match_a_hand_computed_unroll() -> None:
    tr = nstep_transitions(_unroll(), n_step=3, gamma=0.5)
    # row t * 2 + b; env 0: windows of 3, cut by the unroll's end; env 1: cut by its episodes
    expected = {
        # (t, b): (return, discount, next obs, terminated, truncated)
        (0, 0): (1 + 0.5 * 2 + 0.25 * 3, 0.125, 3.0, False, False),
        (1, 0): (2 + 0.5 * 3 + 0.25 * 4, 0.125, 100.0, False, False),
        (2, 0): (3 + 0.5 * 4, 0.25, 100.0, False, False),
        (3, 0): (4.0, 0.5, 100.0, False, False),
        (0, 1): (1 + 0.5 * 1, 0.0, 51.0, True, False),  # terminated inside the window
        (1, 1): (1.0, 0.0, 51.0, True, False),
        (2, 1): (1 + 0.5 * 1, 0.25, 53.0, False, True),  # truncated: bootstraps, g^2
        (3, 1): (1.0, 0.5, 53.0, False, True),
    }
    assert len(tr) == 8
    for (t, b), (ret, disc, nxt, term, trunc) in expected.items():
        row = t * 2 + b
        assert tr.rewards[row].item() == pytest.approx(ret), (t, b)
        assert tr.discounts[row].item() == pytest.approx(disc), (t, b)
        assert tr.next_obs[row, 0].item() == nxt, (t, b)  # type: ignore[index]
        assert (bool(tr.terminated[row]), bool(tr.truncated[row])) == (term, trunc), (t, b)
        assert tr.obs[row, 0].item() == 10 * b + t  # type: ignore[index]
    one = nstep_transitions(_unroll(), n_step=1, gamma=0.5)
    assert one.rewards.tolist() == _unroll().rewards.reshape(-1).tolist()
    with pytest.raises(ValueError, match="n_step must be an int >= 1, got 0"):
        nstep_transitions(_unroll(), n_step=0, gamma=0.5)


# --------------------------------------------------------------------------- behaviour
class _FixedQ(torch.nn.Module):
    def __init__(self, q: torch.Tensor) -> None:
        super().__init__()
        self.q = q
        self.bias = torch.nn.Parameter(torch.zeros(()))
        self.distribution = Categorical(spaces.Discrete(q.shape[-1]))

    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q.expand(obs.shape[0], -1) + self.bias


def test_epsilon_greedy_is_the_mixture_distribution() -> None:
    policy = _FixedQ(torch.tensor([[1.0, 3.0, 2.0]]))
    dist = EpsilonGreedy(0.3).action_distribution(policy, torch.zeros(4, 1))
    probs = dist.log_prob(torch.tensor([0, 1, 2, 1])).exp()
    # greedy action 1: 1 - 0.3 + 0.3 / 3; the others 0.3 / 3
    torch.testing.assert_close(probs, torch.tensor([0.1, 0.8, 0.1, 0.8]))
    draws = dist.sample(torch.Generator().manual_seed(0))
    assert draws.shape == (4,)
    greedy = EpsilonGreedy(0.0).action_distribution(policy, torch.zeros(64, 1))
    assert (greedy.sample(torch.Generator().manual_seed(1)) == 1).all()
    with pytest.raises(ValueError, match=r"epsilon must be in \[0, 1\], got 1.5"):
        EpsilonGreedy(1.5)


# --------------------------------------------------------------------------- replay
def test_transition_replay_keeps_discounts_and_initial_priorities(tmp_path: Path) -> None:
    storage = TransitionReplay(
        spaces.Box(-1, 1, (1,)), spaces.Discrete(2), capacity=8, width=4,
        sampler={"id": "prioritized", "alpha": 1.0, "beta": 0.4},
    )  # fmt: skip
    obs = np.arange(4, dtype=np.float32).reshape(4, 1)
    flags = np.zeros(4, dtype=bool)
    slots = storage.add_with_priorities(
        [0.0, 0.0, 100.0, 0.0], obs, [0, 1, 0, 1], [1.0] * 4, obs + 1, flags, flags,
        [0.9, 0.5, 0.25, 0.0],
    )  # fmt: skip
    assert slots.tolist() == [0, 1, 2, 3] and len(storage) == 4
    batch = storage.sample(64, torch.Generator().manual_seed(0))
    torch.testing.assert_close(batch.discounts, torch.full((64,), 0.25))  # slot 2 dominates
    assert (batch.indices == 2).all()
    storage.update_priorities(torch.arange(4), [1.0] * 4)  # now every slot comes back
    second = storage.sample(256, torch.Generator().manual_seed(0))
    stored = torch.tensor([0.9, 0.5, 0.25, 0.0])
    torch.testing.assert_close(second.discounts, stored[second.indices])
    assert set(second.indices.tolist()) == {0, 1, 2, 3}
    path = storage.save(tmp_path / "replay.h5")
    loaded = ReplayStorage.load(path)
    assert isinstance(loaded, TransitionReplay)
    np.testing.assert_array_equal(loaded.discounts, storage.discounts)
    with pytest.raises(ValueError, match=r"discounts must have one entry per env \(4\)"):
        storage.add(obs, [0] * 4, [1.0] * 4, obs, flags, flags, [0.5])


# --------------------------------------------------------------------------- actors
def test_actor_epsilons_follow_the_paper_and_survive_restarts() -> None:
    agent = ApeX(_env(), seed=0, **{**TINY, "num_actors": 4})
    expected = [0.4 ** (1 + 7 * i / 3) for i in range(4)]
    specs = [agent.actor_spec(i, 0, remote=True) for i in range(4)]
    got = [s.behaviour.epsilon for s in specs]  # type: ignore[union-attr]
    assert got == pytest.approx(expected)
    restarted = agent.actor_spec(3, 2, remote=True).behaviour
    assert isinstance(restarted, ApeXActor) and restarted.epsilon == pytest.approx(expected[3])
    assert ApeX(_env(), **{**TINY, "num_actors": 1}).actor_epsilon(0) == 0.4


def test_actor_priorities_are_its_networks_nstep_td_errors() -> None:
    agent = ApeX(_env(2), seed=0, **{**TINY, "envs_per_actor": 2})
    worker = ActorWorker(agent.actor_spec(1, 0, remote=False))
    weights = agent.weights()
    trajectory = worker.collect(weights, weights.version)
    data = trajectory.data
    assert data.extras["priorities"].shape == (16, 2)
    tr = nstep_transitions(data, 3, agent.config.gamma)
    with torch.no_grad():
        q = agent.policy.q_values(tr.obs).gather(-1, tr.actions.unsqueeze(-1)).squeeze(-1)
        target = tr.rewards + tr.discounts * agent.policy.q_values(tr.next_obs).amax(-1)
    torch.testing.assert_close(data.extras["priorities"].reshape(-1), (target - q).abs())
    # the learner puts exactly those priorities into its sum-tree (alpha 0.6, eps 1e-6)
    agent.store_unroll(data)
    tree = agent.storage.sampler.tree  # type: ignore[attr-defined]
    got = tree.get(np.arange(32))
    want = ((target - q).abs().double().numpy() + 1e-6) ** 0.6
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_learner_trains_on_what_actors_send_and_logs_it() -> None:
    agent = ApeX(_env(), seed=0, **{**TINY, "learning_starts": 48})
    agent.train(256, progress_bar=False)
    assert agent.global_step == 256
    assert len(agent.storage) == 256
    # updates are earned from the gather that reaches learning_starts on (2 x 16 transitions
    # per gather: the first stays below 48), 1 update per 4 transitions (train_freq 4)
    assert agent.num_updates == (256 - 32) // 4
    assert agent.pool is None  # actors stopped when training ended


def test_sync_runs_are_identical_on_local_and_process_backends() -> None:
    """Same seeds, same unrolls, same priorities, same learner. On the ``reference`` backend:
    with ``fast`` kernels the two learners (same data, bit-identical priorities) drift apart by
    one float32 ulp after ~30 updates, a difference not yet traced (see the #15 note)."""
    agents = []
    for backend in ("local", "process"):
        agent = ApeX(_env(), seed=0, backend=backend, compute="reference", **TINY)
        agent.train(192, progress_bar=False)
        agents.append(agent)
    wa, wb = (a.policy.state_dict() for a in agents)
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0, msg=key)
    np.testing.assert_array_equal(agents[0].storage.rewards, agents[1].storage.rewards)


def test_checkpoint_resume_keeps_replay_and_continues_identically(tmp_path: Path) -> None:
    settings = {**TINY, "save_replay": True}
    whole = ApeX(_env(), seed=0, **settings).train(256, progress_bar=False)
    first = ApeX(_env(), seed=0, **settings).train(128, progress_bar=False)
    first.save(tmp_path / "ckpt")
    resumed = ApeX.load(tmp_path / "ckpt")
    assert isinstance(resumed.storage, TransitionReplay) and len(resumed.storage) == 128
    resumed.train(256, progress_bar=False)
    assert (whole.global_step, whole.num_updates) == (resumed.global_step, resumed.num_updates)
    wa, wb = whole.policy.state_dict(), resumed.policy.state_dict()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0, msg=key)


def test_bad_storage_and_settings_are_named() -> None:
    env = _env()
    plain = ReplayStorage(env.single_observation_space, env.single_action_space, capacity=64)
    with pytest.raises(TypeError, match=r"needs a TransitionReplay .* got ReplayStorage"):
        ApeX(env, storage=plain, **TINY)
    wrong = TransitionReplay(env.single_observation_space, env.single_action_space, 64, width=8)
    with pytest.raises(ValueError, match=r"takes 8 transitions per add .* = 16"):
        ApeX(env, storage=wrong, **TINY)
    with pytest.raises(ValueError, match="actor_epsilon"):
        ApeX(_env(), actor_epsilon=1.5)
    with pytest.raises(ValueError, match="num_actors"):
        ApeX(_env(), num_actors=0)


def test_greedy_acting_and_evaluation_after_training() -> None:
    agent = ApeX(_env(), seed=0, **TINY).train(128, progress_bar=False)
    obs, _ = _env().reset(seed=1)
    action = agent.act(obs)
    assert action.shape == (1,)
    assert isinstance(agent, DQN)  # Ape-X is DQN's learner: every DQN hook holds
    assert agent.evaluate(episodes=2)["episodes"] == 2


# --------------------------------------------------------------------------- learning
def apex_cartpole(seed: int) -> dict[int, float]:
    """The shipped CartPole preset (4 actors, the zoo DQN schedule); greedy 20-episode
    evaluations every 10k steps, stopping at 200."""
    settings = load_preset("apex", "CartPole-v1")
    num_envs, total = settings.pop("num_envs"), settings.pop("total_steps")
    evaluations = Evaluate(every=10_000, episodes=20, stop_at=200.0)
    agent = ApeX(_env(num_envs, seed), seed=seed, device="cpu", **settings)
    agent.train(total, progress_bar=False, callbacks=evaluations)
    return {step: result["return_mean"] for step, result in evaluations.history}


@pytest.mark.learning
def test_apex_learns_cartpole() -> None:
    """4 local actors (epsilons 0.4 ... 0.0007), the preset: a greedy evaluation reaches 200
    (random: ~22) within 50k steps.

    Validated with ``python benchmarks/learning_seeds.py apex_cartpole --seeds 0-4`` on an
    AMD EPYC (AVX-512, 2 cores shared with other jobs), one torch thread: every seed passed,
    seeds 0, 1, 4 at the first evaluation (10k steps: 500, 500, 447), seeds 2 and 3 at the
    second (20k: 500, 498; at 10k 147 and 152); 25-95 s per seed."""
    history = apex_cartpole(0)
    assert max(history.values()) >= 200.0, history
