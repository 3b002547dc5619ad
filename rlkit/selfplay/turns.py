"""A two-player zero-sum turn-based game played by one policy in both seats (negamax self-play).

:class:`AlternatingGameEnv` turns a PettingZoo AEC game whose players strictly alternate
(tic-tac-toe, connect four, Go) into a gymnasium env in which every step is the move of the
player to move, seen from that player's side: the observation is the mover's PettingZoo
observation (with its ``action_mask``), the reward is what the mover receives for its move.
The next observation belongs to the opponent, so an agent learning from it must count the next
position's value negatively: ``Q(s, a) = r - gamma max_a' Q(s', a')`` (negamax; Littman 1994's
minimax-Q for alternating Markov games). The vector env built by
:func:`rlkit.envs.make_vec_env` with ``self_play={"mode": "alternate"}`` carries
:data:`TURNS_KEY` in its metadata, and an agent that can (DQN, QR-DQN, IQN: their targets
bootstrap only through the storage's discounts) discounts with ``-gamma``; every other agent
refuses the env with one line.

Unlike league self-play (:mod:`rlkit.selfplay.env`), the opponent is always the current policy,
so there are no snapshots to keep; an episode's return is the reward of its last move (1 when
the game was won, 0 for a draw): strength is measured against fixed players
(:func:`rlkit.prototypes.self_play.evaluate_against`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from rlkit.envs.multi_agent import is_aec

#: ``VectorEnv.metadata`` key marking an env whose consecutive observations belong to
#: opponents in a two-player zero-sum game (see the module doc).
TURNS_KEY = "rlkit.alternating_turns"


def alternates(env: Any) -> bool:
    """Whether the vector env ``env`` hands every move to the opponent (:data:`TURNS_KEY`)."""
    return bool(getattr(env, "metadata", {}).get(TURNS_KEY, False))


class AlternatingGameEnv(gym.Env[Any, Any]):
    """A two-player zero-sum AEC game whose players strictly alternate, seen by whoever moves;
    see the module doc. A game in which a player moves twice in a row, or whose final rewards
    do not sum to zero, is refused with an error when it happens."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, env: Any) -> None:
        if not is_aec(env):
            raise TypeError(
                f"AlternatingGameEnv: expected a PettingZoo AEC env (a turn-based game), got "
                f"{type(env).__name__}"
            )
        agents = list(env.possible_agents)
        if len(agents) != 2:
            raise ValueError(
                f"AlternatingGameEnv: self_play mode 'alternate' needs a two-player game, got "
                f"{len(agents)} players {agents} (use the league mode for more players)"
            )
        first, second = agents
        if env.observation_space(first) != env.observation_space(second) or env.action_space(
            first
        ) != env.action_space(second):
            raise ValueError(
                "AlternatingGameEnv: both seats must have the same observation and action "
                f"spaces (one policy plays them both); {second!r} differs from {first!r}"
            )
        self.env = env
        self.agents = agents
        self.observation_space = env.observation_space(first)
        self.action_space = env.action_space(first)
        self.render_mode = getattr(env, "render_mode", None)

    def opponent(self, agent: str) -> str:
        """The other seat."""
        return self.agents[1] if agent == self.agents[0] else self.agents[0]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.env.reset(seed=seed, options=options)
        return self.env.observe(self.env.agent_selection), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        env = self.env
        mover = env.agent_selection
        env.step(int(action) if hasattr(action, "__int__") else action)
        reward = float(env.rewards.get(mover, 0.0))
        terminated = bool(env.terminations.get(mover, False))
        truncated = bool(env.truncations.get(mover, False)) and not terminated
        if terminated or truncated:
            total = sum(float(r) for r in env.rewards.values())
            if abs(total) > 1e-6:
                raise ValueError(
                    f"AlternatingGameEnv: the game's final rewards {dict(env.rewards)} do not "
                    "sum to zero; self_play mode 'alternate' needs a zero-sum game"
                )
            # the value of a truncated game's position is the next mover's
            return env.observe(self.opponent(mover)), reward, terminated, truncated, {}
        if env.agent_selection == mover:
            raise ValueError(
                f"AlternatingGameEnv: {mover!r} moves twice in a row; self_play mode "
                "'alternate' needs a game whose players strictly alternate"
            )
        return env.observe(env.agent_selection), reward, False, False, {}

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()
