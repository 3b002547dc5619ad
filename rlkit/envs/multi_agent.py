"""PettingZoo environments as one gymnasium env whose arrays stack the agents.

:class:`AgentsEnv` wraps a PettingZoo parallel or AEC env (built by a constructor such as
``mpe2.simple_spread_v3.parallel_env`` or ``pettingzoo.classic.tictactoe_v3.env``) into a
gymnasium env over all ``possible_agents`` in a fixed order, so gymnasium's vector envs can
step many copies serially or in subprocesses; :class:`rlkit.envs.agent_rows.AgentRowsVecEnv`
then gives every agent of every copy its own row. Per step the observation holds, stacked over
the ``N`` agents:

- ``obs`` ``[N, D]``: each agent's own observation, flattened to float32 and zero-padded to the
  largest agent's size (zeros for an agent that is gone);
- ``state`` ``[N, S]``: the global ``state()`` where the env has one, else the agents'
  observations concatenated (what a centralised critic reads), the same for every agent;
- ``active`` ``[N, 1]``: 1 where the agent acts on this step (alive, and for AEC envs, the one
  whose turn it is), else 0 (its action is ignored);
- ``action_mask`` ``[N, A]`` (Discrete actions, when the env gives masks in the observation
  dict's ``"action_mask"`` or ``info["action_mask"]``; all ones where absent).

The reward returned is the team's (sum over agents); the per-agent rewards, terminations and
truncations of the step are in ``info["agent_rewards"]``, ``info["agent_terminated"]`` and
``info["agent_truncated"]`` (an agent's termination is reported once, on the step it happens).
The episode ends when no agent is left. AEC envs advance one turn per step: the acting agent's
action is applied, agents that are done are stepped with ``None`` as PettingZoo requires, and
every reward handed out on the way is credited to its agent.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlkit.envs.families import MissingExtraError

#: info keys of the per-agent step results.
AGENT_REWARDS = "agent_rewards"
AGENT_TERMINATED = "agent_terminated"
AGENT_TRUNCATED = "agent_truncated"

#: packages of multi-agent envs and the rlkit extra that installs each.
EXTRAS = {"mpe2": "mpe", "pettingzoo": "pettingzoo"}

#: a PettingZoo env constructor (``module.parallel_env``, ``module.env`` or any callable).
EnvConstructor = Callable[..., Any]


def is_pettingzoo_env(env: Any) -> bool:
    """Whether ``env`` is a PettingZoo env (parallel or AEC), judged by its API."""
    return hasattr(env, "possible_agents") and (
        hasattr(env, "agent_selection") or callable(getattr(env, "observation_space", None))
    )


def is_aec(env: Any) -> bool:
    """Whether ``env`` follows PettingZoo's AEC (turn-based) API."""
    return hasattr(env, "agent_iter") and hasattr(env, "last")


def pettingzoo_constructor(target: Any, aec: bool = False) -> EnvConstructor | None:
    """The env constructor ``target`` names: a module with ``parallel_env`` (preferred; ``env``
    first with ``aec``) or ``env`` (PettingZoo's layout, e.g. ``mpe2.simple_spread_v3``), or a
    callable; None when it is neither."""
    if isinstance(target, types.ModuleType):
        for name in ("env", "parallel_env") if aec else ("parallel_env", "env"):
            fn = getattr(target, name, None)
            if callable(fn):
                return fn
        return None
    return target if callable(target) else None


def resolve_env_target(env_id: str) -> Any:
    """Import what a ``"module:attr"`` id names (the attribute, or a submodule); None when the
    module has no such attribute (gymnasium's registry form ``"module:Env-v0"`` then applies)."""
    module_name, _, attr = env_id.partition(":")
    module = importlib.import_module(module_name)
    target = getattr(module, attr, None)
    if target is None:
        try:
            target = importlib.import_module(f"{module_name}.{attr}")
        except ImportError:
            return None
    return target


def multi_agent_constructor(env_id: str, aec: bool = False) -> EnvConstructor | None:
    """The PettingZoo constructor of a ``"module:attr"`` env id (``"mpe2:simple_spread_v3"``),
    or None when the id is not one (a gymnasium id); ``aec`` prefers the turn-based API."""
    if ":" not in env_id:
        return None
    module_name = env_id.partition(":")[0]
    try:
        target = resolve_env_target(env_id)
    except ModuleNotFoundError as e:
        root = (e.name or "").split(".")[0]
        if root in EXTRAS:
            raise MissingExtraError(
                f'env {env_id!r} needs the package {root!r}: pip install "rlkit[{EXTRAS[root]}]"'
            ) from e
        if e.name is not None and module_name.startswith(e.name):
            return None  # gymnasium names the missing module in its own error
        raise
    if target is None:
        return None
    if isinstance(target, types.ModuleType):
        return pettingzoo_constructor(target, aec)
    # a callable: a PettingZoo constructor or env class, or a gymnasium env class
    if isinstance(target, type) and issubclass(target, gym.Env):
        return None
    return target if callable(target) else None


def _obs_parts(space: spaces.Space[Any]) -> tuple[spaces.Space[Any], int | None]:
    """The part of an agent's observation space the policy reads, and the size of its action
    mask when the observation is a dict with ``"action_mask"``."""
    if isinstance(space, spaces.Dict) and "action_mask" in space.spaces:
        rest = {k: v for k, v in space.spaces.items() if k != "action_mask"}
        inner = rest["observation"] if set(rest) == {"observation"} else spaces.Dict(rest)
        return inner, int(spaces.flatdim(space.spaces["action_mask"]))
    return space, None


class AgentsEnv(gym.Env[dict[str, Any], np.ndarray]):
    """A PettingZoo env as a gymnasium env over the stacked agents (see the module doc).

    Every agent must have the same action space (Discrete or Box): one policy, shared with
    agent-id features, acts for all of them.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, env: Any) -> None:
        if not is_pettingzoo_env(env):
            raise TypeError(
                f"AgentsEnv: expected a PettingZoo env (parallel or AEC), got {type(env).__name__}"
            )
        self.env = env
        self.aec = is_aec(env)
        self.agents: list[str] = list(env.possible_agents)
        if not self.agents:
            raise ValueError("AgentsEnv: the env has no possible_agents")
        self.index = {agent: i for i, agent in enumerate(self.agents)}
        self.render_mode = getattr(env, "render_mode", None)
        n = len(self.agents)
        action_spaces = [env.action_space(a) for a in self.agents]
        first = action_spaces[0]
        for agent, space in zip(self.agents, action_spaces, strict=True):
            if space != first:
                raise ValueError(
                    f"AgentsEnv: agent {agent!r} has action space {space!r} but "
                    f"{self.agents[0]!r} has {first!r}; one shared policy needs equal action spaces"
                )
        if not isinstance(first, spaces.Discrete | spaces.Box):
            raise TypeError(
                f"AgentsEnv: unsupported action space {first!r}; supported: Discrete, Box"
            )
        self.agent_action_space = first
        parts = [_obs_parts(env.observation_space(a)) for a in self.agents]
        self._obs_spaces = [p[0] for p in parts]
        mask_sizes = {p[1] for p in parts if p[1] is not None}
        self.obs_dim = max(spaces.flatdim(s) for s in self._obs_spaces)
        self.num_actions = int(first.n) if isinstance(first, spaces.Discrete) else None
        if mask_sizes and mask_sizes != {self.num_actions}:
            raise ValueError(
                f"AgentsEnv: action masks of size {sorted(mask_sizes)} do not match the "
                f"action space {first!r}"
            )
        self._state_fn, info_masks = self._probe(env)
        state_dim = self.obs_dim * n if self._state_fn is None else int(np.prod(self._state_shape))
        box = spaces.Box(-np.inf, np.inf, dtype=np.float32, shape=(n, self.obs_dim))
        obs_spaces: dict[str, spaces.Space[Any]] = {
            "obs": box,
            "state": spaces.Box(-np.inf, np.inf, shape=(n, state_dim), dtype=np.float32),
            "active": spaces.Box(0.0, 1.0, shape=(n, 1), dtype=np.float32),
        }
        #: whether the observation carries ``action_mask`` (the env gives masks).
        self.has_masks = self.num_actions is not None and (bool(mask_sizes) or info_masks)
        if self.has_masks:
            assert self.num_actions is not None
            obs_spaces["action_mask"] = spaces.Box(
                0.0, 1.0, shape=(n, int(self.num_actions)), dtype=np.float32
            )
        self.observation_space = spaces.Dict(obs_spaces)
        if isinstance(first, spaces.Discrete):
            self.action_space = spaces.MultiDiscrete(
                np.full(n, first.n), start=np.full(n, first.start)
            )
        else:
            self.action_space = spaces.Box(
                np.broadcast_to(first.low, (n, *first.shape)),
                np.broadcast_to(first.high, (n, *first.shape)),
                dtype=first.dtype,
            )
        self._done: np.ndarray = np.zeros(n, dtype=bool)
        self._last_obs: dict[str, Any] = {}
        self._masks: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ helpers
    def _probe(self, env: Any) -> tuple[Callable[[], Any] | None, bool]:
        """One reset to learn what the spaces do not say: whether ``state()`` works (and its
        shape) and whether masks come in ``info``."""
        # unseeded: a fixed seed here would make the later unseeded resets of every copy equal
        if self.aec:
            env.reset()
            infos = env.infos
        else:
            _, infos = env.reset()
        info_masks = any(isinstance(i, Mapping) and "action_mask" in i for i in infos.values())
        state_fn = getattr(env, "state", None)
        if not callable(state_fn):
            return None, info_masks
        try:
            probe = np.asarray(state_fn())
        except (NotImplementedError, AttributeError):
            return None, info_masks
        self._state_shape = tuple(probe.shape)
        return state_fn, info_masks

    def _flat_obs(self, agent: str, raw: Any) -> np.ndarray:
        """An agent's observation as a padded float32 vector (its mask kept aside)."""
        i = self.index[agent]
        if isinstance(raw, Mapping) and "action_mask" in raw:
            self._masks[agent] = np.asarray(raw["action_mask"], dtype=np.float32).reshape(-1)
            rest = {k: v for k, v in raw.items() if k != "action_mask"}
            raw = rest["observation"] if set(rest) == {"observation"} else rest
        flat = np.asarray(spaces.flatten(self._obs_spaces[i], raw), dtype=np.float32)
        out = np.zeros(self.obs_dim, dtype=np.float32)
        out[: flat.size] = flat
        return out

    def _observation(self, active: np.ndarray) -> dict[str, np.ndarray]:
        n = len(self.agents)
        obs = np.zeros((n, self.obs_dim), dtype=np.float32)
        for agent, value in self._last_obs.items():
            obs[self.index[agent]] = value
        if self._state_fn is not None:
            state = np.asarray(self._state_fn(), dtype=np.float32).reshape(-1)
        else:
            state = obs.reshape(-1)
        out = {
            "obs": obs,
            "state": np.broadcast_to(state, (n, state.size)).copy(),
            "active": active.astype(np.float32).reshape(n, 1),
        }
        if self.has_masks:
            assert self.num_actions is not None
            mask = np.ones((n, self.num_actions), dtype=np.float32)
            for agent, m in self._masks.items():
                mask[self.index[agent]] = m
            mask[mask.sum(axis=1) == 0] = 1.0  # agents not to move (AEC) may get empty masks
            out["action_mask"] = mask
        return out

    def _take_info_masks(self, infos: Mapping[str, Any]) -> None:
        for agent, info in infos.items():
            if isinstance(info, Mapping) and "action_mask" in info:
                self._masks[agent] = np.asarray(info["action_mask"], dtype=np.float32).reshape(-1)

    def _empty_info(self) -> dict[str, Any]:
        n = len(self.agents)
        return {
            AGENT_REWARDS: np.zeros(n, dtype=np.float64),
            AGENT_TERMINATED: np.zeros(n, dtype=bool),
            AGENT_TRUNCATED: np.zeros(n, dtype=bool),
        }

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._done = np.zeros(len(self.agents), dtype=bool)
        self._masks = {}
        if self.aec:
            self.env.reset(seed=seed, options=options)
            self._last_obs = {a: self._flat_obs(a, self.env.observe(a)) for a in self.env.agents}
            self._take_info_masks(self.env.infos)
            return self._observation(self._aec_active()), self._empty_info()
        raw, infos = self.env.reset(seed=seed, options=options)
        self._last_obs = {a: self._flat_obs(a, o) for a, o in raw.items()}
        self._take_info_masks(infos)
        return self._observation(self._parallel_active()), self._empty_info()

    def _parallel_active(self) -> np.ndarray:
        active = np.zeros(len(self.agents), dtype=bool)
        for agent in self.env.agents:
            active[self.index[agent]] = True
        return active

    def _aec_active(self) -> np.ndarray:
        active = np.zeros(len(self.agents), dtype=bool)
        if self.env.agents:
            active[self.index[self.env.agent_selection]] = True
        return active

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        actions = np.asarray(action)
        info = self._aec_step(actions) if self.aec else self._parallel_step(actions)
        live = self.env.agents
        over = not live
        active = self._aec_active() if self.aec else self._parallel_active()
        observation = self._observation(active)
        truncated = over and bool(info[AGENT_TRUNCATED].any())
        reward = float(info[AGENT_REWARDS].sum())
        return observation, reward, over and not truncated, truncated, info

    def _agent_action(self, actions: np.ndarray, agent: str) -> Any:
        value = actions[self.index[agent]]
        return int(value) if self.num_actions is not None else value

    def _parallel_step(self, actions: np.ndarray) -> dict[str, Any]:
        info = self._empty_info()
        joint = {a: self._agent_action(actions, a) for a in self.env.agents}
        raw, rewards, terms, truncs, infos = self.env.step(joint)
        self._last_obs = {a: self._flat_obs(a, o) for a, o in raw.items()}
        self._take_info_masks(infos)
        self._credit(info, rewards, terms, truncs)
        return info

    def _credit(
        self,
        info: dict[str, Any],
        rewards: Mapping[str, float],
        terms: Mapping[str, bool],
        truncs: Mapping[str, bool],
    ) -> None:
        for agent, r in rewards.items():
            info[AGENT_REWARDS][self.index[agent]] += float(r)
        for table, key in ((terms, AGENT_TERMINATED), (truncs, AGENT_TRUNCATED)):
            for agent, flag in table.items():
                i = self.index[agent]
                if flag and not self._done[i]:
                    info[key][i] = True
        for agent in set(terms) | set(truncs):
            i = self.index[agent]
            if terms.get(agent, False) or truncs.get(agent, False):
                self._done[i] = True

    def _aec_step(self, actions: np.ndarray) -> dict[str, Any]:
        env, info = self.env, self._empty_info()
        agent = env.agent_selection
        env.step(None if self._aec_finished(agent) else self._agent_action(actions, agent))
        self._credit(info, env.rewards, env.terminations, env.truncations)
        # every live agent's current view (a finished agent keeps its final one)
        self._last_obs = {a: self._flat_obs(a, env.observe(a)) for a in env.agents}
        while env.agents and self._aec_finished(env.agent_selection):
            env.step(None)  # PettingZoo steps finished agents with None until they leave
            self._credit(info, env.rewards, env.terminations, env.truncations)
        self._take_info_masks(env.infos)
        return info

    def _aec_finished(self, agent: str) -> bool:
        return bool(self.env.terminations.get(agent) or self.env.truncations.get(agent))

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()
