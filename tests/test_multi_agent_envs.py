"""Multi-agent envs and the on-policy parts they need, on real PettingZoo envs: the
:class:`~rlkit.envs.multi_agent.AgentsEnv` adapter, agent rows
(:class:`~rlkit.envs.agent_rows.AgentRowsVecEnv`), GAE over active steps, masked categoricals,
mask checks in the on-policy prototype, and the normalisers that skip flag keys."""

from __future__ import annotations

import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.agents import PPO
from rlkit.distributions import Categorical, DiagGaussian, MultiCategorical
from rlkit.distributions.base import MASKED_LOGIT, action_mask_of, mask_logits
from rlkit.envs import make_vec_env
from rlkit.envs.agent_rows import AgentRowsVecEnv, is_multi_agent, make_multi_agent_vec_env
from rlkit.envs.multi_agent import (
    AGENT_REWARDS,
    AGENT_TERMINATED,
    AGENT_TRUNCATED,
    AgentsEnv,
)
from rlkit.normalization import UNNORMALIZED_KEYS, ObsNormalizer, ValueNormalizer
from rlkit.policies import ActorCritic
from rlkit.prototypes.on_policy import check_action_masks, normalize
from rlkit.storages.rollout import RolloutStorage, compute_gae, compute_gae_active

TICTACTOE = "pettingzoo.classic:tictactoe_v3"
SPREAD = "mpe2:simple_spread_v3"


def _spread() -> Any:
    pytest.importorskip("mpe2")
    from mpe2 import simple_spread_v3

    return simple_spread_v3


def _tictactoe() -> Any:
    pytest.importorskip("pettingzoo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pettingzoo.classic import tictactoe_v3
    return tictactoe_v3


# --------------------------------------------------------------------------- a custom env
def _leave_early_cls() -> type:
    """A PettingZoo ParallelEnv class (defined at first use, so that pettingzoo stays
    optional): agents ``a0`` and ``a2`` (observations of size 3: offset + index, step, last
    action) run to ``max_steps`` and are truncated, ``a1`` (observation of size 2) terminates at
    ``death_step``. Agent ``i``'s reward is ``10 ** i * (action + 1)``; actions for agents
    that are not live raise."""
    pytest.importorskip("pettingzoo")
    from pettingzoo import ParallelEnv

    class _LeaveEarly(ParallelEnv):  # type: ignore[misc]
        metadata = {"name": "leave_early_v0", "render_modes": []}

        def __init__(self, death_step: int = 2, max_steps: int = 5) -> None:
            self.possible_agents = ["a0", "a1", "a2"]
            self.agents: list[str] = []
            self.death_step, self.max_steps = death_step, max_steps
            self._obs_spaces = {
                a: spaces.Box(-np.inf, np.inf, shape=(2 if a == "a1" else 3,), dtype=np.float32)
                for a in self.possible_agents
            }
            self._act_spaces = {a: spaces.Discrete(3) for a in self.possible_agents}
            self._rng = np.random.default_rng()
            self.t, self.offset = 0, 0.0

        def observation_space(self, agent: str) -> spaces.Space[Any]:
            return self._obs_spaces[agent]

        def action_space(self, agent: str) -> spaces.Space[Any]:
            return self._act_spaces[agent]

        def _obs(self, agent: str, action: int) -> np.ndarray:
            i = self.possible_agents.index(agent)
            full = np.array([self.offset + i, self.t, action], dtype=np.float32)
            return full[: self._obs_spaces[agent].shape[0]]

        def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
            if seed is not None:
                self._rng = np.random.default_rng(seed)
            self.agents = list(self.possible_agents)
            self.t = 0
            self.offset = float(self._rng.integers(0, 1000))
            return {a: self._obs(a, 0) for a in self.agents}, {a: {} for a in self.agents}

        def step(self, actions: dict[str, Any]) -> Any:
            if set(actions) != set(self.agents):
                raise ValueError(f"actions for {sorted(actions)}, live agents {self.agents}")
            for agent, action in actions.items():
                if not self._act_spaces[agent].contains(action):
                    raise ValueError(f"bad action {action!r} for {agent}")
            self.t += 1
            idx = self.possible_agents.index
            rewards = {a: float(10 ** idx(a) * (int(act) + 1)) for a, act in actions.items()}
            terms = {a: a == "a1" and self.t >= self.death_step for a in self.agents}
            truncs = {a: a != "a1" and self.t >= self.max_steps for a in self.agents}
            obs = {a: self._obs(a, int(act)) for a, act in actions.items()}
            infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
            self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
            return obs, rewards, terms, truncs, infos

    return _LeaveEarly


# --------------------------------------------------------------------------- 1. API tests
def test_pettingzoo_api_tests_pass_on_adapted_envs() -> None:
    spread = _spread()
    tictactoe = _tictactoe()
    from pettingzoo.test import api_test, parallel_api_test

    parallel_api_test(spread.parallel_env(), num_cycles=30)
    api_test(tictactoe.env(), num_cycles=30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(_leave_early_cls()(), num_cycles=20)
    assert not [w for w in caught if "agent" in str(w.message).lower()], [
        str(w.message) for w in caught
    ]


# --------------------------------------------------------------------------- 2. simple_spread
def test_agents_env_simple_spread_matches_raw_pettingzoo() -> None:
    spread = _spread()
    env = AgentsEnv(spread.parallel_env(max_cycles=4))
    raw = spread.parallel_env(max_cycles=4)
    agents = raw.possible_agents
    assert env.agents == agents and len(agents) == 3

    space = env.observation_space
    assert isinstance(space, spaces.Dict)
    assert set(space.spaces) == {"obs", "state", "active"}  # MPE gives no action masks
    assert space["obs"].shape == (3, 18) and space["state"].shape == (3, 54)
    assert env.action_space == spaces.MultiDiscrete([5, 5, 5])

    obs, info = env.reset(seed=7)
    raw_obs, _ = raw.reset(seed=7)
    rng = np.random.default_rng(0)
    for t in range(1, 5):
        np.testing.assert_array_equal(obs["obs"], np.stack([raw_obs[a] for a in agents]))
        np.testing.assert_allclose(obs["state"], np.broadcast_to(raw.state(), (3, 54)), rtol=1e-6)
        np.testing.assert_array_equal(obs["active"], np.ones((3, 1), dtype=np.float32))
        assert "action_mask" not in obs
        actions = rng.integers(0, 5, size=3)
        obs, reward, terminated, truncated, info = env.step(actions)
        raw_obs, raw_rew, raw_term, raw_trunc, _ = raw.step(
            {a: int(actions[i]) for i, a in enumerate(agents)}
        )
        expected = np.array([raw_rew[a] for a in agents])
        np.testing.assert_allclose(info[AGENT_REWARDS], expected)
        assert reward == pytest.approx(expected.sum())
        if t < 4:
            assert not terminated and not truncated
            assert not info[AGENT_TRUNCATED].any() and not info[AGENT_TERMINATED].any()
    # max_cycles reached: a truncation, not a termination
    assert all(raw_trunc.values()) and not any(raw_term.values())
    assert truncated is True and terminated is False
    assert info[AGENT_TRUNCATED].tolist() == [True, True, True]
    assert not info[AGENT_TERMINATED].any()
    np.testing.assert_array_equal(obs["obs"], np.stack([raw_obs[a] for a in agents]))
    np.testing.assert_array_equal(obs["active"], np.zeros((3, 1), dtype=np.float32))
    env.close()
    raw.close()


def test_agents_env_pads_unequal_observations_and_takes_box_actions() -> None:
    _spread()
    from mpe2 import simple_tag_v3

    env = AgentsEnv(simple_tag_v3.parallel_env(max_cycles=3))
    raw = simple_tag_v3.parallel_env(max_cycles=3)
    obs, _ = env.reset(seed=2)
    raw_obs, _ = raw.reset(seed=2)
    sizes = {raw_obs[a].size for a in env.agents}
    assert len(sizes) == 2 and env.observation_space["obs"].shape == (4, max(sizes))
    for i, agent in enumerate(env.agents):  # zero-padded to the largest agent's size
        size = raw_obs[agent].size
        np.testing.assert_array_equal(obs["obs"][i, :size], raw_obs[agent])
        assert not obs["obs"][i, size:].any()
    env.close()
    raw.close()

    # continuous actions: a Box per row, passed through unchanged
    kwargs = {"continuous_actions": True, "max_cycles": 3}
    vec = make_vec_env(SPREAD, num_envs=1, seed=4, env_kwargs=kwargs)
    assert vec.single_action_space == spaces.Box(0.0, 1.0, shape=(5,), dtype=np.float32)
    raw = _spread().parallel_env(**kwargs)
    raw.reset(seed=4)
    rng = np.random.default_rng(0)
    for _ in range(2):
        actions = rng.uniform(0.0, 1.0, size=(3, 5)).astype(np.float32)
        _, rewards, _, _, _ = vec.step(actions)
        _, raw_rew, _, _, _ = raw.step(dict(zip(raw.possible_agents, actions, strict=True)))
        np.testing.assert_allclose(rewards, [raw_rew[a] for a in raw.possible_agents])
    vec.close()
    raw.close()


def test_agents_env_refuses_a_gymnasium_env() -> None:
    with pytest.raises(TypeError, match="expected a PettingZoo env"):
        AgentsEnv(gym.make("CartPole-v1"))


# --------------------------------------------------------------------------- 3. tic-tac-toe
def _board_obs(mine: list[int], theirs: list[int]) -> np.ndarray:
    """A player's flattened tic-tac-toe observation (square ``p`` is entries ``2p`` (own mark)
    and ``2p + 1`` (the opponent's))."""
    out = np.zeros(18, dtype=np.float32)
    out[[2 * p for p in mine]] = 1.0
    out[[2 * p + 1 for p in theirs]] = 1.0
    return out


def test_tictactoe_rows_turns_masks_and_a_won_game() -> None:
    _tictactoe()
    env = make_vec_env(TICTACTOE, num_envs=2, seed=0)
    assert isinstance(env, AgentRowsVecEnv) and is_multi_agent(env)
    assert env.num_envs == 4 and env.num_agents == 2
    assert env.single_action_space == spaces.Discrete(9)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["agent_id"], np.tile(np.eye(2), (2, 1)))

    # copy 0: player_1 plays 0, 1, 2 (a winning line: squares 0-1-2) against 3, 4;
    # copy 1: a game still open after five moves
    game0, game1 = [0, 3, 1, 4, 2], [4, 0, 8, 2, 1]
    boards: list[list[int]] = [[], []]  # squares taken, per copy
    for t in range(5):
        mover = t % 2  # player_1 moves on even turns
        expected_active = np.zeros(4, dtype=np.float32)
        expected_active[[mover, 2 + mover]] = 1.0
        np.testing.assert_array_equal(obs["active"].ravel(), expected_active)
        for copy in range(2):
            legal = np.ones(9, dtype=np.float32)
            legal[boards[copy]] = 0.0
            np.testing.assert_array_equal(obs["action_mask"][2 * copy + mover], legal)
        actions = np.array([0, 0, 0, 0])
        actions[mover], actions[2 + mover] = game0[t], game1[t]
        boards[0].append(game0[t])
        boards[1].append(game1[t])
        obs, rewards, terminated, truncated, info = env.step(actions)
        if t < 4:
            assert not rewards.any() and not terminated.any() and not truncated.any()
            assert "episode" not in info

    # the winning step: player_1 (row 0) +1, player_2 (row 1, inactive there) -1
    np.testing.assert_array_equal(rewards, [1.0, -1.0, 0.0, 0.0])
    np.testing.assert_array_equal(terminated, [True, True, False, False])
    assert not truncated.any()
    np.testing.assert_array_equal(info["_episode"], [True, True, False, False])
    np.testing.assert_array_equal(info["episode"]["r"][:2], [1.0, -1.0])
    np.testing.assert_array_equal(info["episode"]["l"][:2], [5, 5])
    np.testing.assert_array_equal(info["_final_obs"], [True, True, False, False])
    final = info["final_obs"]
    np.testing.assert_array_equal(final[0]["obs"], _board_obs([0, 1, 2], [3, 4]))
    np.testing.assert_array_equal(final[1]["obs"], _board_obs([3, 4], [0, 1, 2]))
    np.testing.assert_array_equal(final[0]["agent_id"], [1.0, 0.0])
    np.testing.assert_array_equal(final[1]["agent_id"], [0.0, 1.0])
    np.testing.assert_array_equal(info["team_episode"]["r"][0], 0.0)  # zero-sum
    # copy 0 was reset: empty board, player_1 to move with every square legal
    assert not obs["obs"][:2].any()
    np.testing.assert_array_equal(obs["active"][:2].ravel(), [1.0, 0.0])
    np.testing.assert_array_equal(obs["action_mask"][0], np.ones(9))
    # copy 1 goes on: player_2's turn, its legal moves
    np.testing.assert_array_equal(obs["active"][2:].ravel(), [0.0, 1.0])
    legal = np.ones(9, dtype=np.float32)
    legal[game1] = 0.0
    np.testing.assert_array_equal(obs["action_mask"][3], legal)
    np.testing.assert_array_equal(obs["obs"][3], _board_obs([0, 2], [4, 8, 1]))
    env.close()


# --------------------------------------------------------------------------- 4. agents leave
def test_agent_leaving_early_rows_and_episode_statistics() -> None:
    cls = _leave_early_cls()
    env = make_multi_agent_vec_env(cls, num_envs=2, seed=3)
    assert env.num_envs == 6 and env.single_observation_space["obs"].shape == (3,)
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(1)
    returns = np.zeros(6)
    episodes: dict[int, list[tuple[float, int]]] = {r: [] for r in range(6)}
    dying = np.array([1, 4])  # row of a1 in each copy
    living = np.array([0, 2, 3, 5])
    for episode in range(2):
        np.testing.assert_array_equal(obs["active"], np.ones((6, 1)))  # all back after reset
        np.testing.assert_array_equal(obs["obs"][:, 1], 0.0)  # step counter 0
        offsets = obs["obs"][[0, 3], 0]
        for t in range(1, 6):
            actions = rng.integers(0, 3, size=6)
            obs, rewards, terminated, truncated, info = env.step(actions)
            rewards_expected = np.tile(10.0 ** np.arange(3), 2) * (actions + 1)
            if t > 2:  # a1 is gone: no reward, inactive, zero observation
                rewards_expected[dying] = 0.0
            np.testing.assert_array_equal(rewards, rewards_expected)
            returns += rewards
            if "episode" in info:
                for row in np.flatnonzero(info["_episode"]):
                    episodes[row].append((info["episode"]["r"][row], info["episode"]["l"][row]))
            if t == 2:  # a1 terminates; the others go on
                np.testing.assert_array_equal(terminated[dying], [True, True])
                assert not terminated[living].any() and not truncated.any()
                np.testing.assert_array_equal(info["_final_obs"], np.isin(np.arange(6), dying))
                for copy, row in enumerate(dying):
                    expected = [offsets[copy] + 1, 2.0, 0.0]  # size 2, zero-padded
                    np.testing.assert_array_equal(info["final_obs"][row]["obs"], expected)
                np.testing.assert_array_equal(info["_episode"], np.isin(np.arange(6), dying))
            elif 2 < t < 5:
                assert not terminated.any() and not truncated.any()
                assert "final_obs" not in info and "episode" not in info
            if 2 <= t < 5:
                np.testing.assert_array_equal(obs["active"][dying], 0.0)
                np.testing.assert_array_equal(obs["active"][living], 1.0)
            if 2 < t < 5:
                np.testing.assert_array_equal(obs["obs"][dying], 0.0)
            if t == 1:
                assert not terminated.any() and not truncated.any()
        # t == 5: the copies end; a1's rows end again (terminated), the others are truncated
        np.testing.assert_array_equal(truncated[living], True)
        np.testing.assert_array_equal(terminated[living], False)
        np.testing.assert_array_equal(terminated[dying], True)
        np.testing.assert_array_equal(truncated[dying], False)
        np.testing.assert_array_equal(info["_final_obs"], np.ones(6, dtype=bool))
        np.testing.assert_array_equal(info["_episode"], np.isin(np.arange(6), living))
        for copy, row in enumerate([0, 3]):
            np.testing.assert_array_equal(
                info["final_obs"][row]["obs"], [offsets[copy], 5.0, actions[row]]
            )
        for row in range(6):  # each agent episode reported exactly once, with its length
            assert len(episodes[row]) == episode + 1
            r, length = episodes[row][-1]
            assert r == pytest.approx(returns[row])
            assert length == (2 if row in dying else 5)
        assert sorted(env.length_queue) == sorted([2, 2, 5, 5, 5, 5] * (episode + 1))
        np.testing.assert_allclose(
            info["team_episode"]["r"], returns.reshape(2, 3).sum(axis=1), rtol=1e-12
        )
        returns[:] = 0.0
    env.close()


def test_agents_env_leave_early_reports_termination_once() -> None:
    env = AgentsEnv(_leave_early_cls()())
    env.reset(seed=0)
    assert env.observation_space["obs"].shape == (3, 3)
    assert env.observation_space["state"].shape == (3, 9)  # no state(): observations joined
    terminated_steps = []
    for t in range(1, 6):
        obs, _, terminated, truncated, info = env.step(np.array([0, 1, 2]))
        if info[AGENT_TERMINATED][1]:
            terminated_steps.append(t)
        np.testing.assert_array_equal(obs["state"][0], obs["obs"].reshape(-1))
    assert terminated_steps == [2]
    assert truncated and not terminated
    np.testing.assert_array_equal(info[AGENT_TRUNCATED], [True, False, True])


# --------------------------------------------------------------------------- 5. serial = async
def _random_rollout(env: Any, steps: int, seed: int) -> list[Any]:
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    n = env.single_action_space.n
    for _ in range(steps):
        mask = obs.get("action_mask", np.ones((env.num_envs, n)))
        actions = np.array([rng.choice(np.flatnonzero(m)) for m in mask])
        obs, rewards, terminated, truncated, info = env.step(actions)
        trace.append((obs, rewards, terminated, truncated, info.get("_final_obs")))
    return trace


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, tuple | list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif a is None:
        assert b is None
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("env_id", [SPREAD, TICTACTOE])
def test_serial_and_subprocess_copies_are_identical(env_id: str) -> None:
    _spread() if env_id == SPREAD else _tictactoe()
    traces = []
    for asynchronous in (False, True):
        env = make_vec_env(env_id, num_envs=2, seed=5, asynchronous=asynchronous)
        traces.append(_random_rollout(env, 60, seed=5))
        env.close()
    _assert_same(traces[0], traces[1])
    # the rollout covered episode ends
    assert any(step[4] is not None for step in traces[0][1:])


# --------------------------------------------------------------------------- 6. seeding
def test_seeding_spread() -> None:
    _spread()
    actions = np.zeros(6, dtype=np.int64)

    def first(seed: int) -> dict[str, np.ndarray]:
        env = make_vec_env(SPREAD, num_envs=2, seed=seed)
        obs = env.step(actions)[0]  # the step after the construction's seeded reset
        reset_obs, _ = env.reset(seed=seed)
        env.close()
        return {"step": obs["obs"], "reset": reset_obs["obs"]}

    a, b, c = first(11), first(11), first(12)
    np.testing.assert_array_equal(a["step"], b["step"])
    np.testing.assert_array_equal(a["reset"], b["reset"])
    assert not np.array_equal(a["reset"], c["reset"])
    assert not np.array_equal(a["step"], c["step"])
    # copy i is seeded with seed + i: the copies differ
    assert not np.array_equal(a["reset"][:3], a["reset"][3:])


def test_unseeded_copies_differ() -> None:
    _spread()
    env = make_vec_env(SPREAD, num_envs=2)
    obs, _ = env.reset()
    env.close()
    assert not np.array_equal(obs["obs"][:3], obs["obs"][3:])


# --------------------------------------------------------------------------- 7. GAE on active
def test_gae_active_equals_gae_when_all_active() -> None:
    g = torch.Generator().manual_seed(0)
    t, n = 12, 5
    rewards = torch.randn(t, n, generator=g)
    values = torch.randn(t, n, generator=g)
    dones = (torch.rand(t, n, generator=g) < 0.2).float()
    last = torch.randn(n, generator=g)
    adv, ret = compute_gae(rewards, values, dones, last, 0.97, 0.9)
    adv_a, ret_a = compute_gae_active(rewards, values, dones, last, 0.97, 0.9, torch.ones(t, n))
    torch.testing.assert_close(adv_a, adv)
    torch.testing.assert_close(ret_a, ret)


def test_gae_active_turn_based_hand_computed() -> None:
    gamma, lam = 0.9, 0.8
    active = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0]).unsqueeze(1)
    rewards = torch.tensor([0.5, 2.0, -0.25, 3.0, 1.5]).unsqueeze(1)
    dones = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0]).unsqueeze(1)  # the game ends on t=3
    values = torch.tensor([0.1, 9.0, 0.3, 9.0, 0.7]).unsqueeze(1)
    last = torch.tensor([0.4])
    adv, ret = compute_gae_active(rewards, values, dones, last, gamma, lam, active)
    a4 = 1.5 + gamma * 0.4 - 0.7  # a new episode, bootstrapped from last_value
    a2 = -0.25 + 3.0 - 0.3  # t=3's reward credited to t=2; the end at t=3 stops bootstrapping
    a0 = 0.5 + 2.0 + gamma * 0.3 - 0.1 + gamma * lam * a2  # next active step is t=2
    expected = torch.tensor([a0, 0.0, a2, 0.0, a4]).unsqueeze(1)
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)  # inactive: return = value


def test_gae_active_dead_agent_hand_computed() -> None:
    gamma, lam = 0.95, 0.7
    # active at 0-1 (dies at 1), gone at 2-3 (its copy ends at 3), new episode at 4-5
    active = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 1.0]).unsqueeze(1)
    rewards = torch.tensor([1.0, -2.0, 5.0, 7.0, 0.5, 0.25]).unsqueeze(1)
    dones = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 0.0]).unsqueeze(1)
    values = torch.tensor([0.2, 0.4, 3.0, 3.0, 0.6, 0.8]).unsqueeze(1)
    last = torch.tensor([1.2])
    adv, ret = compute_gae_active(rewards, values, dones, last, gamma, lam, active)
    a5 = 0.25 + gamma * 1.2 - 0.8
    a4 = 0.5 + gamma * 0.8 - 0.6 + gamma * lam * a5
    a1 = -2.0 - 0.4  # the death ends its episode: nothing after it is credited
    a0 = 1.0 + gamma * 0.4 - 0.2 + gamma * lam * a1
    expected = torch.tensor([a0, a1, 0.0, 0.0, a4, a5]).unsqueeze(1)
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)


def test_gae_active_rows_are_independent() -> None:
    """Two rows in one call give what each gives alone."""
    g = torch.Generator().manual_seed(1)
    t = 9
    active = torch.tensor([[1, 0, 1, 0, 1, 0, 1, 0, 1], [0, 1, 0, 1, 0, 1, 0, 1, 0]]).T.float()
    rewards, values = torch.randn(t, 2, generator=g), torch.randn(t, 2, generator=g)
    dones = torch.zeros(t, 2)
    dones[5] = 1.0
    last = torch.randn(2, generator=g)
    adv, ret = compute_gae_active(rewards, values, dones, last, 0.99, 0.95, active)
    for row in range(2):
        sl = slice(row, row + 1)
        adv_r, ret_r = compute_gae_active(
            rewards[:, sl], values[:, sl], dones[:, sl], last[sl], 0.99, 0.95, active[:, sl]
        )
        torch.testing.assert_close(adv[:, sl], adv_r)
        torch.testing.assert_close(ret[:, sl], ret_r)
    assert (adv[active == 0] == 0).all()


# --------------------------------------------------------------------------- 8. masked dists
def _random_mask(rows: int, n: int, g: torch.Generator) -> torch.Tensor:
    mask = (torch.rand(rows, n, generator=g) < 0.5).float()
    mask[torch.arange(rows), torch.randint(0, n, (rows,), generator=g)] = 1.0
    return mask


def test_masked_categorical() -> None:
    g = torch.Generator().manual_seed(0)
    family = Categorical(spaces.Discrete(6))
    assert family.supports_action_mask
    logits = torch.randn(8, 6, generator=g)
    logits[:, 0] = 5.0  # the best logit is often illegal
    mask = _random_mask(8, 6, g)
    mask[:4, 0] = 0.0

    # sampling: 10k draws per row never pick an illegal action
    reps = 1250
    dist = family.masked(logits.repeat(reps, 1), mask.repeat(reps, 1))
    samples = dist.sample(generator=torch.Generator().manual_seed(1))
    assert samples.shape == (8 * reps,)
    assert mask.repeat(reps, 1).gather(1, samples.unsqueeze(1)).all()
    counts = torch.zeros(8, 6)
    counts.index_put_(
        (torch.arange(8).repeat(reps), samples), torch.ones(8 * reps), accumulate=True
    )
    legal_logits = logits.masked_fill(mask == 0, -math.inf)
    probs = torch.softmax(legal_logits, dim=-1)
    assert (counts / reps - probs).abs().max() < 0.05

    # log-probs, entropy and mode are those of the legal logits alone
    dist = family.masked(logits, mask)
    for row in range(8):
        legal = torch.nonzero(mask[row]).squeeze(1)
        log_p = torch.log_softmax(logits[row, legal], dim=0)
        for j, action in enumerate(legal):
            got = dist.log_prob(action.view(1).expand(8))[row]
            torch.testing.assert_close(got, log_p[j])
        entropy = -(log_p.exp() * log_p).sum()
        torch.testing.assert_close(dist.entropy()[row], entropy)
        assert dist.mode()[row] == legal[torch.argmax(logits[row, legal])]
    assert torch.isfinite(dist.entropy()).all()
    # an all-legal mask and no mask agree
    ones = family.masked(logits, torch.ones(8, 6))
    torch.testing.assert_close(ones.entropy(), family(logits).entropy())

    # gradients never reach masked logits
    params = logits.clone().requires_grad_(True)
    dist = family.masked(params, mask)
    actions = dist.sample(generator=torch.Generator().manual_seed(2))
    (dist.log_prob(actions).sum() + dist.entropy().sum()).backward()
    assert params.grad is not None and torch.isfinite(params.grad).all()
    assert (params.grad[mask == 0] == 0).all()
    assert (params.grad[mask == 1] != 0).any()


@pytest.mark.parametrize("nvec", [[3, 4], [3, 3]])
def test_masked_multi_categorical(nvec: list[int]) -> None:
    g = torch.Generator().manual_seed(3)
    family = MultiCategorical(spaces.MultiDiscrete(nvec))
    assert family.supports_action_mask
    total = sum(nvec)
    logits = torch.randn(4, total, generator=g)
    masks = [_random_mask(4, n, g) for n in nvec]
    mask = torch.cat(masks, dim=1)
    reps = 2500
    dist = family.masked(logits.repeat(reps, 1), mask.repeat(reps, 1))
    samples = dist.sample(generator=torch.Generator().manual_seed(4))
    assert samples.shape == (4 * reps, len(nvec))
    for d, m in enumerate(masks):
        assert m.repeat(reps, 1).gather(1, samples[:, d : d + 1]).all()
    # log_prob: the sum of the per-dimension log-softmaxes over legal choices
    dist = family.masked(logits, mask)
    actions = torch.stack([torch.multinomial(m, 1, generator=g).squeeze(1) for m in masks], dim=1)
    parts = torch.split(logits, nvec, dim=1)
    expected = sum(
        torch.log_softmax(p.masked_fill(m == 0, -math.inf), dim=1).gather(1, actions[:, d : d + 1])
        for d, (p, m) in enumerate(zip(parts, masks, strict=True))
    ).squeeze(1)
    torch.testing.assert_close(dist.log_prob(actions), expected)
    assert torch.isfinite(dist.entropy()).all()


def test_mask_errors_and_helpers() -> None:
    gaussian = DiagGaussian(spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32))
    assert not gaussian.supports_action_mask
    params = torch.zeros(3, gaussian.num_params)
    with pytest.raises(TypeError, match="action mask"):
        gaussian.masked(params, torch.ones(3, 2))
    dist = gaussian.masked(params, None)
    assert dist.sample().shape == (3, 2)

    with pytest.raises(ValueError, match="does not match"):
        mask_logits(torch.zeros(3, 4), torch.ones(3, 5))
    out = mask_logits(torch.zeros(2, 3), torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
    assert out[0, 1] == MASKED_LOGIT and out[1, 0] == MASKED_LOGIT and out[0, 0] == 0.0
    mask = torch.ones(2, 3)
    assert action_mask_of({"obs": torch.zeros(2, 1), "action_mask": mask}) is mask
    assert action_mask_of({"obs": torch.zeros(2, 1)}) is None
    assert action_mask_of(torch.zeros(2, 1)) is None


# --------------------------------------------------------------------------- 9. mask checks
class MaskedBanditEnv(gym.Env[dict[str, np.ndarray], int]):
    """Each step a random subset of 4 actions is legal (action 0 half of the time, and action
    0 is the only rewarded one, so a policy drifts towards it); an illegal action raises."""

    N = 4

    def __init__(self) -> None:
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32),
                "action_mask": spaces.Box(0.0, 1.0, shape=(self.N,), dtype=np.float32),
            }
        )
        self.action_space = spaces.Discrete(self.N)
        self.t = 0

    def _obs(self) -> dict[str, np.ndarray]:
        mask = (self.np_random.random(self.N) < 0.5).astype(np.float32)
        mask[self.np_random.integers(1, self.N)] = 1.0
        self.mask = mask
        observation = self.np_random.uniform(-1, 1, 3).astype(np.float32)
        observation[0] = mask[0]
        return {"observation": observation, "action_mask": mask}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: int) -> Any:
        if not self.mask[int(action)]:
            raise ValueError(f"illegal action {action} under mask {self.mask}")
        self.t += 1
        reward = 1.0 if int(action) == 0 else 0.0
        return self._obs(), reward, False, self.t >= 20, {}


class MaskIgnoringActorCritic(ActorCritic):
    applies_action_mask = False


def test_masks_refused_for_a_policy_that_ignores_them() -> None:
    env = make_vec_env(MaskedBanditEnv, num_envs=2, seed=0)
    policy = MaskIgnoringActorCritic(env.single_observation_space, env.single_action_space)
    with pytest.raises(TypeError, match="action_mask"):
        PPO(env, policy=policy)
    # a policy that applies masks through a family that cannot
    box_action = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    gaussian = ActorCritic(env.single_observation_space, box_action)
    with pytest.raises(TypeError, match="cannot apply masks"):
        check_action_masks(gaussian, env.single_observation_space, "Agent")
    check_action_masks(gaussian, spaces.Box(-1.0, 1.0, shape=(3,)), "Agent")  # no masks: fine
    env.close()


def test_ppo_never_takes_an_illegal_action() -> None:
    env = make_vec_env(MaskedBanditEnv, num_envs=2, seed=0)
    agent = PPO(env, seed=0, num_steps=32, batch_size=32, num_epochs=2, lr=3e-3)
    agent.train(320, progress_bar=False)  # MaskedBanditEnv raises on an illegal action
    assert agent.global_step >= 320
    # acting (stochastic and greedy) keeps to the legal actions too
    obs, _ = env.reset(seed=1)
    for deterministic in (False, True):
        for _ in range(20):
            actions = agent.act(obs, deterministic=deterministic)
            assert obs["action_mask"][np.arange(2), actions].all()
            obs = env.step(actions)[0]
    env.close()


# --------------------------------------------------------------------------- 10-11. normalisers
def test_obs_normalizer_skips_flag_keys() -> None:
    space = spaces.Dict(
        {
            "obs": spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32),
            "action_mask": spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32),
            "active": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
            "agent_id": spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32),
        }
    )
    assert {"action_mask", "active", "agent_id"} <= UNNORMALIZED_KEYS
    norm = ObsNormalizer(space)
    assert set(norm.stats.keys()) == {"obs"}
    g = torch.Generator().manual_seed(0)
    batch = {
        "obs": 5.0 + 3.0 * torch.randn(4096, 3, generator=g),
        "action_mask": (torch.rand(4096, 4, generator=g) < 0.5).float(),
        "active": (torch.rand(4096, 1, generator=g) < 0.5).float(),
        "agent_id": torch.eye(2).repeat(2048, 1),
    }
    norm.update(batch)
    out = norm(batch)
    assert isinstance(out, dict)
    for key in ("action_mask", "active", "agent_id"):
        assert torch.equal(out[key], batch[key])
    assert out["obs"].mean(0).abs().max() < 0.05
    assert (out["obs"].std(0) - 1.0).abs().max() < 0.05


def test_value_normalizer_round_trip_and_statistics() -> None:
    fresh = ValueNormalizer()
    x = torch.tensor([-3.0, 0.0, 2.5, 100.0])
    torch.testing.assert_close(fresh.normalize(fresh.denormalize(x)), x)

    norm = ValueNormalizer(beta=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        norm.update(40.0 + 8.0 * torch.randn(512, generator=g, dtype=torch.float64))
    data = 40.0 + 8.0 * torch.randn(20000, generator=g, dtype=torch.float64)
    z = norm.normalize(data)
    assert z.dtype == torch.float64
    assert abs(float(z.mean())) < 0.05
    assert abs(float(z.std()) - 1.0) < 0.05
    torch.testing.assert_close(norm.normalize(norm.denormalize(x)), x)
    torch.testing.assert_close(norm.denormalize(norm.normalize(data)), data)
    # float32 in, float32 out
    assert norm.normalize(x).dtype == torch.float32


def test_normalize_with_active_uses_active_statistics() -> None:
    x = torch.tensor([[1.0, 100.0], [3.0, -50.0], [5.0, 7.0]])
    active = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    out = normalize(x, active)
    picked = torch.tensor([1.0, 3.0, 5.0])
    torch.testing.assert_close(out, (x - picked.mean()) / (picked.std() + 1e-8))
    torch.testing.assert_close(out[:, 0], torch.tensor([-1.0, 0.0, 1.0]))


# --------------------------------------------------------------------------- 12. minibatch rows
@pytest.mark.parametrize("batch_size", [3, 7, 100])
def test_minibatches_over_rows(batch_size: int) -> None:
    t, n = 5, 4
    storage = RolloutStorage(
        spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32), spaces.Discrete(2), t, n
    )
    for step in range(t):
        flat = torch.arange(step * n, (step + 1) * n, dtype=torch.float32)
        storage.add(
            flat.unsqueeze(1),
            torch.zeros(n, dtype=torch.int64),
            torch.zeros(n),
            torch.zeros(n),
            flat,
            torch.zeros(n),
            torch.zeros(n),
        )
    rows = torch.tensor([0, 2, 5, 6, 11, 13, 17, 19])
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):  # each pass covers every row once
        seen: list[int] = []
        for mb in storage.minibatches(batch_size, gen, rows=rows):
            assert len(mb.old_values) <= batch_size
            torch.testing.assert_close(mb.obs.squeeze(1), mb.old_values)
            seen.extend(int(v) for v in mb.old_values)
        assert sorted(seen) == rows.tolist()


# --------------------------------------------------------------------------- policy on rows
def test_multi_agent_policy_on_tictactoe_rows_respects_masks() -> None:
    _tictactoe()
    from rlkit.policies.multi_agent import MultiAgentActorCritic

    env = make_vec_env(TICTACTOE, num_envs=2, seed=0)
    policy = MultiAgentActorCritic(env.single_observation_space, env.single_action_space)
    obs, _ = env.reset(seed=0)
    games = 0
    for _ in range(40):
        tensors = {k: torch.as_tensor(v) for k, v in obs.items()}
        with torch.no_grad():
            out = policy(tensors)
        actions = out.dist.sample().numpy()
        assert out.value.shape == (4,)
        active = obs["active"].ravel() > 0
        assert obs["action_mask"][np.arange(4), actions][active].all()
        obs, _, _, _, info = env.step(actions)
        games += int(info.get("_team_episode", np.zeros(2)).sum())
    assert games >= 2
    env.close()
