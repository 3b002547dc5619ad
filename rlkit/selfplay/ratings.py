"""Elo ratings for self-play: a scalar skill per named player, updated after every game.

Self-play needs a yardstick that does not move with the learner: win rates against the
current pool say nothing about progress once the pool improves too. Elo puts the learner,
its snapshots and fixed anchors (random, minimax) on one scale; anchors can be held still
with ``fixed_b=True`` so the scale stays tied to players whose strength never changes.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

__all__ = ["EloRatings"]


def _check_k(k: float) -> float:
    if isinstance(k, bool) or not isinstance(k, int | float) or not math.isfinite(k) or k <= 0:
        raise ValueError(f"EloRatings k must be a finite number > 0, got {k!r}")
    return float(k)


def _check_rating(name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
    ):
        raise ValueError(f"EloRatings {name} must be a finite number, got {value!r}")
    return float(value)


def _check_score(score_a: float) -> float:
    if (
        isinstance(score_a, bool)
        or not isinstance(score_a, int | float)
        or not 0.0 <= score_a <= 1.0  # also rejects NaN
    ):
        raise ValueError(
            f"EloRatings score_a must be in [0, 1] (1 win, 0.5 draw, 0 loss), got {score_a!r}"
        )
    return float(score_a)


class EloRatings:
    """Elo ratings keyed by player name; unknown players start at ``initial``.

    ``k`` is the step size: the most a rating moves after one game (``k`` for a win that was
    certain to be a loss). The classic chess value 32 suits short self-play evaluations.
    """

    def __init__(self, k: float = 32.0, initial: float = 1200.0) -> None:
        self.k = _check_k(k)
        self.initial = _check_rating("initial", initial)
        self._ratings: dict[str, float] = {}

    def rating(self, name: str) -> float:
        """The rating of ``name`` (``initial`` if it has never played)."""
        return self._ratings.get(name, self.initial)

    def expected(self, a: str, b: str) -> float:
        """Expected score of ``a`` against ``b``: ``1 / (1 + 10 ** ((r_b - r_a) / 400))``."""
        return 1.0 / (1.0 + 10.0 ** ((self.rating(b) - self.rating(a)) / 400.0))

    def update(self, a: str, b: str, score_a: float, fixed_b: bool = False) -> None:
        """Record one game: ``score_a`` is 1 if ``a`` won, 0.5 for a draw, 0 if ``a`` lost.

        Both ratings move by the same amount in opposite directions, unless ``fixed_b``: then
        only ``a`` moves, so an anchor (a random or minimax player) keeps its rating and the
        scale does not drift with the learner.
        """
        score = _check_score(score_a)
        if a == b:
            raise ValueError(f"EloRatings.update needs two different players, got a == b == {a!r}")
        delta = self.k * (score - self.expected(a, b))
        ra, rb = self.rating(a), self.rating(b)
        self._ratings[a] = ra + delta
        if fixed_b:
            self._ratings.setdefault(b, rb)
        else:
            self._ratings[b] = rb - delta

    def ratings(self) -> dict[str, float]:
        """A copy of every rating seen so far, by name."""
        return dict(self._ratings)

    def state_dict(self) -> dict[str, float]:
        """The ratings, for a checkpoint (``k`` and ``initial`` are configuration)."""
        return dict(self._ratings)

    def load_state_dict(self, d: Mapping[str, float]) -> None:
        """Replace every rating with those in ``d`` (as written by :meth:`state_dict`)."""
        self._ratings = {
            str(name): _check_rating(f"rating of {name!r}", v) for name, v in d.items()
        }

    def __repr__(self) -> str:
        return f"EloRatings(k={self.k}, initial={self.initial}, players={len(self._ratings)})"
