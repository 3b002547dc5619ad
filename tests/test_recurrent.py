"""Recurrent policies: the state contract, reset flags, sequence storage, training plumbing."""

from __future__ import annotations

import logging
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit.agents import A2C, PPO, TRPO
from rlkit.envs import CartPoleNoVel, CueRecall, make_vec_env
from rlkit.policies import (
    POLICIES,
    ActorCritic,
    GRUActorCritic,
    LSTMActorCritic,
    RecurrentCore,
    StateSpec,
    TransformerActorCritic,
    TransformerCore,
)
from rlkit.policies.state import reset_rows
from rlkit.storages import RolloutStorage

CARTPOLE = gym.make("CartPole-v1")


# --------------------------------------------------------------------------- the contract
@pytest.mark.parametrize(
    ("cls", "names"),
    [
        (LSTMActorCritic, ["actor_h", "actor_c", "critic_h", "critic_c"]),
        (GRUActorCritic, ["actor_h", "critic_h"]),
    ],
)
def test_state_spec_and_initial_state(cls: Any, names: list[str]) -> None:
    policy = cls(CARTPOLE.observation_space, CARTPOLE.action_space, hidden_size=8, num_layers=2)
    assert policy.recurrent
    specs = policy.state_spec()
    assert [s.name for s in specs] == names
    assert all(s.shape == (2, 8) and s.dtype == torch.float32 for s in specs)
    state = policy.initial_state(3)
    assert isinstance(state, tuple) and len(state) == len(names)
    assert all(t.shape == (3, 2, 8) and not t.any() for t in state)


def test_feedforward_policy_has_no_state() -> None:
    policy = ActorCritic(CARTPOLE.observation_space, CARTPOLE.action_space)
    assert not policy.recurrent and policy.state_spec() == () and policy.initial_state(4) is None


def test_registered_ids() -> None:
    assert POLICIES.get("lstm_actor_critic") is LSTMActorCritic
    assert POLICIES.get("gru_actor_critic") is GRUActorCritic


def test_shared_critic_has_only_the_actor_state() -> None:
    policy = LSTMActorCritic(CARTPOLE.observation_space, CARTPOLE.action_space, critic="shared")
    assert [s.name for s in policy.state_spec()] == ["actor_h", "actor_c"]


def test_state_of_the_wrong_shape_is_named() -> None:
    policy = GRUActorCritic(CARTPOLE.observation_space, CARTPOLE.action_space, hidden_size=8)
    bad = (torch.zeros(2, 1, 7), torch.zeros(2, 1, 8))
    with pytest.raises(ValueError, match=r"'actor_h' has shape \(2, 1, 7\), expected \(2, 1, 8\)"):
        policy(torch.zeros(2, 4), bad)
    with pytest.raises(ValueError, match="5 observation rows is not a whole number of steps"):
        policy(torch.zeros(5, 4), policy.initial_state(2))


def test_bad_arguments_are_named() -> None:
    with pytest.raises(
        ValueError, match="critic must be one of 'separate', 'shared', 'feedforward', got 'both'"
    ):
        LSTMActorCritic(CARTPOLE.observation_space, CARTPOLE.action_space, critic="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind must be 'lstm' or 'gru'"):
        RecurrentCore("rnn", 4, 8, 1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reset flags
def _hand_gru() -> RecurrentCore:
    """A 1-unit GRU whose update is ``h' = (tanh(x) + h) / 2``: every weight 0 except the
    candidate's input weight (1), so r and z are sigmoid(0) = 1/2 and n = tanh(x)."""
    core = RecurrentCore("gru", 1, 1, 1)
    with torch.no_grad():
        for p in core.rnn.parameters():
            p.zero_()
        core.rnn.weight_ih_l0[2, 0] = 1.0  # rows: reset, update, new
    return core


def test_reset_flag_hand_computed() -> None:
    """Two envs, three steps; env 1 starts an episode at step 2. The state entering a flagged
    step is zeroed first, so env 1's step 2 sees h = 0, not its carried memory."""
    core = _hand_gru()
    x = torch.ones(3, 2, 1)
    starts = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    h0 = (torch.tensor([[[0.4]], [[0.4]]]),)
    out, (h,) = core(x, h0, starts)
    a = math.tanh(1.0) / 2
    env0 = [a + 0.2, a + (a + 0.2) / 2]
    env0.append(a + env0[1] / 2)
    env1 = [env0[0], env0[1], a]  # reset before step 2: h = 0 -> tanh(1) / 2
    expected = torch.tensor([env0, env1]).T.unsqueeze(-1)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(h[:, 0, 0], torch.tensor([env0[2], env1[2]]))


def test_flag_at_the_first_step_resets_too() -> None:
    core = _hand_gru()
    out, _ = core(torch.ones(1, 1, 1), (torch.full((1, 1, 1), 5.0),), torch.ones(1, 1))
    torch.testing.assert_close(out.flatten(), torch.tensor([math.tanh(1.0) / 2]))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_sequence_run_equals_steps(kind: str) -> None:
    """Cutting the sequence at resets (one core call per stretch) equals stepping one by one."""
    torch.manual_seed(0)
    core = RecurrentCore(kind, 3, 5, 2)  # type: ignore[arg-type]
    steps, batch = 9, 4
    x = torch.randn(steps, batch, 3)
    starts = (torch.rand(steps, batch) < 0.3).float()
    state = tuple(torch.randn(batch, 2, 5) for _ in core.state_spec("a"))
    out, final = core(x, state, starts)
    stepped = []
    s = state
    for t in range(steps):
        y, s = core(x[t : t + 1], s, starts[t])
        stepped.append(y)
    torch.testing.assert_close(out, torch.cat(stepped))
    for a, b in zip(final, s, strict=True):
        torch.testing.assert_close(a, b)
    # the training path (padded segments, no final state) gives the same outputs
    padded, none = core(x, state, starts, need_state=False)
    assert none is None
    torch.testing.assert_close(padded, out)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_padded_layout_follows_the_starts(kind: str) -> None:
    """The training path keeps the segment layout of its last call: a call with other starts,
    or the same tensor changed in place, must not reuse it."""
    torch.manual_seed(0)
    core = RecurrentCore(kind, 3, 5, 1)  # type: ignore[arg-type]
    steps, batch = 8, 3
    x = torch.randn(steps, batch, 3)
    state = tuple(torch.randn(batch, 1, 5) for _ in core.state_spec("a"))

    def stepped(starts: torch.Tensor) -> torch.Tensor:
        outs, s = [], state
        for t in range(steps):
            y, s = core(x[t : t + 1], s, starts[t])
            outs.append(y)
        return torch.cat(outs)

    starts = torch.zeros(steps, batch)
    starts[3, 0] = starts[5, 2] = 1.0
    for change in ((6, 1), (2, 0), (3, 0)):  # another start each time, in place
        out, _ = core(x, state, starts, need_state=False)
        torch.testing.assert_close(out, stepped(starts))
        starts[change] = 1.0 - starts[change]
    other = torch.zeros(steps, batch)
    other[1, 1] = 1.0
    torch.testing.assert_close(core(x, state, other, need_state=False)[0], stepped(other))


def test_reset_rows() -> None:
    state = (torch.ones(3, 2), torch.full((3, 1, 2), 2.0))
    out = reset_rows(state, torch.tensor([0.0, 1.0, 0.0]))
    assert out[0][:, 0].tolist() == [1.0, 0.0, 1.0]
    assert out[1][:, 0, 0].tolist() == [2.0, 0.0, 2.0]


# --------------------------------------------------------------------------- storage
def _filled_storage(num_steps: int, num_envs: int) -> RolloutStorage:
    space = gym.spaces.Box(-1, 1, (2,), np.float32)
    storage = RolloutStorage(
        space,
        gym.spaces.Discrete(2),
        num_steps,
        num_envs,
        state_shapes=[[1, 3]],
    )
    for t in range(num_steps):
        code = torch.arange(num_envs, dtype=torch.float32) + 100 * t  # 100 t + env
        storage.add(
            torch.stack([code, -code], dim=1),
            torch.zeros(num_envs, dtype=torch.int64),
            code,
            torch.zeros(num_envs),
            code,
            code,
            (code % 3 == 0).float(),
            state=(code.reshape(-1, 1, 1).expand(-1, 1, 3),),
        )
    storage.advantages = storage.rewards.clone()
    storage.returns = storage.rewards.clone()
    return storage


@pytest.mark.parametrize(
    ("num_envs", "seq_len", "batch_size"), [(1, None, 4), (3, None, 24), (3, 4, 8), (4, 2, 2)]
)
def test_sequence_minibatches_are_whole_chunks(
    num_envs: int, seq_len: int | None, batch_size: int
) -> None:
    storage = _filled_storage(8, num_envs)
    length = seq_len or 8
    seen: list[float] = []
    for mb in storage.sequence_minibatches(batch_size, seq_len, torch.Generator().manual_seed(0)):
        assert mb.seq_len == length
        per_batch = mb.states[0].shape[0]
        assert per_batch <= max(1, batch_size // length)
        codes = mb.advantages
        grid = codes.reshape(length, per_batch)  # time-major
        for m in range(per_batch):
            column = grid[:, m]
            env, first = int(column[0]) % 100, int(column[0]) // 100
            # consecutive steps of one env, starting at a chunk boundary
            assert first % length == 0
            assert column.tolist() == [100 * (first + k) + env for k in range(length)]
            # the stored state at the chunk's first step
            assert mb.states[0][m].flatten().tolist() == [float(column[0])] * 3
        assert mb.obs[:, 0].tolist() == codes.tolist()  # type: ignore[index]
        for stored in (mb.returns, mb.old_values, mb.old_log_probs):
            assert stored.tolist() == codes.tolist()
        assert mb.episode_starts.tolist() == [float(c % 3 == 0) for c in codes.tolist()]
        seen += codes.tolist()
    # every sample exactly once per pass
    assert sorted(seen) == sorted(storage.rewards.flatten().tolist())


def test_sequence_length_must_divide_the_rollout() -> None:
    with pytest.raises(ValueError, match="seq_len=3 must divide the 8 stored steps"):
        next(_filled_storage(8, 2).sequence_minibatches(8, 3))


def test_storage_with_state_needs_it() -> None:
    storage = RolloutStorage(
        gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(2), 4, 1, state_shapes=[[2]]
    )
    z = torch.zeros(1)
    with pytest.raises(ValueError, match="pass state= with one tensor each"):
        storage.add(torch.zeros(1, 2), z.long(), z, z, z, z, z)
    assert "state.0" in storage.state_dict()


def test_sequence_batches_cannot_be_cut_by_rows() -> None:
    mb = next(_filled_storage(4, 2).sequence_minibatches(8))
    with pytest.raises(ValueError, match="cannot be split by rows"):
        mb.select(torch.tensor([0]))


# --------------------------------------------------------------------------- training plumbing
def _small_ppo(env_id: str = "CartPole-v1", num_envs: int = 3, **kw: Any) -> PPO:
    env = make_vec_env(env_id, num_envs=num_envs, seed=0, env_kwargs=kw.pop("env_kwargs", None))
    settings = {"num_steps": 24, "batch_size": 24, "num_epochs": 1, "seed": 0, "num_threads": 1}
    policy = kw.pop("policy", {"id": "lstm_actor_critic", "hidden_size": 16})
    return PPO(env, policy=policy, **{**settings, **kw})


@pytest.mark.parametrize("seq_len", [None, 6])
@pytest.mark.parametrize("num_envs", [1, 3])
def test_stored_sequences_replay_the_rollout(num_envs: int, seq_len: int | None) -> None:
    """Re-evaluating the stored chunks (from their stored states, resetting at the stored
    flags) gives back exactly the log-probs and values computed while acting: terminations
    (CueRecall ends every 5 steps) and truncations (CartPole cut at 7 steps) included."""
    for env_id, kwargs in (
        ("rlkit/CueRecall-v0", {"memory_length": 3}),
        ("CartPole-v1", {"max_episode_steps": 7}),
    ):
        agent = _small_ppo(env_id, num_envs, env_kwargs=kwargs, seq_len=seq_len)
        agent.collect_rollout()
        assert agent.storage.episode_starts[1:].any()  # resets inside the rollout
        batches = list(agent.storage.sequence_minibatches(8, seq_len))
        for mb in batches:
            with torch.no_grad():
                ev = agent.evaluate_minibatch(mb)
            torch.testing.assert_close(ev.log_prob, mb.old_log_probs, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(ev.value, mb.old_values, atol=1e-5, rtol=1e-5)


def test_truncation_bootstraps_from_the_memory_through_the_step() -> None:
    """A truncated step's reward carries gamma * V(final obs) with the state after the step
    (not a fresh state)."""
    agent = _small_ppo(num_envs=2, env_kwargs={"max_episode_steps": 5}, normalize_obs=False)
    states: list[Any] = []
    finals: list[Any] = []
    original = agent._final_obs

    def spy(info: dict[str, Any], dones: np.ndarray) -> Any:
        states.append(agent.policy_state)
        out = original(info, dones)
        finals.append((out, dones.copy()))
        return out

    agent._final_obs = spy  # type: ignore[method-assign]
    agent.collect_rollout()
    s = agent.storage
    truncated_steps = [int(t) for t in torch.nonzero(s.dones[:, 0]).flatten()]
    assert truncated_steps and len(states) == len(truncated_steps)
    t = truncated_steps[0]
    final, _ = finals[0]
    with torch.no_grad():
        rows = tuple(x[:1] for x in states[0])
        bootstrap = agent.policy.value(final[:1], rows, None)
        fresh = agent.policy.value(final[:1], None, None)
    assert float(s.rewards[t, 0]) == pytest.approx(1.0 + agent.config.gamma * float(bootstrap))
    assert float(bootstrap) != pytest.approx(float(fresh))


def test_state_carries_across_rollouts_and_resets_at_episode_starts() -> None:
    agent = _small_ppo(num_envs=2)
    agent.collect_rollout()
    carried = agent.policy_state
    assert carried is not None and all(t.abs().sum() > 0 for t in carried)
    agent.storage.reset()
    agent.collect_rollout()
    # the state stored for the next rollout's first step is the one carried over
    for stored, kept in zip(agent.storage.states, carried, strict=True):
        torch.testing.assert_close(stored[0], kept)


def test_a2c_and_gru_train() -> None:
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = A2C(env, policy="gru_actor_critic", seed=0, num_threads=1).train(
        100, progress_bar=False
    )
    assert agent.num_updates > 0 and agent.storage.states[0].shape[2:] == (1, 64)


def test_backends_agree_on_recurrent_training() -> None:
    """A recurrent policy runs the autograd path on every backend: the same run on reference
    and fast ends in the same weights up to float rounding."""
    runs = []
    for backend in ("reference", "fast"):
        agent = _small_ppo(compute=backend, num_epochs=2, seq_len=8, batch_size=16)
        agent.train(144, progress_bar=False)
        runs.append(torch.cat([p.detach().flatten() for p in agent.policy.parameters()]))
        report = agent.backend_report.as_dict()["policy evaluation"]
        assert str(report["implementation"]).startswith("nn.Module")
    torch.testing.assert_close(runs[0], runs[1], atol=1e-5, rtol=1e-4)


def test_act_with_state_and_act_refusal() -> None:
    agent = _small_ppo(num_envs=2)
    obs, _ = agent.env.reset(seed=0)
    with pytest.raises(TypeError, match="policy is recurrent; use act_with_state"):
        agent.act(obs)
    actions, state = agent.act_with_state(obs, deterministic=True)
    assert actions.shape == (2,) and state is not None and state[0].shape == (2, 1, 16)
    again, state2 = agent.act_with_state(obs, state, episode_start=[0, 0], deterministic=True)
    assert again.shape == (2,) and not torch.equal(state2[0], state[0])
    single, one = agent.act_with_state(obs[0], deterministic=True)
    assert np.ndim(single) == 0 and one is not None and one[0].shape == (1, 1, 16)
    result = agent.evaluate(episodes=2)
    assert result["episodes"] == 2.0


def test_explore_override_must_advance_the_state() -> None:
    class Forgetful(PPO):
        def explore(self, obs: Any) -> Any:
            out = self.policy(obs, self.policy_state, None)
            actions = out.dist.sample()
            return actions, out.dist.log_prob(actions), out.value

    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = Forgetful(env, policy="lstm_actor_critic", num_steps=8, batch_size=16)
    with pytest.raises(RuntimeError, match="explore did not advance policy_state"):
        agent.collect_rollout()


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="seq_len=5 must divide num_steps=24"):
        _small_ppo(seq_len=5)
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    with pytest.raises(TypeError, match="TRPO does not train recurrent policies"):
        TRPO(env, policy="lstm_actor_critic")


def test_a_batch_size_below_the_rollout_without_seq_len_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = make_vec_env("rlkit/CartPoleNoVel-v1", num_envs=2, seed=0)
    with caplog.at_level(logging.WARNING, logger="rlkit"):
        PPO(env, num_steps=48, batch_size=20, policy="lstm_actor_critic")
    assert "batch_size=20 is below num_steps=48 and seq_len is unset" in caplog.text
    assert "seq_len=16 (a divisor of num_steps)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rlkit"):
        PPO(env, num_steps=48, batch_size=20, seq_len=16, policy="lstm_actor_critic")
        PPO(env, num_steps=48, batch_size=96, policy="lstm_actor_critic")
    assert "seq_len is unset" not in caplog.text


# --------------------------------------------------------------------------- testbeds
def test_cartpole_novel_masks_the_velocities() -> None:
    env = gym.make("rlkit/CartPoleNoVel-v1")
    full = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=3)
    ref, _ = full.reset(seed=3)
    assert obs.shape == (2,) and env.observation_space.shape == (2,)
    np.testing.assert_array_equal(obs, ref[[0, 2]])
    for _ in range(5):
        obs, r, term, trunc, _ = env.step(1)
        ref, r2, term2, trunc2, _ = full.step(1)
        np.testing.assert_array_equal(obs, ref[[0, 2]])
        assert (r, term, trunc) == (r2, term2, trunc2)
    assert env.spec is not None and env.spec.max_episode_steps == 500
    assert isinstance(env.unwrapped, CartPoleNoVel)


@pytest.mark.parametrize(
    ("masked_id", "full_id", "kept", "action"),
    [
        ("rlkit/PendulumNoVel-v1", "Pendulum-v1", [0, 1], np.array([0.7], np.float32)),
        ("rlkit/MountainCarContinuousNoVel-v0", "MountainCarContinuous-v0", [0], np.ones(1)),
    ],
)
def test_continuous_novel_envs_drop_the_velocity(
    masked_id: str, full_id: str, kept: list[int], action: np.ndarray
) -> None:
    env, full = gym.make(masked_id), gym.make(full_id)
    obs, _ = env.reset(seed=5)
    ref, _ = full.reset(seed=5)
    assert env.observation_space.shape == (len(kept),)
    np.testing.assert_allclose(obs, ref[kept])
    for _ in range(5):
        obs, r, term, trunc, _ = env.step(action)
        ref, r2, term2, trunc2, _ = full.step(action)
        np.testing.assert_allclose(obs, ref[kept])
        assert (r, term, trunc) == (r2, term2, trunc2)
    assert env.spec is not None and full.spec is not None
    assert env.spec.max_episode_steps == full.spec.max_episode_steps


def test_cue_recall_rewards_memory_only() -> None:
    env = CueRecall(memory_length=2, num_cues=3)
    obs, info = env.reset(seed=1)
    cue = info["cue"]
    assert obs[cue] == 1.0 and obs.sum() == 1.0
    for _ in range(2):  # the blank steps
        obs, r, term, _, _ = env.step(0)
        assert not obs.any() and r == 0.0 and not term
    obs, r, term, _, _ = env.step((cue + 1) % 3)  # the query step (shown after the blanks)
    assert r == 0.0 and not term and obs[-1] == 1.0
    _, r, term, _, _ = env.step(cue)
    assert r == 1.0 and term


def test_cue_recall_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="memory_length must be >= 0, got -1"):
        CueRecall(memory_length=-1)
    with pytest.raises(ValueError, match="num_cues must be >= 2, got 1"):
        CueRecall(num_cues=1)
    with pytest.raises(TypeError, match="memory_length must be an int"):
        CueRecall(memory_length=2.5)  # type: ignore[arg-type]


def test_state_spec_zeros() -> None:
    spec = StateSpec("h", (2, 3), torch.float64)
    z = spec.zeros(4)
    assert z.shape == (4, 2, 3) and z.dtype == torch.float64


# --------------------------------------------------------------------------- transformer
def _transformer(layers: int = 2, context: int = 4, gating: bool = False) -> Any:
    torch.manual_seed(0)
    return TransformerCore(
        3, d_model=8, num_layers=layers, num_heads=2, context=context, gating=gating
    )


def _zeros(core: Any, batch: int) -> tuple[torch.Tensor, ...]:
    return tuple(spec.zeros(batch) for spec in core.state_spec("x"))


@pytest.mark.parametrize("gating", [False, True])
def test_transformer_chunks_equal_steps(gating: bool) -> None:
    """One chunk, two chunks and single steps give the same outputs and the same state
    (cached keys/values of the window, zeroed where they belong to an earlier episode)."""
    core = _transformer(gating=gating)
    steps, batch = 11, 3
    x = torch.randn(steps, batch, 3)
    starts = (torch.rand(steps, batch) < 0.25).float()
    out, final = core(x, _zeros(core, batch), starts)
    state: Any = _zeros(core, batch)
    stepped = []
    for t in range(steps):
        y, state = core(x[t : t + 1], state, starts[t])
        stepped.append(y)
    torch.testing.assert_close(torch.cat(stepped), out)
    first, mid = core(x[:5], _zeros(core, batch), starts[:5])
    second, end = core(x[5:], mid, starts[5:])
    torch.testing.assert_close(torch.cat([first, second]), out)
    for a, b, c in zip(final, state, end, strict=True):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)
    padded, none = core(x, _zeros(core, batch), starts, need_state=False)
    assert none is None
    torch.testing.assert_close(padded, out)


def test_transformer_never_attends_across_an_episode_start() -> None:
    core = _transformer()
    x = torch.randn(8, 1, 3)
    starts = torch.zeros(8, 1)
    starts[5] = 1.0
    out, _ = core(x, _zeros(core, 1), starts)
    fresh, _ = core(x[5:], _zeros(core, 1), torch.zeros(3, 1))
    torch.testing.assert_close(out[5:], fresh)


def test_transformer_sees_only_its_window() -> None:
    """One layer with a 4-step window: the output at step t depends on steps t-3..t only."""
    core = _transformer(layers=1, context=4)
    x = torch.randn(7, 1, 3)
    changed = x.clone()
    changed[0] += 5.0
    zeros = torch.zeros(7, 1)
    a, _ = core(x, _zeros(core, 1), zeros)
    b, _ = core(changed, _zeros(core, 1), zeros)
    assert not torch.allclose(a[3], b[3])  # step 0 is inside step 3's window
    torch.testing.assert_close(a[4:], b[4:])  # and outside step 4's


def test_transformer_policy_contract() -> None:
    policy = TransformerActorCritic(
        CARTPOLE.observation_space, CARTPOLE.action_space, d_model=8, num_heads=2, context=5
    )
    names = [s.name for s in policy.state_spec()]
    assert names == ["actor_layer0_keys", "actor_layer0_values", "actor_valid"]
    assert policy.state_spec()[0].shape == (4, 8)
    with pytest.raises(ValueError, match="d_model=6 must be a multiple of num_heads=4"):
        TransformerActorCritic(CARTPOLE.observation_space, CARTPOLE.action_space, d_model=6)
    with pytest.raises(ValueError, match="context must be an integer >= 2, got 1"):
        TransformerActorCritic(CARTPOLE.observation_space, CARTPOLE.action_space, context=1)
    assert POLICIES.get("transformer_actor_critic") is TransformerActorCritic


def test_ppo_trains_a_transformer_policy() -> None:
    agent = _small_ppo(
        "rlkit/CueRecall-v0",
        env_kwargs={"memory_length": 3},
        policy={"id": "transformer_actor_critic", "d_model": 16, "context": 8},
        seq_len=6,
    )
    agent.train(96, progress_bar=False)
    assert agent.num_updates > 0
    agent.collect_rollout()
    for mb in agent.storage.sequence_minibatches(12, 6):
        with torch.no_grad():
            ev = agent.evaluate_minibatch(mb)
        torch.testing.assert_close(ev.log_prob, mb.old_log_probs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_single_step_cell_equals_the_core(kind: str) -> None:
    """Acting (one step) uses the cell equations on the core's weights: same as nn.LSTM/GRU."""
    torch.manual_seed(1)
    core = RecurrentCore(kind, 3, 6, 2)  # type: ignore[arg-type]
    x = torch.randn(1, 4, 3)
    state = tuple(torch.randn(4, 2, 6) for _ in core.state_spec("a"))
    out, new = core(x, state, torch.zeros(1, 4))
    ref_out, ref_new = core._call(x, state)
    torch.testing.assert_close(out, ref_out)
    for a, b in zip(new, ref_new, strict=True):
        torch.testing.assert_close(a, b)


def test_dict_observations_train_and_replay() -> None:
    """A Dict observation space (the default dict encoder in front of the LSTM): the stored
    chunks replay the rollout, and acting with state takes dict observations."""
    agent = _small_ppo("rlkit/BitFlipping-v0", num_envs=2, env_kwargs={"n_bits": 4})
    agent.collect_rollout()
    for mb in agent.storage.sequence_minibatches(24, None):
        assert isinstance(mb.obs, dict)
        with torch.no_grad():
            ev = agent.evaluate_minibatch(mb)
        torch.testing.assert_close(ev.log_prob, mb.old_log_probs, atol=1e-5, rtol=1e-5)
    agent.storage.reset()
    agent.train(96, progress_bar=False)
    obs, _ = agent.env.reset(seed=1)
    actions, state = agent.act_with_state(obs, deterministic=True)
    assert actions.shape == (2,) and state is not None
