"""A PettingZoo turn-based game seen from one seat: the other seats are played by opponents.

:class:`SelfPlayEnv` turns an AEC env (``pettingzoo.classic.tictactoe_v3.env``, connect four,
any number of players) into a gymnasium env for one learner: each game it takes a random
seat, every other seat gets an opponent from the :class:`~rlkit.selfplay.league.SelfPlayLeague`
(a snapshot of the learner or a fixed player) or a fixed ``opponent``, and the opponents move
until it is the learner's turn again. The observation is the learner's PettingZoo observation
(with its ``action_mask``), the reward everything the learner receives between its moves, and
the learner's result is reported to the league when the game ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlkit.envs.multi_agent import is_aec
from rlkit.envs.stats import GameEpisodeStatistics
from rlkit.selfplay.league import LEAGUE_KEY, SelfPlayLeague, game_score, make_player

#: how many games in a row may end before the learner's first move (e.g. poker hands folded
#: before its turn) before a reset gives up.
MAX_RESTARTS = 1000
#: ``info`` key of the finished game's opponents (seat -> name) and the learner's score.
RESULT_KEY = "selfplay"


class SelfPlayEnv(gym.Env[Any, Any]):
    """One learner seat of an AEC game; see the module doc.

    ``league`` picks and plays the opponents (training); without one, every other seat is
    played by the fixed player ``opponent`` (evaluation: ``"random"``,
    ``"tictactoe_minimax"``). ``seat`` fixes the learner's seat; None draws it per game.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        env: Any,
        league: SelfPlayLeague | None = None,
        opponent: str = "random",
        seat: str | None = None,
    ) -> None:
        if not is_aec(env):
            raise TypeError(
                f"SelfPlayEnv: expected a PettingZoo AEC env (a turn-based game), got "
                f"{type(env).__name__}"
            )
        self.env = env
        self.league = league
        self.agents: list[str] = list(env.possible_agents)
        if len(self.agents) < 2:
            raise ValueError("SelfPlayEnv: a game needs at least two players")
        if seat is not None and seat not in self.agents:
            raise ValueError(f"SelfPlayEnv: seat {seat!r} is not one of {self.agents}")
        self.fixed_seat = seat
        first = env.observation_space(self.agents[0])
        for agent in self.agents[1:]:
            if env.observation_space(agent) != first or env.action_space(agent) != env.action_space(
                self.agents[0]
            ):
                raise ValueError(
                    "SelfPlayEnv: every seat must have the same observation and action spaces "
                    f"(one policy plays them all); {agent!r} differs from {self.agents[0]!r}"
                )
        self.observation_space = first
        self.action_space = env.action_space(self.agents[0])
        self.opponent_name = opponent
        self._fixed = make_player(opponent) if league is None else None
        self.seat = self.agents[0]
        self.opponents: dict[str, str] = {}
        self._return = 0.0
        self._reward = 0.0
        self._recorded = True  # no game in progress
        self.render_mode = getattr(env, "render_mode", None)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        self.begin(seed, options)
        self.advance()
        for _ in range(MAX_RESTARTS):  # a game over before the learner's first move
            if not self.over():
                return self.env.observe(self.seat), {}
            self.begin()
            self.advance()
        raise RuntimeError(f"SelfPlayEnv: {MAX_RESTARTS} games ended before the learner's move")

    def over(self) -> bool:
        """Whether the learner's game has ended (it has no move left)."""
        env = self.env
        return bool(
            self.seat not in env.agents
            or env.terminations.get(self.seat)
            or env.truncations.get(self.seat)
        )

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self.play(action)
        self.advance()
        return self.outcome()

    # the parts of a step, also driven by SelfPlayVecEnv for many games at once
    def begin(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        """Start a game: reset the env, draw the learner's seat and the opponents (those of
        an unfinished game are handed back to the league)."""
        if self.league is not None and not self._recorded:
            for name in self.opponents.values():
                self.league.release(name)
        self._recorded = False
        super().reset(seed=seed)
        self.env.reset(seed=seed, options=options)
        if seed is not None and self._fixed is not None:
            self._fixed.seed(seed)  # a seeded evaluation repeats the fixed player's choices
        if self.fixed_seat is not None:
            self.seat = self.fixed_seat
        else:
            self.seat = self.agents[int(self.np_random.integers(len(self.agents)))]
        self.opponents = {
            agent: self.league.opponent() if self.league is not None else self.opponent_name
            for agent in self.agents
            if agent != self.seat
        }
        self._return = 0.0
        self._reward = 0.0

    def play(self, action: Any) -> None:
        """The learner's move."""
        self._reward = 0.0
        self.apply(int(action) if hasattr(action, "__int__") else action)

    def apply(self, action: Any) -> None:
        """Step the game with the current agent's ``action``; credit the learner's reward."""
        self.env.step(action)
        reward = float(self.env.rewards.get(self.seat, 0.0))
        self._reward += reward
        self._return += reward

    def pending(self) -> tuple[str, Any] | None:
        """The opponent seat to move and its observation, or None when it is the learner's
        turn or its game is over (finished seats are stepped with ``None`` on the way)."""
        env = self.env
        while env.agents:
            if env.terminations.get(self.seat) or env.truncations.get(self.seat):
                return None
            agent = env.agent_selection
            if agent == self.seat:
                return None
            if env.terminations.get(agent) or env.truncations.get(agent):
                self.apply(None)
                continue
            return agent, env.observe(agent)
        return None

    def advance(self) -> None:
        """Let the other seats move until it is the learner's turn or its game is over."""
        while (turn := self.pending()) is not None:
            agent, observation = turn
            self.apply(self.move(agent, observation))

    def outcome(self) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """The learner's view after its move and the opponents' replies; a finished game's
        result is reported to the league."""
        env = self.env
        terminated = bool(env.terminations.get(self.seat, False))
        truncated = bool(env.truncations.get(self.seat, False)) and not terminated
        info: dict[str, Any] = {}
        if terminated or truncated:
            score = game_score(self._return)
            info[RESULT_KEY] = {"score": score, "seat": self.seat}
            if self.league is not None and not self._recorded:
                for name in self.opponents.values():
                    self.league.record(name, score)
            self._recorded = True
        return env.observe(self.seat), self._reward, terminated, truncated, info

    def move(self, agent: str, observation: Any) -> Any:
        """The move of the opponent in seat ``agent``."""
        if self.league is not None:
            return self.league.act(self.opponents[agent], observation, agent)
        assert self._fixed is not None
        return self._fixed(observation, agent)

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


class SelfPlayVecEnv(VectorEnv):
    """Many :class:`SelfPlayEnv` games stepped together (same-step autoreset): after the
    learner's moves, the opponents' replies of all games are computed in waves, one batched
    policy call per opponent snapshot (fixed players move game by game), which is what makes
    self-play cheap with many games. With fixed players (or greedy snapshots) its games equal
    those of the same :class:`SelfPlayEnv` copies stepped one by one; sampling snapshots draw
    their moves in one batch instead of game by game."""

    def __init__(self, games: Sequence[SelfPlayEnv]) -> None:
        if not games:
            raise ValueError("SelfPlayVecEnv: needs at least one game")
        self.games = list(games)
        self.num_envs = len(self.games)
        self.single_observation_space = self.games[0].observation_space
        self.single_action_space = self.games[0].action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = {
            "autoreset_mode": AutoresetMode.SAME_STEP,
            **{
                k: v
                for k, v in getattr(self.games[0].env, "metadata", {}).items()
                if k == "render_fps"
            },
        }
        self.render_mode = self.games[0].render_mode
        #: with ``render_mode="rgb_array"``: each game's frames since the last
        #: ``call("rlkit_pop_frames")`` (what episode recording reads).
        self._frames: list[list[Any]] = [[] for _ in self.games]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        for i, game in enumerate(self.games):
            game.begin(None if seed is None else seed + i, options)
        self._start(range(self.num_envs))
        self._grab(range(self.num_envs))
        return self._stack([g.env.observe(g.seat) for g in self.games]), {}

    def _grab(self, indices: Any) -> None:
        if self.render_mode == "rgb_array":
            for i in indices:
                self._frames[int(i)].append(self.games[int(i)].render())

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call ``name`` on every game (``"rlkit_pop_frames"``: the buffered frames)."""
        if name == "rlkit_pop_frames":
            frames, self._frames = self._frames, [[] for _ in self.games]
            return tuple(frames)
        return tuple(getattr(game, name)(*args, **kwargs) for game in self.games)

    def _start(self, indices: Any) -> None:
        """Opponents move in the new games of ``indices``; games over before the learner's
        first move are begun again."""
        pending = [int(i) for i in indices]
        for _ in range(MAX_RESTARTS):
            self._advance(pending)
            pending = [i for i in pending if self.games[i].over()]
            if not pending:
                return
            for i in pending:
                self.games[i].begin()
        raise RuntimeError(f"SelfPlayVecEnv: {MAX_RESTARTS} games ended before the learner's move")

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        for game, action in zip(self.games, actions, strict=True):
            game.play(action)
        self._advance(range(self.num_envs))
        outcomes = [game.outcome() for game in self.games]
        views = [o[0] for o in outcomes]
        rewards = np.array([o[1] for o in outcomes], dtype=np.float64)
        terminated = np.array([o[2] for o in outcomes], dtype=bool)
        truncated = np.array([o[3] for o in outcomes], dtype=bool)
        info: dict[str, Any] = {}
        done = terminated | truncated
        self._grab(range(self.num_envs))  # finished games: their last frame
        if done.any():
            finished = np.flatnonzero(done)
            final = np.empty(self.num_envs, dtype=object)
            for i in finished:
                final[i] = views[i]
                self.games[i].begin()
            info["final_obs"], info["_final_obs"] = final, done.copy()
            self._start(finished)
            self._grab(finished)
            for i in finished:
                views[i] = self.games[i].env.observe(self.games[i].seat)
        return self._stack(views), rewards, terminated, truncated, info

    def _advance(self, indices: Any) -> None:
        """Opponents move in every game of ``indices`` until each waits for the learner."""
        waiting = [int(i) for i in indices]
        while waiting:
            turns = {i: self.games[i].pending() for i in waiting}
            waiting = [i for i, turn in turns.items() if turn is not None]
            groups: dict[str, list[int]] = {}
            for i in waiting:
                agent = turns[i][0]  # type: ignore[index]
                groups.setdefault(self.games[i].opponents[agent], []).append(i)
            for name, members in groups.items():
                seats = [turns[i][0] for i in members]  # type: ignore[index]
                views = [turns[i][1] for i in members]  # type: ignore[index]
                for i, move in zip(members, self._moves(name, views, seats, members), strict=True):
                    self.games[i].apply(move)

    def _moves(
        self, name: str, views: list[Any], seats: list[str], members: list[int]
    ) -> list[Any]:
        league = self.games[members[0]].league
        if league is not None:
            return league.act_batch(name, views, seats)
        return [
            self.games[i].move(seat, view)
            for i, seat, view in zip(members, seats, views, strict=True)
        ]

    def _stack(self, items: list[Any]) -> Any:
        if isinstance(items[0], Mapping):
            return {k: np.stack([np.asarray(x[k]) for x in items]) for k in items[0]}
        return np.stack([np.asarray(x) for x in items])

    def render(self) -> Any:
        return tuple(game.render() for game in self.games)

    def close_extras(self, **kwargs: Any) -> None:
        for game in self.games:
            game.close()


def make_self_play_vec_env(
    constructor: Callable[..., Any],
    num_envs: int = 1,
    seed: int | None = None,
    league: SelfPlayLeague | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    opponent: str = "random",
    stats_window: int = 100,
) -> VectorEnv:
    """``num_envs`` :class:`SelfPlayEnv` games in a :class:`SelfPlayVecEnv` sharing ``league``
    (in this process: opponents are the learner's own snapshots), recorded under
    ``metadata["rlkit.league"]`` so the agent snapshots into it and checkpoints it. Without a
    league, ``opponent`` plays."""
    kwargs = dict(env_kwargs or {})
    games = [SelfPlayEnv(constructor(**kwargs), league, opponent) for _ in range(num_envs)]
    vec: VectorEnv = GameEpisodeStatistics(SelfPlayVecEnv(games), buffer_length=stats_window)
    vec.metadata = dict(vec.metadata)
    if league is not None:
        vec.metadata[LEAGUE_KEY] = league
    if seed is not None:
        vec.reset(seed=seed)
        vec.action_space.seed(seed)
        vec.single_action_space.seed(seed)
    return vec
