"""Fixed opponents for PettingZoo classic games, and a helper that plays AEC games between them.

A self-play learner needs opponents whose strength does not change: they anchor Elo ratings
(:class:`~rlkit.selfplay.ratings.EloRatings` with ``fixed_b=True``) and make the learning curve
readable ("never loses to perfect play" means something; "wins 60% against itself" does not).
Players are plain callables ``player(observation, agent) -> action`` on PettingZoo classic
observations ``{"observation": ..., "action_mask": ...}``; PettingZoo itself is only imported by
the caller's ``env_fn``.

Tic-tac-toe layout (checked against ``pettingzoo/classic/tictactoe``): action ``a`` marks
``board.squares[a]``, and ``observe`` builds ``observation`` with
``np.array(squares).reshape(3, 3)``, so ``observation[r, c, k]`` is square ``3 * r + c`` and
``observation[:, :, k].reshape(9)[a]`` is the square action ``a`` marks. Plane 0 holds the
marks of the player to move, plane 1 its opponent's. (PettingZoo's docs draw the squares
column-major, 0 3 6 on the top row; that is only how they are drawn, and since the winning
lines are the same set under transposition it changes nothing for play.)
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["Player", "PlayerFn", "RandomPlayer", "TicTacToeMinimax", "play_games"]

PlayerFn = Callable[[Any, str], Any]
"""Anything that maps ``(observation, agent)`` to an action: a :class:`Player` or a function."""


def _legal_actions(observation: Mapping[str, Any], who: str) -> np.ndarray:
    """Indices of the legal actions in ``observation["action_mask"]``; ValueError if none."""
    if not isinstance(observation, Mapping) or "action_mask" not in observation:
        raise ValueError(
            f"{who} needs a PettingZoo classic observation dict with an 'action_mask', got "
            f"{type(observation).__name__}"
        )
    legal = np.flatnonzero(np.asarray(observation["action_mask"]))
    if legal.size == 0:
        raise ValueError(
            f"{who} got an all-zero action_mask: no legal action (not this agent's turn, or the "
            "game is over; step None for a finished agent)"
        )
    return legal


class Player(ABC):
    """A fixed policy for a PettingZoo classic game: ``player(observation, agent) -> action``.

    ``name`` identifies it in ratings and logs (e.g. the key in
    :class:`~rlkit.selfplay.ratings.EloRatings`).
    """

    name: str = "player"
    #: the player's own generator for its random choices (never the global RNG).
    _rng: np.random.Generator

    @abstractmethod
    def __call__(self, observation: Mapping[str, Any], agent: str) -> int:
        """The action to take; ``observation`` holds ``"action_mask"`` (1 = legal)."""

    def seed(self, seed: int | None) -> None:
        """Restart the player's generator from ``seed``, so games started with the same env
        seed see the same choices (an evaluation env reseeds it on every seeded reset)."""
        self._rng = np.random.default_rng(seed)


class RandomPlayer(Player):
    """Uniform over the legal actions of ``observation["action_mask"]``, with its own numpy
    generator (seeded by ``seed``; never the global RNG). Works for any classic game."""

    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def __call__(self, observation: Mapping[str, Any], agent: str) -> int:
        legal = _legal_actions(observation, "RandomPlayer")
        return int(self._rng.choice(legal))


_LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))

Board = tuple[int, ...]
"""Nine squares in action order, from the mover's side: 1 mover, -1 opponent, 0 empty."""


def _wins(board: Board, mark: int) -> bool:
    return any(board[a] == board[b] == board[c] == mark for a, b, c in _LINES)


def _move_value(board: Board, move: int) -> int:
    """Value for the mover of playing ``move``: ``1 + empty squares left`` for a win (a faster
    win scores higher), 0 for a draw, and the negative of that for a loss (a later loss scores
    higher) under perfect play by both."""
    child = (*board[:move], 1, *board[move + 1 :])
    empties = child.count(0)
    if _wins(child, 1):
        return 1 + empties
    if empties == 0:
        return 0
    return -_position_value(tuple(-v for v in child))


@functools.cache
def _position_value(board: Board) -> int:
    """Negamax value of a non-final position for the player to move (memoised: tic-tac-toe
    has a few thousand positions, so the whole tree is solved once per process)."""
    return max(_move_value(board, m) for m in range(9) if board[m] == 0)


class TicTacToeMinimax(Player):
    """Perfect play for PettingZoo ``tictactoe_v3``: exhaustive minimax (memoised) over the
    position in ``observation["observation"]`` (see the module docstring for the layout).

    It never loses. Scores are depth-aware: among winning moves it takes the fastest win, among
    losing ones (only reachable from positions it did not create) the slowest loss. Moves of
    equal value are broken at random with its own generator when ``random_tie_break`` (so games
    against it vary), else the lowest action index is taken (fully deterministic).
    """

    name = "minimax"

    def __init__(self, seed: int | None = None, random_tie_break: bool = True) -> None:
        self.random_tie_break = random_tie_break
        self._rng = np.random.default_rng(seed)

    @staticmethod
    def board(observation: Mapping[str, Any]) -> Board:
        """The position as nine squares in action order: 1 mover, -1 opponent, 0 empty."""
        planes = np.asarray(observation["observation"])
        if planes.shape != (3, 3, 2):
            raise ValueError(
                "TicTacToeMinimax needs a tictactoe_v3 observation of shape (3, 3, 2), got "
                f"{planes.shape}"
            )
        mine = planes[:, :, 0].reshape(9)
        theirs = planes[:, :, 1].reshape(9)
        return tuple(int(m) - int(t) for m, t in zip(mine, theirs, strict=True))

    def action_values(self, observation: Mapping[str, Any]) -> dict[int, int]:
        """Minimax value of every legal action for the player to move (>0 win, 0 draw,
        <0 loss; larger is better: faster wins, slower losses)."""
        legal = _legal_actions(observation, "TicTacToeMinimax")
        board = self.board(observation)
        occupied = [int(a) for a in legal if board[a] != 0]
        if occupied:
            raise ValueError(
                f"TicTacToeMinimax: action_mask allows occupied squares {occupied}; the "
                "observation does not match tictactoe_v3"
            )
        if _wins(board, 1) or _wins(board, -1):
            raise ValueError("TicTacToeMinimax got a finished game (a line is complete)")
        return {int(a): _move_value(board, int(a)) for a in legal}

    def __call__(self, observation: Mapping[str, Any], agent: str) -> int:
        values = self.action_values(observation)
        best = max(values.values())
        moves = sorted(a for a, v in values.items() if v == best)
        if self.random_tie_break and len(moves) > 1:
            return int(moves[int(self._rng.integers(len(moves)))])
        return moves[0]


def play_games(
    env_fn: Callable[[], Any],
    players: Mapping[str, PlayerFn],
    num_games: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """Play ``num_games`` games of the AEC env ``env_fn()`` (e.g. ``tictactoe_v3.env``) with
    ``players[agent]`` acting for each agent; game ``i`` resets with ``seed + i``.

    Returns, per agent, ``{"wins", "draws", "losses", "mean_return"}``: each game's outcome
    for an agent is the sign of its total reward (the sum of the rewards ``env.last()`` reports
    on its turns, PettingZoo's "reward since this agent last acted"). Swap the keys of
    ``players`` between calls to play both seats.
    """
    if isinstance(num_games, bool) or not isinstance(num_games, int) or num_games < 0:
        raise ValueError(f"play_games num_games must be an int >= 0, got {num_games!r}")
    env = env_fn()
    try:
        agents = list(env.possible_agents)
        missing = [a for a in agents if a not in players]
        if missing:
            raise ValueError(
                f"play_games players has no entry for agents {missing}; the env's agents are "
                f"{agents}, players has {list(players)}"
            )
        results = {a: {"wins": 0, "draws": 0, "losses": 0} for a in agents}
        return_sums = dict.fromkeys(agents, 0.0)
        for i in range(num_games):
            env.reset(seed=seed + i)
            totals = dict.fromkeys(agents, 0.0)
            for agent in env.agent_iter():
                obs, reward, termination, truncation, _ = env.last()
                totals[agent] += float(reward)
                action = None if termination or truncation else players[agent](obs, agent)
                env.step(action)
            for agent, total in totals.items():
                key = "wins" if total > 0 else "losses" if total < 0 else "draws"
                results[agent][key] += 1
                return_sums[agent] += total
    finally:
        env.close()
    return {
        a: {
            **{k: float(v) for k, v in results[a].items()},
            "mean_return": return_sums[a] / num_games if num_games else 0.0,
        }
        for a in agents
    }
