"""Self-play building blocks for multi-agent training on PettingZoo.

* :class:`EloRatings`: one skill scale for the learner, its snapshots and fixed anchors.
* :class:`OpponentPool`: past policy snapshots (flat parameter vectors) and how to pick the next
  opponent (latest, uniform, prioritised fictitious self-play), checkpointed as plain tensors.
* :class:`Player`, :class:`RandomPlayer`, :class:`TicTacToeMinimax`: fixed opponents on
  PettingZoo classic observations; :func:`play_games` plays AEC games between any of them.

PettingZoo is not imported here: these parts work on plain observations and tensors.
"""

from __future__ import annotations

from rlkit.selfplay.players import Player, PlayerFn, RandomPlayer, TicTacToeMinimax, play_games
from rlkit.selfplay.pool import OpponentPool
from rlkit.selfplay.ratings import EloRatings

__all__ = [
    "EloRatings",
    "OpponentPool",
    "Player",
    "PlayerFn",
    "RandomPlayer",
    "TicTacToeMinimax",
    "play_games",
]
