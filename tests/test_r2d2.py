"""R2D2's parts: sequence replay, in-sequence n-step targets, value rescaling, priorities,
recurrent Q-networks, and the off-policy loop carrying a recurrent state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit.agents import DQN, R2D2
from rlkit.envs import make_vec_env
from rlkit.losses import (
    inverse_value_rescale,
    sequence_nstep_targets,
    sequence_priorities,
    value_rescale,
)
from rlkit.policies import POLICIES, GRUQNetwork, LSTMQNetwork, RecurrentQNetwork
from rlkit.storages import ReplayStorage, SequenceReplay

OBS = gym.spaces.Box(-1e6, 1e6, (1,), np.float32)
ACT = gym.spaces.Discrete(3)


# --------------------------------------------------------------------------- targets
def test_sequence_nstep_targets_hand_computed() -> None:
    g = 0.5
    rewards = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]])
    terminated = torch.tensor([[0.0], [0.0], [1.0], [0.0], [0.0]])
    truncated = torch.tensor([[0.0], [0.0], [0.0], [0.0], [1.0]])
    values = torch.tensor([[10.0], [20.0], [30.0], [40.0], [50.0]])  # V of each next obs
    out = sequence_nstep_targets(rewards, terminated, truncated, values, g, 2)
    expected = [
        1 + g * 2 + g**2 * 20,  # two steps, bootstrap from step 1's next obs
        2 + g * 3,  # stops at the termination in step 2: no bootstrap
        3,  # terminated itself
        4 + g * 5 + g**2 * 50,  # the truncation in step 4 bootstraps from its final obs
        5 + g * 50,  # the sequence ends: one step
    ]
    assert out[:, 0].tolist() == pytest.approx(expected)


def test_sequence_nstep_targets_one_step_is_td() -> None:
    rewards, values = torch.randn(6, 3), torch.randn(6, 3)
    term = (torch.rand(6, 3) < 0.3).float()
    out = sequence_nstep_targets(rewards, term, torch.zeros(6, 3), values, 0.9, 1)
    torch.testing.assert_close(out, rewards + 0.9 * (1 - term) * values)


def test_value_rescaling_round_trip_and_shape() -> None:
    x = torch.linspace(-1000, 1000, 101, dtype=torch.float64)
    torch.testing.assert_close(inverse_value_rescale(value_rescale(x)), x)
    assert value_rescale(torch.tensor(3.0)).item() == pytest.approx(1.0 + 3e-3)  # sqrt(4) - 1


def test_sequence_priorities() -> None:
    errors = torch.tensor([[1.0, -2.0], [-3.0, 0.0]])
    out = sequence_priorities(errors, 0.9)
    assert out.tolist() == pytest.approx([0.9 * 3 + 0.1 * 2, 0.9 * 2 + 0.1 * 1])


# --------------------------------------------------------------------------- storage
def _storage(
    capacity: int = 40, length: int = 4, num_envs: int = 2, sampler: str = "uniform"
) -> SequenceReplay:
    return SequenceReplay(OBS, ACT, capacity, length, num_envs, state_shapes=[[2]], sampler=sampler)


def _fill(storage: SequenceReplay, steps: int, done_at: dict[int, str] | None = None) -> None:
    """Obs of env e at step t is 100 t + e; the stored state is (t, e); the next obs is the
    next step's (or 100 t + e + 0.5 where an episode ends: the final observation)."""
    n = storage.num_envs
    done_at = done_at or {}
    for t in range(steps):
        obs = np.array([[100.0 * t + e] for e in range(n)], np.float32)
        kind = done_at.get(t)
        term = np.array([kind == "term"] * n)
        trunc = np.array([kind == "trunc"] * n)
        nxt = obs + (0.5 if kind else 100.0)
        state = torch.tensor([[float(t), float(e)] for e in range(n)])
        storage.add(obs, np.zeros(n, np.int64), np.full(n, t, np.float32), nxt, term, trunc,
                    state=(state,))  # fmt: skip


def test_windows_are_consecutive_steps_of_one_env_with_their_state() -> None:
    storage = _storage()
    _fill(storage, 15)  # 20 rows per env: nothing overwritten yet
    batch = storage.sample(64, torch.Generator().manual_seed(0))
    assert batch.obs.shape == (5, 64, 1) and batch.rewards.shape == (4, 64)
    first = batch.obs[0, :, 0]
    t0, env = torch.div(first, 100, rounding_mode="floor"), first % 100
    for j in range(5):
        torch.testing.assert_close(batch.obs[j, :, 0], first + 100 * j)
    torch.testing.assert_close(batch.states[0], torch.stack([t0, env], 1))
    assert int(t0.max()) <= 15 - 4  # every window fits in the stored steps
    assert batch.episode_starts[0].eq(t0 == 0).all() and not batch.episode_starts[1:].any()
    assert batch.final_steps.numel() == 0 and batch.weights.eq(1).all()


def test_windows_never_cross_the_ring_edge() -> None:
    storage = _storage(capacity=20)  # 10 rows per env
    _fill(storage, 23)  # steps 13..22 kept
    batch = storage.sample(256, torch.Generator().manual_seed(1))
    t0 = torch.div(batch.obs[0, :, 0], 100, rounding_mode="floor")
    assert int(t0.min()) == 13 and int(t0.max()) == 19
    for j in range(1, 5):
        torch.testing.assert_close(batch.obs[j, :, 0] - batch.obs[j - 1, :, 0],
                                   torch.full((256,), 100.0))  # fmt: skip


def test_truncation_inside_a_window_gets_a_bootstrap_column() -> None:
    storage = _storage(capacity=16, length=4, num_envs=1)
    _fill(storage, 8, {2: "trunc", 5: "term"})
    batch = storage._gather(np.array([1, 2, 3]), None)  # windows at steps 1, 2, 3
    # bootstrap columns in time-major order: window 1 (step 2 is its step 0), then window 0
    assert batch.final_steps.tolist() == [0, 1] and batch.final_columns.tolist() == [1, 0]
    assert batch.obs.shape == (5, 5, 1)
    # the window of step 1 goes on with step 3 (a new episode), its copy sees the final obs
    assert batch.obs[2, 0, 0].item() == 300.0 and batch.episode_starts[2, 0].item() == 1.0
    assert batch.obs[2, 4, 0].item() == 200.5 and batch.episode_starts[2, 4].item() == 0.0
    assert batch.obs[1, 3, 0].item() == 200.5 and batch.episode_starts[1, 3].item() == 0.0
    # the terminated step 5 needs no column; the last position is step 6's next obs
    assert batch.obs[4, 2, 0].item() == 700.0
    values = torch.arange(25.0).reshape(5, 5)
    nxt = batch.next_values(values)
    assert nxt[1, 0].item() == values[2, 4].item() and nxt[0, 1].item() == values[1, 3].item()
    assert nxt[0, 0].item() == values[1, 0].item() and nxt.shape == (4, 3)
    # from position 2 on only the bootstrap columns of later steps count
    assert batch.next_values(values[2:], 2)[0, 0].item() == values[3, 0].item()


def test_a_start_without_an_ending_marks_the_previous_step_truncated() -> None:
    storage = _storage(num_envs=1)
    _fill(storage, 3)
    obs = np.zeros((1, 1), np.float32)
    storage.add(obs, [0], [0.0], obs, [False], [False], state=(torch.zeros(1, 2),),
                episode_start=[1.0])  # fmt: skip
    assert storage.truncated[2] and storage.starts[3] and not storage.starts[2]


def test_prioritized_windows_start_only_where_a_window_fits() -> None:
    storage = _storage(capacity=20, length=4, sampler="prioritized")
    _fill(storage, 3)
    assert not storage.can_sample()
    with pytest.raises(ValueError, match="fewer than sequence_length=4"):
        storage.sample(2)
    storage = _storage(capacity=20, length=4, sampler="prioritized")
    _fill(storage, 20)  # 10 rows per env: steps 10..19 kept, windows start at 10..16
    batch = storage.sample(512, torch.Generator().manual_seed(0))
    t0 = torch.div(batch.obs[0, :, 0], 100, rounding_mode="floor")
    assert int(t0.min()) == 10 and int(t0.max()) == 16
    storage.update_priorities(batch.indices[:1], [100.0])
    again = storage.sample(256, torch.Generator().manual_seed(1))
    assert (again.indices == batch.indices[0]).float().mean() > 0.5
    chosen = again.indices == batch.indices[0]
    assert again.weights.max() == pytest.approx(1.0) and again.weights[chosen].max() < 0.5


def test_save_and_load_keep_states_and_starts(tmp_path: Path) -> None:
    storage = _storage(sampler="prioritized")
    _fill(storage, 9, {4: "term"})
    loaded = ReplayStorage.load(storage.save(tmp_path / "seq.h5"))
    assert isinstance(loaded, SequenceReplay) and loaded.sequence_length == 4
    np.testing.assert_array_equal(loaded.states[0], storage.states[0])
    np.testing.assert_array_equal(loaded.starts, storage.starts)
    a = storage.sample(8, torch.Generator().manual_seed(3))
    b = loaded.sample(8, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.obs, b.obs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 6, "sequence_length": 4, "num_envs": 2}, "sequence_length \\(4\\) is longer"),
        ({"capacity": 40, "sequence_length": 0}, "sequence_length must be an int >= 1"),
        ({"capacity": 40, "sequence_length": 4, "state_dtypes": ["f16"]}, "unknown state dtype"),
    ],
)
def test_bad_storage_arguments_are_named(kwargs: dict[str, Any], match: str) -> None:
    kwargs = {"state_shapes": [[2]], **kwargs}
    with pytest.raises(ValueError, match=match):
        SequenceReplay(OBS, ACT, **kwargs)


def test_state_of_the_wrong_shape_is_refused() -> None:
    storage = _storage()
    obs = np.zeros((2, 1), np.float32)
    with pytest.raises(ValueError, match="a state tensor has shape"):
        storage.add(obs, [0, 0], [0, 0], obs, [0, 0], [0, 0], state=(torch.zeros(2, 3),))
    with pytest.raises(ValueError, match="state has 0 tensors"):
        storage.add(obs, [0, 0], [0, 0], obs, [0, 0], [0, 0])


# --------------------------------------------------------------------------- networks
def test_registered_recurrent_q_networks() -> None:
    assert POLICIES.get("lstm_q_network") is LSTMQNetwork
    assert POLICIES.get("gru_q_network") is GRUQNetwork
    assert POLICIES.get("recurrent_q_network") is RecurrentQNetwork
    assert [s.name for s in LSTMQNetwork(OBS, ACT).state_spec()] == ["q_h", "q_c"]
    assert [s.name for s in GRUQNetwork(OBS, ACT).state_spec()] == ["q_h"]


@pytest.mark.parametrize("dueling", [False, True])
def test_q_sequence_equals_acting_step_by_step(dueling: bool) -> None:
    torch.manual_seed(0)
    net = LSTMQNetwork(OBS, gym.spaces.Discrete(3, start=1), hidden_size=8, dueling=dueling)
    steps, batch = 6, 3
    obs = torch.randn(steps, batch, 1)
    starts = (torch.rand(steps, batch) < 0.3).float()
    state = tuple(torch.randn(batch, 1, 8) for _ in range(2))
    q, final = net.q_sequence(obs.reshape(-1, 1), state, starts.reshape(-1))
    s: Any = state
    for t in range(steps):
        q_t, _ = net.q_sequence(obs[t], s, starts[t])
        torch.testing.assert_close(q.reshape(steps, batch, 3)[t], q_t)
        actions, s = net.act(obs[t], True, s, starts[t])
        assert torch.equal(actions, q_t.argmax(-1) + 1)
    assert final is not None
    for a, b in zip(final, s, strict=True):
        torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------- the agent
def _r2d2(**kw: Any) -> R2D2:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    args: dict[str, Any] = dict(
        seed=0, burn_in=2, seq_len=4, learning_starts=20, batch_size=4, buffer_size=400,
        hidden_size=8, hidden_sizes=[8], log_interval=50, target_update_interval=10,
    )  # fmt: skip
    return R2D2(env, **{**args, **kw})


def test_collection_stores_the_state_entering_each_step() -> None:
    agent = _r2d2(learning_starts=1000)  # random actions: the memory still runs
    agent.train(60)
    storage = agent.storage
    rows = 30  # steps per env
    for e in range(2):
        slots = np.arange(rows) * 2 + e
        obs = torch.from_numpy(storage.store.obs(slots))
        starts = torch.from_numpy(storage.starts[slots].astype(np.float32))
        state: Any = tuple(torch.from_numpy(s[slots[:1]]) for s in storage.states)
        with torch.no_grad():
            for t in range(1, rows):
                _, state = agent.policy.q_sequence(obs[t - 1 : t], state, starts[t - 1 : t])
                stored = tuple(torch.from_numpy(s[slots[t : t + 1]]) for s in storage.states)
                for a, b in zip(state, stored, strict=True):
                    torch.testing.assert_close(a, b)
    assert storage.starts[[0, 1]].all()  # the first step starts an episode


def test_bootstrap_column_values_the_final_observation_in_its_episode() -> None:
    agent = _r2d2()
    agent.train(300)  # CartPole episodes end inside the replay
    storage = agent.storage
    ends = np.flatnonzero(storage.terminated[: len(storage)])
    storage.truncated[ends] = True  # pretend they were time limits: bootstrap columns
    storage.terminated[ends] = False
    batch = storage.sample(64, torch.Generator().manual_seed(0))
    assert batch.final_steps.numel() > 0
    net = agent.policy
    with torch.no_grad():
        obs, starts = batch.positions(0)
        q, _ = net.q_sequence(obs, batch.states, starts)
        values = q.reshape(batch.length + 1, -1, 2).amax(-1)
        nxt = batch.next_values(values)
        for k in range(batch.final_steps.numel()):
            t, b = int(batch.final_steps[k]), int(batch.final_columns[k])
            state: Any = tuple(s[b : b + 1] for s in batch.states)
            for j in range(t + 1):  # the window's own steps up to the truncation
                _, state = net.q_sequence(batch.obs[j, b : b + 1], state,
                                          batch.episode_starts[j, b : b + 1])  # fmt: skip
            step0, env = storage.locate(batch.indices[b : b + 1])
            slots = (step0 + t) % storage.num_rows * 2 + env
            final = torch.from_numpy(storage.store.next_obs(slots))
            expected = net.q_sequence(final, state, torch.zeros(1))[0].amax(-1)
            torch.testing.assert_close(nxt[t, b : b + 1], expected)


def test_r2d2_trains_and_reports_priorities() -> None:
    agent = _r2d2()
    agent.train(200)
    assert agent.num_updates > 0 and agent.prioritized
    priorities = agent.storage.sampler.state_dict()["priorities"]
    assert len(set(priorities[priorities > 0].tolist())) > 2  # updates gave new priorities
    actions, state = agent.act_with_state(np.zeros((2, 4), np.float32))
    assert actions.shape == (2,) and state is not None


def test_feedforward_agents_refuse_recurrent_policies_and_back() -> None:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    with pytest.raises(ValueError, match="DQN does not train recurrent policies"):
        DQN(env, policy="lstm_q_network")
    with pytest.raises(TypeError, match="R2D2 needs a RecurrentQNetwork"):
        R2D2(env, policy="q_network")
    with pytest.raises(TypeError, match="R2D2: storage 'replay' is a ReplayStorage, not a Seq"):
        R2D2(env, storage="replay")


def test_mismatched_sequence_length_is_named() -> None:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    spec = {"id": "sequence_replay", "capacity": 100, "sequence_length": 3}
    with pytest.raises(ValueError, match="sequence_length is 3, but burn_in \\+ seq_len = 6"):
        R2D2(env, storage=spec, burn_in=2, seq_len=4, hidden_size=8)


def test_storage_with_another_state_layout_is_named() -> None:
    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    spec = {
        "id": "sequence_replay",
        "capacity": 100,
        "sequence_length": 6,
        "state_shapes": [[1, 8]],
        "state_dtypes": ["float32"],
    }
    with pytest.raises(ValueError, match=r"the storage keeps recurrent states \[\(\(1, 8\)"):
        R2D2(env, storage=spec, burn_in=2, seq_len=4, hidden_size=8)


def test_explore_override_must_advance_the_state() -> None:
    class Lazy(R2D2):
        def explore(self, obs: Any) -> np.ndarray:
            return self.random_actions()

    env = make_vec_env("CartPole-v1", num_envs=1, seed=0)
    agent = Lazy(env, learning_starts=0, burn_in=1, seq_len=2, hidden_size=8)
    with pytest.raises(RuntimeError, match="did not advance policy_state"):
        agent.train(5)


def test_r2d2_exports_with_its_state_and_evaluates(tmp_path: Path) -> None:
    """The recurrent Q-network goes through the same export path as the recurrent
    actor-critics: the ONNX graph takes and returns the state (the export's own sequence
    parity check runs), and the runner follows the agent step for step; evaluation runs the
    memory too."""
    pytest.importorskip("onnxruntime", reason="ONNX export needs onnxruntime (rlkit[export])")
    pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (rlkit[export])")
    from rlkit.export import OnnxPolicy, to_onnx

    agent = _r2d2()
    agent.train(100)
    with torch.no_grad():  # redraw the weights so the greedy action depends on the memory
        generator = torch.Generator().manual_seed(2)
        for p in agent.policy.parameters():
            if p.dim() >= 2:
                p.copy_(2.0 * torch.randn(p.shape, generator=generator) / p[0].numel() ** 0.5)
    result = to_onnx(agent, tmp_path / "r2d2.onnx")
    assert result.parity is not None and result.parity.ok, result.parity
    assert result.parity.state_max_abs_diff is not None
    runner = OnnxPolicy(result.path)
    env = make_vec_env("CartPole-v1", num_envs=2, seed=5)
    obs, _ = env.reset(seed=5)
    state, starts, actions = None, np.ones(2, dtype=bool), []
    for _ in range(60):
        expected, state = agent.act_with_state(obs, state, starts, deterministic=True)
        got = runner.act(obs, episode_start=starts)
        np.testing.assert_array_equal(got, expected)
        actions.extend(got.tolist())
        obs, _, terminated, truncated, _ = env.step(got)
        starts = terminated | truncated
    assert 0.1 < np.mean(actions) < 0.9
    assert agent.evaluate(episodes=2)["episodes"] == 2
