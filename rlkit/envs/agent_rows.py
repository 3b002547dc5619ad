"""Many copies of a multi-agent env as one vector env with a row per agent.

:class:`AgentRowsVecEnv` takes a gymnasium vector env of :class:`~rlkit.envs.multi_agent.AgentsEnv`
copies (serial or subprocess: the results are identical) and lays the ``C`` copies x ``N``
agents out as ``C * N`` rows, copy-major (row ``c * N + i`` is agent ``i`` of copy ``c``), so
the on-policy prototype's ``[T, rows]`` rollouts are the design's ``[T, N_envs, N_agents]``
batches flattened. Each row's observation is a dict:

- ``obs``: the agent's own observation; ``agent_id``: its one-hot index (for shared policies);
- ``state``: the global state (or all agents' observations) for a centralised critic;
- ``active``: 1 where the agent acts on this step, 0 where it is gone or waits for its turn
  (its action is ignored and its step is left out of the loss);
- ``action_mask``: legal actions, where the env gives masks.

A row's reward is its agent's own reward. A row is ``terminated``/``truncated`` on the step its
agent finishes, and again when its copy's episode ends (so recurrent state and episode starts
follow the copy's episodes); each agent episode's return and length are reported once in
``info["episode"]`` (the statistics read only that), and the copies' team returns (the sum over
agents) in ``info["team_episode"]``. Copies reset in the same step (``AutoresetMode.SAME_STEP``)
with the finished rows' last observations in ``info["final_obs"]``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space

from rlkit.envs.multi_agent import (
    AGENT_REWARDS,
    AGENT_TERMINATED,
    AGENT_TRUNCATED,
    AgentsEnv,
    EnvConstructor,
)

#: the observation key of the per-row activity flag.
ACTIVE_KEY = "active"


def is_multi_agent(env: Any) -> bool:
    """Whether ``env`` lays out agents as rows (an :class:`AgentRowsVecEnv` or a wrapper of
    one): it then has ``num_agents`` and an ``active`` observation key."""
    space = getattr(env, "single_observation_space", None)
    keys = space.spaces if isinstance(space, spaces.Dict) else {}
    return int(getattr(env, "num_agents", 0) or 0) > 0 and ACTIVE_KEY in keys


class AgentRowsVecEnv(VectorEnv):
    """A vector env of multi-agent copies with one row per agent (see the module doc)."""

    #: episode statistics are only what ``info["episode"]`` reports (see
    #: :func:`rlkit.envs.stats.reports_games`): rows end more often than agents' episodes.
    episodes_in_info = True

    def __init__(self, env: VectorEnv, agents: list[str], stats_window: int = 100) -> None:
        inner = env.single_observation_space
        if not isinstance(inner, spaces.Dict) or ACTIVE_KEY not in inner.spaces:
            raise TypeError(
                "AgentRowsVecEnv: expected a vector env of rlkit.envs.AgentsEnv copies, got "
                f"observation space {inner!r}"
            )
        self.env = env
        self.agents = list(agents)
        self.num_agents = len(self.agents)
        self.num_copies = env.num_envs
        self.num_envs = self.num_copies * self.num_agents
        n = self.num_agents
        row_spaces: dict[str, spaces.Space[Any]] = {}
        for key, space in inner.spaces.items():
            assert isinstance(space, spaces.Box)
            row_spaces[key] = spaces.Box(
                space.low[0], space.high[0], shape=space.shape[1:], dtype=space.dtype.type
            )
        row_spaces["agent_id"] = spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32)
        self.single_observation_space = spaces.Dict(row_spaces)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        joint = env.single_action_space
        if isinstance(joint, spaces.MultiDiscrete):
            self.single_action_space = spaces.Discrete(
                int(joint.nvec[0]), start=int(joint.start[0])
            )
        else:
            assert isinstance(joint, spaces.Box)
            self.single_action_space = spaces.Box(
                joint.low[0],
                joint.high[0],
                dtype=joint.dtype.type,
            )
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {**env.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        self.render_mode = env.render_mode
        self._agent_ids = np.tile(np.eye(n, dtype=np.float32), (self.num_copies, 1))
        self._returns = np.zeros(self.num_envs, dtype=np.float64)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._finished = np.zeros(self.num_envs, dtype=bool)
        self._team = np.zeros(self.num_copies, dtype=np.float64)
        #: the last ``stats_window`` agent-episode returns and lengths, and team returns.
        self.return_queue: deque[float] = deque(maxlen=stats_window)
        self.length_queue: deque[int] = deque(maxlen=stats_window)
        self.team_return_queue: deque[float] = deque(maxlen=stats_window)

    # ------------------------------------------------------------------ layout
    def _rows(self, obs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {k: np.asarray(v).reshape(self.num_envs, *np.shape(v)[2:]) for k, v in obs.items()}
        out["agent_id"] = self._agent_ids.copy()
        return out

    def _agent_field(self, info: Mapping[str, Any], key: str, ended: np.ndarray) -> np.ndarray:
        """A per-agent info array ``[C, N]``, read from the finished step's info for copies that
        reset in this step."""
        current = np.asarray(info[key])
        if ended.any():
            final = info.get("final_info", {})
            current = np.where(ended[:, None], np.asarray(final[key]), current)
        return current

    # ------------------------------------------------------------------ VectorEnv API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset every copy, or with ``options["reset_mask"]`` (one flag per row) the copies
        of the flagged rows."""
        options = dict(options or {})
        rows = np.ones(self.num_envs, dtype=bool)
        copies: np.ndarray = np.ones(self.num_copies, dtype=bool)
        if "reset_mask" in options:
            rows_mask = np.asarray(options["reset_mask"], dtype=bool).reshape(-1)
            copies = np.asarray(rows_mask.reshape(self.num_copies, -1).any(axis=1))
            rows = np.repeat(copies, self.num_agents)
            options["reset_mask"] = copies
        obs, _ = self.env.reset(seed=seed, options=options or None)
        self._returns[rows] = 0.0
        self._lengths[rows] = 0
        self._finished[rows] = False
        self._team[copies] = 0.0
        return self._rows(obs), {}

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        joint = np.asarray(actions).reshape(
            self.num_copies, self.num_agents, *np.shape(actions)[1:]
        )
        obs, _, term, trunc, info = self.env.step(joint)
        ended = np.logical_or(term, trunc)
        rewards = self._agent_field(info, AGENT_REWARDS, ended).reshape(-1)
        a_term = self._agent_field(info, AGENT_TERMINATED, ended).reshape(-1)
        a_trunc = self._agent_field(info, AGENT_TRUNCATED, ended).reshape(-1)
        copy_ended = np.repeat(ended, self.num_agents)
        rows = self._rows(obs)

        fresh = ~self._finished
        self._returns += np.where(fresh, rewards, 0.0)
        self._lengths += fresh
        self._team += rewards.reshape(self.num_copies, self.num_agents).sum(axis=1)
        agent_done = fresh & (a_term | a_trunc)
        # a copy that ends with agents that never reported an end: they are cut off
        cut = copy_ended & fresh & ~agent_done
        terminated = a_term.copy()
        truncated = a_trunc | cut
        # rows whose agent finished earlier end again with their copy (a new episode starts)
        again = copy_ended & ~fresh
        terminated |= again
        finished_now = agent_done | cut

        out_info: dict[str, Any] = {}
        dones = terminated | truncated
        if dones.any():
            out_info["final_obs"], out_info["_final_obs"] = self._final_obs(
                info, rows, dones, ended
            )
        if finished_now.any():
            out_info["episode"] = {
                "r": np.where(finished_now, self._returns, 0.0),
                "l": np.where(finished_now, self._lengths, 0),
                "t": np.zeros(self.num_envs),
            }
            out_info["_episode"] = finished_now
            self.return_queue.extend(self._returns[finished_now])
            self.length_queue.extend(self._lengths[finished_now])
        self._finished |= finished_now
        if ended.any():
            out_info["team_episode"] = {"r": np.where(ended, self._team, 0.0)}
            out_info["_team_episode"] = ended
            self.team_return_queue.extend(self._team[ended])
            self._team[ended] = 0.0
            self._returns[copy_ended] = 0.0
            self._lengths[copy_ended] = 0
            self._finished[copy_ended] = False
        return rows, rewards, terminated, truncated, out_info

    def _final_obs(
        self,
        info: Mapping[str, Any],
        rows: dict[str, np.ndarray],
        dones: np.ndarray,
        ended: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each finished row's last observation: from ``final_obs`` for copies that reset in
        this step, else (an agent gone mid-episode) the row as returned."""
        out = np.empty(self.num_envs, dtype=object)
        finals = info.get("final_obs")
        for row in np.flatnonzero(dones):
            copy, agent = divmod(int(row), self.num_agents)
            if ended[copy]:
                final = finals[copy]  # type: ignore[index]
                item = {k: np.asarray(v)[agent] for k, v in final.items()}
                item["agent_id"] = self._agent_ids[row]
            else:
                item = {k: v[row] for k, v in rows.items()}
            out[row] = item
        return out, dones.copy()

    def render(self) -> Any:
        return self.env.render()

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close()


def make_multi_agent_vec_env(
    constructor: EnvConstructor,
    num_envs: int = 1,
    seed: int | None = None,
    asynchronous: bool = False,
    env_kwargs: Mapping[str, Any] | None = None,
    stats_window: int = 100,
    wrappers: Sequence[Callable[[gym.Env[Any, Any]], gym.Env[Any, Any]]] = (),
) -> AgentRowsVecEnv:
    """``num_envs`` copies of the PettingZoo env ``constructor(**env_kwargs)`` (parallel or
    AEC) as an :class:`AgentRowsVecEnv` with ``num_envs * num_agents`` rows; copy ``i`` is
    seeded with ``seed + i``, serially or in subprocesses with identical results.
    ``wrappers`` (callables) wrap each copy's :class:`AgentsEnv` (e.g. to record frames)."""
    if num_envs < 1:
        raise ValueError(f"make_multi_agent_vec_env: num_envs must be >= 1, got {num_envs}")
    kwargs = dict(env_kwargs or {})

    def make() -> gym.Env[Any, Any]:
        env: gym.Env[Any, Any] = AgentsEnv(constructor(**kwargs))
        for wrapper in wrappers:
            env = wrapper(env)
        return env

    fns = [make for _ in range(num_envs)]
    vec: VectorEnv
    if asynchronous:
        vec = AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    else:
        vec = SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    agents = list(vec.get_attr("agents")[0])
    rows = AgentRowsVecEnv(vec, agents, stats_window)
    if seed is not None:
        rows.reset(seed=seed)
        rows.action_space.seed(seed)
        rows.single_action_space.seed(seed)
    return rows
