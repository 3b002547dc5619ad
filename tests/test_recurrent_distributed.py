"""Recurrent policies on the distributed prototype: actors carry the state across unrolls and
send the state entering each unroll; the learner replays whole unrolls from it (V-trace)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from rlkit.agents import APPO, IMPALA
from rlkit.distributed import ActorSpec, ActorWorker, PolicyWeights, stack_trajectories
from rlkit.distributed.behaviour import Behaviour, EpsilonGreedy
from rlkit.envs import make_vec_env
from rlkit.policies import LSTMActorCritic

LSTM: dict[str, Any] = {"id": "lstm_actor_critic", "hidden_size": 16}
TINY: dict[str, Any] = {"num_actors": 2, "num_steps": 12, "device": "cpu", "policy": LSTM}


def _env(**kwargs: Any) -> Any:
    return make_vec_env(
        "CartPole-v1", num_envs=2, seed=0, env_kwargs={"max_episode_steps": 7}, **kwargs
    )


def _actor() -> tuple[ActorWorker, LSTMActorCritic]:
    env = _env()
    policy = LSTMActorCritic(env.single_observation_space, env.single_action_space, hidden_size=8)
    spec = ActorSpec(
        actor_id=0,
        env="CartPole-v1",
        num_envs=2,
        num_steps=10,
        seed=3,
        sample_seed=1,
        env_kwargs={"max_episode_steps": 7},
        policy_module=policy,
    )
    actor = ActorWorker(spec)
    actor.set_weights(PolicyWeights(0, {"policy": policy.state_dict()}))
    return actor, policy


def test_unrolls_carry_the_state_and_replay_exactly() -> None:
    """The state entering the second unroll is the one the first left; replaying each unroll
    from its initial state and reset flags gives back the behaviour log-probs; the final and
    bootstrap states are the memory through those steps."""
    actor, policy = _actor()
    first = actor.collect(None, 0).data
    second = actor.collect(None, 0).data
    assert first.recurrent and first.episode_starts is not None
    assert first.episode_starts[0].tolist() == [1.0, 1.0]  # fresh envs
    for a, b in zip(first.bootstrap_state, second.initial_state, strict=True):
        torch.testing.assert_close(a, b)
    assert second.episode_starts is not None
    torch.testing.assert_close(second.episode_starts[0], first.dones[-1].float())
    for data in (first, second):
        steps, envs = data.num_steps, data.num_envs
        rows = data.obs.reshape(steps * envs, -1)  # type: ignore[union-attr]
        log_prob, _, _, _ = policy.evaluate_actions(
            rows,
            data.actions.reshape(-1),
            data.initial_state,
            data.episode_starts.reshape(-1),  # type: ignore[union-attr]
        )
        torch.testing.assert_close(log_prob.reshape(steps, envs), data.log_probs)
    assert len(first.final_steps) == len(first.final_states[0]) > 0
    # the final state of an episode = the state after its step, stepping one env alone
    t, b = (int(x) for x in first.final_steps[0])
    state: Any = tuple(s[b : b + 1] for s in first.initial_state)
    for k in range(t + 1):
        start = first.episode_starts[k, b : b + 1]  # type: ignore[index]
        _, state = policy.action_distribution(first.obs[k, b : b + 1], state, start)  # type: ignore[index]
    for expected, got in zip(state, first.final_states, strict=True):
        torch.testing.assert_close(got[0:1], expected)


def test_stacking_and_columns_keep_the_states() -> None:
    actor, _ = _actor()
    parts = [actor.collect(None, 0), actor.collect(None, 0)]
    batch = stack_trajectories(parts)
    assert batch.initial_state[0].shape[0] == 4
    assert batch.episode_starts is not None and batch.episode_starts.shape == (10, 4)
    sub = batch.columns(torch.tensor([3, 1]))
    torch.testing.assert_close(sub.initial_state[0], batch.initial_state[0][[3, 1]])
    assert len(sub.final_states[0]) == len(sub.final_steps)
    rows = batch.time_major_rows(torch.tensor([1, 3]))
    assert rows[:4].tolist() == [1, 3, 5, 7]


@pytest.mark.parametrize("cls", [IMPALA, APPO])
def test_learner_replays_the_unrolls_from_their_states(cls: type) -> None:
    """Sync mode, before any update: the learner's evaluation of the gathered batch equals the
    actors' behaviour log-probs (same weights, same memory)."""
    agent = cls(_env(), seed=0, mode="sync", **TINY)
    trajectories, _ = agent.gather_unrolls()
    batch = stack_trajectories(trajectories).to(agent.device)
    batch = batch.map_obs(agent.preprocess)
    with torch.no_grad():
        ev = agent.evaluate_batch(batch, augment=False)
    torch.testing.assert_close(ev.log_probs, batch.log_probs, atol=1e-5, rtol=1e-5)
    agent.train(96, progress_bar=False)
    assert agent.num_updates > 0
    agent.close()


def test_sync_recurrent_runs_are_identical_on_local_and_process_backends() -> None:
    agents = []
    for backend in ("local", "process"):
        agent = IMPALA(_env(), seed=0, backend=backend, compute="reference", **TINY)
        agent.train(144, progress_bar=False)
        agents.append(agent)
        agent.close()
    for (k, a), b in zip(
        agents[0].policy.state_dict().items(), agents[1].policy.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_a_behaviour_that_changes_action_distribution_must_carry_the_state() -> None:
    env = _env()
    policy = LSTMActorCritic(env.single_observation_space, env.single_action_space)
    with pytest.raises(TypeError, match="changes action_distribution but not act_distribution"):
        EpsilonGreedy(0.1).act_distribution(policy, torch.zeros(2, 4), None, torch.ones(2))
    dist, state = Behaviour().act_distribution(policy, torch.zeros(2, 4), None, torch.ones(2))
    assert state is not None and dist.sample().shape == (2,)
