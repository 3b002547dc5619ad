"""The league a self-play learner plays in: its own snapshots and fixed players, with ratings.

A :class:`SelfPlayLeague` is shared (in one process) by the training agent and the
:class:`~rlkit.selfplay.env.SelfPlayEnv` copies: each game asks it for opponents
(:meth:`~SelfPlayLeague.opponent`), lets them move (:meth:`~SelfPlayLeague.act`) and reports the
learner's result (:meth:`~SelfPlayLeague.record`); after every ``snapshot_every`` updates the
agent's policy is copied into the :class:`~rlkit.selfplay.pool.OpponentPool`. Its state (the
snapshots, results, ratings and the sampling generator) is saved in the agent's checkpoints.
"""

from __future__ import annotations

import copy
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rlkit.selfplay.players import Player, RandomPlayer, TicTacToeMinimax
from rlkit.selfplay.pool import OpponentPool
from rlkit.selfplay.ratings import EloRatings

#: the rating name of the learner.
LEARNER = "learner"
#: prefix of a snapshot's opponent name (``"snapshot:3"``; ``"snapshot:3/greedy"`` when it
#: plays its most likely moves).
SNAPSHOT = "snapshot:"
GREEDY = "/greedy"
#: fixed players by name (constructors taking ``seed``): usable as league members and as
#: evaluation opponents.
PLAYERS: dict[str, Callable[[int | None], Player]] = {
    "random": lambda seed: RandomPlayer(seed),
    "tictactoe_minimax": lambda seed: TicTacToeMinimax(seed),
}
#: the metadata key under which a self-play vector env carries its league.
LEAGUE_KEY = "rlkit.league"
_POOL_KEYS = ("params", "meta", "next_id", "rng")


def make_player(name: str, seed: int | None = None) -> Player:
    """The fixed player ``name`` from :data:`PLAYERS`."""
    if name not in PLAYERS:
        raise ValueError(f"unknown player {name!r}; known: {', '.join(sorted(PLAYERS))}")
    return PLAYERS[name](seed)


def game_score(learner_return: float) -> float:
    """The learner's result from its game return: 1 win (> 0), 0.5 draw (0), 0 loss (< 0)."""
    return 1.0 if learner_return > 0 else 0.0 if learner_return < 0 else 0.5


class SelfPlayLeague:
    """Snapshots of the learner plus optional fixed players; see the module doc.

    - ``snapshot_every``: updates between snapshots of the learner's policy (the first is
      taken when training starts, so there is always an opponent);
    - ``capacity``, ``strategy`` (``"latest"``, ``"uniform"``, ``"prioritized"``) and
      ``temperature``: the :class:`OpponentPool`'s;
    - ``fixed``: fixed players and the probability of meeting each in a game (e.g.
      ``{"random": 0.1}``), names from :data:`PLAYERS`; they are rating anchors (their Elo
      rating does not move);
    - ``greedy``: the probability that a snapshot plays a game with its most likely moves
      rather than sampling them: greedy opponents punish every weakness they find, sampling
      ones vary the games;
    - ``window``: how many recent games the logged win/draw/loss rates cover.
    """

    def __init__(
        self,
        snapshot_every: int = 10,
        capacity: int = 20,
        strategy: str = "uniform",
        fixed: Mapping[str, float] | None = None,
        temperature: float = 1.0,
        elo_k: float = 32.0,
        greedy: float = 0.5,
        window: int = 200,
        seed: int | None = None,
    ) -> None:
        if not isinstance(snapshot_every, int) or snapshot_every < 1:
            raise ValueError(f"snapshot_every must be an integer >= 1, got {snapshot_every!r}")
        fixed = dict(fixed or {})
        for name, prob in fixed.items():
            if name not in PLAYERS:
                raise ValueError(
                    f"fixed: unknown player {name!r}; known: {', '.join(sorted(PLAYERS))}"
                )
            if not 0.0 <= float(prob) <= 1.0:
                raise ValueError(
                    f"fixed: the probability of {name!r} must be in [0, 1], got {prob}"
                )
        if not 0.0 <= float(greedy) <= 1.0:
            raise ValueError(f"greedy must be a probability in [0, 1], got {greedy!r}")
        self.greedy = float(greedy)
        if sum(fixed.values()) > 1.0:
            raise ValueError(f"fixed: probabilities sum to {sum(fixed.values())}, more than 1")
        self.snapshot_every = snapshot_every
        self.fixed = {k: float(v) for k, v in fixed.items()}
        self.pool = OpponentPool(capacity, strategy, seed, temperature)
        self.elo = EloRatings(k=elo_k)
        self._rng = random.Random(seed)
        self._players = {
            name: make_player(name, None if seed is None else seed + i)
            for i, name in enumerate(sorted(self.fixed))
        }
        self._recent: deque[float] = deque(maxlen=window)
        self._policy: nn.Module | None = None
        self._to_tensor: Callable[[Any], Any] | None = None
        self._modules: dict[int, nn.Module] = {}
        #: snapshot id -> games in progress against it (their modules outlive eviction)
        self._playing: dict[int, int] = {}
        self._pending: dict[str, Tensor] = {}

    # ------------------------------------------------------------------ the learner
    def attach(self, policy: nn.Module, to_tensor: Callable[[Any], Any], step: int = 0) -> None:
        """Play snapshots of ``policy`` (its observations converted by ``to_tensor``, which
        takes a batch of env observations); snapshot it now when the pool is empty."""
        self._policy = policy
        self._to_tensor = to_tensor
        if len(self.pool) == 0:
            self.snapshot(step)

    def snapshot(self, step: int) -> int:
        """Add the attached policy's current parameters to the pool; returns the snapshot id."""
        if self._policy is None:
            raise RuntimeError("SelfPlayLeague.snapshot: no policy attached (call attach first)")
        params = nn.utils.parameters_to_vector(self._policy.parameters()).detach()
        snapshot_id = self.pool.add(params, step)
        self.elo.load_state_dict({**self.elo.ratings(), _name(snapshot_id): self._learner()})
        self._forget_evicted()
        return snapshot_id

    def after_update(self, num_updates: int, step: int) -> dict[str, float]:
        """Snapshot every ``snapshot_every`` updates; the league's metrics to log."""
        if self._policy is not None and num_updates % self.snapshot_every == 0:
            self.snapshot(step)
        return self.metrics()

    def metrics(self) -> dict[str, float]:
        """Learner Elo, pool size and the recent games' win/draw/loss rates."""
        out = {"selfplay/elo": self._learner(), "selfplay/pool_size": float(len(self.pool))}
        if self._recent:
            scores = np.asarray(self._recent)
            out["selfplay/win_rate"] = float((scores == 1.0).mean())
            out["selfplay/draw_rate"] = float((scores == 0.5).mean())
            out["selfplay/loss_rate"] = float((scores == 0.0).mean())
        return out

    # ------------------------------------------------------------------ games
    def opponent(self) -> str:
        """The next game's opponent: a fixed player (with its probability) or a snapshot drawn
        by the pool's strategy; ``"random"`` while no snapshot exists."""
        u = self._rng.random()
        for name, prob in sorted(self.fixed.items()):
            if u < prob:
                return name
            u -= prob
        if len(self.pool) == 0:
            return "random"
        snapshot_id, _ = self.pool.sample()
        if self._policy is not None:
            self._module(snapshot_id)  # built now: the game keeps it if the pool evicts it
        self._playing[snapshot_id] = self._playing.get(snapshot_id, 0) + 1
        return _name(snapshot_id) + (GREEDY if self._rng.random() < self.greedy else "")

    def act(self, name: str, observation: Any, agent: str) -> Any:
        """The move of opponent ``name`` for one env observation (a snapshot samples its
        policy, as the learner does in training)."""
        if not name.startswith(SNAPSHOT):
            player = self._players.get(name)
            if player is None:
                player = self._players[name] = make_player(name, self._rng.randrange(2**31))
            return player(observation, agent)
        snapshot_id, greedy = _parse(name)
        module = self._module(snapshot_id)
        assert self._to_tensor is not None
        batch = (
            {k: np.asarray(v)[None] for k, v in observation.items()}
            if isinstance(observation, Mapping)
            else np.asarray(observation)[None]
        )
        with torch.inference_mode():
            action, _ = module.act(self._to_tensor(batch), greedy)  # type: ignore[operator]
        return action[0].cpu().numpy().item()

    def act_batch(self, name: str, observations: Sequence[Any], agents: Sequence[str]) -> list[Any]:
        """The moves of opponent ``name`` in several games at once (one policy call for a
        snapshot)."""
        if not name.startswith(SNAPSHOT):
            return [
                self.act(name, obs, agent) for obs, agent in zip(observations, agents, strict=True)
            ]
        snapshot_id, greedy = _parse(name)
        module = self._module(snapshot_id)
        assert self._to_tensor is not None
        first = observations[0]
        batch = (
            {k: np.stack([np.asarray(o[k]) for o in observations]) for k in first}
            if isinstance(first, Mapping)
            else np.stack([np.asarray(o) for o in observations])
        )
        with torch.inference_mode():
            actions, _ = module.act(self._to_tensor(batch), greedy)  # type: ignore[operator]
        return [a.item() for a in actions.cpu().numpy()]

    def release(self, name: str) -> None:
        """A game against ``name`` ended without a result (reset before its end)."""
        if name.startswith(SNAPSHOT):
            self._done_playing(_parse(name)[0])

    def record(self, name: str, score: float) -> None:
        """The learner's result against ``name`` (1 win, 0.5 draw, 0 loss), at the end of a
        game it was given by :meth:`opponent`."""
        self._recent.append(score)
        if name.startswith(SNAPSHOT):
            snapshot_id, _ = _parse(name)
            self._done_playing(snapshot_id)
            self.pool.record(snapshot_id, score)
            if _name(snapshot_id) in self.elo.ratings():
                self.elo.update(LEARNER, _name(snapshot_id), score)
        else:
            self.elo.update(LEARNER, name, score, fixed_b=True)

    # ------------------------------------------------------------------ checkpoints
    def state_tensors(self) -> dict[str, Tensor]:
        """Pool state (``params``, ``meta``, ``next_id``, ``rng``) and ratings: ``elo`` holds
        the learner's rating then each snapshot's, in pool order."""
        out = self.pool.state_tensors()
        ids = self.pool.ids()
        ratings = [self._learner(), *(self.elo.rating(_name(i)) for i in ids)]
        out["elo"] = torch.tensor(ratings, dtype=torch.float64)
        return out

    def load_state_tensor(self, key: str, value: Tensor) -> None:
        """Restore one entry of :meth:`state_tensors` (applied once all have arrived)."""
        self._pending[key] = value
        if all(k in self._pending for k in (*_POOL_KEYS, "elo")):
            state, self._pending = self._pending, {}
            self.pool.load_state_tensors(state)
            elo = state["elo"].tolist()
            ratings = {LEARNER: float(elo[0])}
            ratings.update(
                {_name(i): float(r) for i, r in zip(self.pool.ids(), elo[1:], strict=True)}
            )
            ratings.update({name: self.elo.rating(name) for name in self.fixed})
            self.elo.load_state_dict(ratings)
            self._modules.clear()

    # ------------------------------------------------------------------ internals
    def _learner(self) -> float:
        return self.elo.rating(LEARNER)

    def _module(self, snapshot_id: int) -> nn.Module:
        module = self._modules.get(snapshot_id)
        if module is None:
            if snapshot_id not in self.pool:
                raise KeyError(
                    f"SelfPlayLeague: snapshot {snapshot_id} was evicted before its game began"
                )
            if self._policy is None:
                raise RuntimeError("SelfPlayLeague: snapshots play once a policy is attached")
            module = copy.deepcopy(self._policy).eval()
            nn.utils.vector_to_parameters(
                self.pool.params(snapshot_id).to(next(module.parameters()).device),
                module.parameters(),
            )
            self._modules[snapshot_id] = module
        return module

    def _forget_evicted(self) -> None:
        live = {_name(i) for i in self.pool.ids()}
        ratings = {
            k: v for k, v in self.elo.ratings().items() if not k.startswith(SNAPSHOT) or k in live
        }
        self.elo.load_state_dict(ratings)
        self._modules = {
            i: m for i, m in self._modules.items() if i in self.pool or self._playing.get(i)
        }

    def _done_playing(self, snapshot_id: int) -> None:
        left = self._playing.get(snapshot_id, 0) - 1
        if left > 0:
            self._playing[snapshot_id] = left
            return
        self._playing.pop(snapshot_id, None)
        if snapshot_id not in self.pool:  # evicted while its games went on
            self._modules.pop(snapshot_id, None)


def _name(snapshot_id: int) -> str:
    return f"{SNAPSHOT}{snapshot_id}"


def _parse(name: str) -> tuple[int, bool]:
    """A snapshot opponent's id and whether it plays greedily."""
    body = name[len(SNAPSHOT) :]
    return int(body.removesuffix(GREEDY)), body.endswith(GREEDY)
