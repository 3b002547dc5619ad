"""A bounded pool of past policy snapshots to play against, and how to pick the next opponent.

Self-play against only the current policy cycles and forgets (it beats the strategy it just
left, then loses to it again); playing against a pool of past snapshots keeps old weaknesses
covered. Each snapshot is a flat 1-D parameter vector (``parameters_to_vector`` of the policy),
so the pool stores no modules, only tensors, and its whole state is a flat dict of tensors that
a safetensors checkpoint holds as is. Sampling uses the pool's own ``torch.Generator``, never a
global RNG, and that generator is part of the state: a restored pool draws the same opponents the
original would have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["STRATEGIES", "OpponentPool"]

STRATEGIES = ("latest", "uniform", "prioritized")
"""Opponent-sampling strategies: newest snapshot, uniform over the pool, or prioritised
fictitious self-play (more often the snapshots the learner does worst against)."""

_META_COLUMNS = ("id", "step", "games", "wins", "draws", "losses")
_ID, _STEP, _GAMES, _WINS, _DRAWS, _LOSSES = range(len(_META_COLUMNS))
_STATE_KEYS = ("params", "meta", "next_id", "rng")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class OpponentPool:
    """Up to ``capacity`` policy snapshots (flat float32 parameter vectors, all one length) with
    the learner's results against each.

    Snapshots get ids 0, 1, 2, ... in the order they are added (ids are never reused, also after
    eviction); when full, adding evicts the oldest. ``strategy`` picks the opponent in
    :meth:`sample`:

    * ``"latest"``: always the newest snapshot (plain self-play against the last copy);
    * ``"uniform"``: uniform over the pool (fictitious self-play);
    * ``"prioritized"``: prioritised fictitious self-play, AlphaStar's "hard" weighting:
      snapshot ``i`` with weight ``(1 - p_i) ** temperature`` where ``p_i`` is the learner's
      win rate against it (:meth:`win_rate`; 0.5 for a snapshot without games yet), so the
      opponents the learner still loses to come up most. A higher ``temperature`` focuses
      harder; if every weight is zero (the learner beats them all) it samples uniformly.
    """

    def __init__(
        self,
        capacity: int = 10,
        strategy: str = "uniform",
        seed: int | None = None,
        temperature: float = 1.0,
    ) -> None:
        if not _is_int(capacity) or capacity < 1:
            raise ValueError(f"OpponentPool capacity must be an int >= 1, got {capacity!r}")
        if strategy not in STRATEGIES:
            raise ValueError(
                f"OpponentPool strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
            )
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not math.isfinite(temperature)
            or temperature <= 0
        ):
            raise ValueError(
                f"OpponentPool temperature must be a finite number > 0, got {temperature!r}"
            )
        if seed is not None and not _is_int(seed):
            raise ValueError(f"OpponentPool seed must be an int or None, got {seed!r}")
        self.capacity = capacity
        self.strategy = strategy
        self.temperature = float(temperature)
        self._generator = torch.Generator()
        if seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(seed)
        self._params: list[Tensor] = []
        self._meta: list[list[int]] = []  # one row per snapshot, columns _META_COLUMNS
        self._next_id = 0
        self._size: int | None = None  # parameter-vector length, set by the first snapshot

    # -- adding and picking ---------------------------------------------------------------

    def add(self, params: Tensor, step: int) -> int:
        """Store a copy of ``params`` (a 1-D float tensor, moved to CPU float32) taken at training
        step ``step``; evicts the oldest snapshot when full. Returns the new snapshot's id."""
        if not isinstance(params, Tensor) or params.ndim != 1 or not params.is_floating_point():
            what = (
                f"a {params.dtype} tensor of shape {tuple(params.shape)}"
                if isinstance(params, Tensor)
                else type(params).__name__
            )
            raise ValueError(f"OpponentPool.add params must be a 1-D float tensor, got {what}")
        if not _is_int(step) or step < 0:
            raise ValueError(f"OpponentPool.add step must be an int >= 0, got {step!r}")
        if self._size is not None and params.numel() != self._size:
            raise ValueError(
                f"OpponentPool.add params must have {self._size} elements like the pool's "
                f"snapshots, got {params.numel()}"
            )
        stored = params.detach().to(device="cpu", dtype=torch.float32, copy=True)
        if len(self._params) >= self.capacity:
            del self._params[0]
            del self._meta[0]
        snapshot_id = self._next_id
        self._next_id += 1
        self._size = stored.numel()
        self._params.append(stored)
        self._meta.append([snapshot_id, step, 0, 0, 0, 0])
        return snapshot_id

    def sample(self) -> tuple[int, Tensor]:
        """The next opponent by the pool's strategy: ``(id, params)``.

        ``params`` is the stored tensor itself (no copy): load it into a module, do not modify
        it in place."""
        if not self._params:
            raise ValueError("OpponentPool.sample needs at least one snapshot; the pool is empty")
        if self.strategy == "latest":
            index = len(self._params) - 1
        elif self.strategy == "uniform":
            index = int(torch.randint(len(self._params), (1,), generator=self._generator))
        else:
            weights = self.weights()
            index = int(torch.multinomial(weights, 1, generator=self._generator))
        return self._meta[index][_ID], self._params[index]

    def weights(self) -> Tensor:
        """The sampling probability of each snapshot (in :meth:`ids` order) under the pool's
        strategy, as a float64 tensor summing to 1 (empty for an empty pool)."""
        n = len(self._params)
        if n == 0:
            return torch.zeros(0, dtype=torch.float64)
        if self.strategy == "latest":
            weights = torch.zeros(n, dtype=torch.float64)
            weights[-1] = 1.0
            return weights
        if self.strategy == "uniform":
            return torch.full((n,), 1.0 / n, dtype=torch.float64)
        rates = [self._rate(row) for row in self._meta]
        raw = torch.tensor(
            [(1.0 - (0.5 if p is None else p)) ** self.temperature for p in rates],
            dtype=torch.float64,
        )
        total = float(raw.sum())
        if total <= 0.0:
            return torch.full((n,), 1.0 / n, dtype=torch.float64)
        return raw / total

    def latest(self) -> tuple[int, Tensor]:
        """The newest snapshot, ``(id, params)`` (params not copied, as in :meth:`sample`)."""
        if not self._params:
            raise ValueError("OpponentPool.latest needs at least one snapshot; the pool is empty")
        return self._meta[-1][_ID], self._params[-1]

    def params(self, snapshot_id: int) -> Tensor:
        """The parameters of snapshot ``snapshot_id`` (not copied); KeyError if not in the pool."""
        index = self._index(snapshot_id)
        if index is None:
            raise KeyError(f"OpponentPool has no snapshot {snapshot_id!r}; it holds {self.ids()}")
        return self._params[index]

    # -- results --------------------------------------------------------------------------

    def record(self, snapshot_id: int, score: float) -> None:
        """Record one game of the learner against ``snapshot_id``: ``score`` is the learner's
        result, 1 win, 0.5 draw, 0 loss. Ids no longer in the pool (evicted) are ignored, so
        games that end after their opponent was evicted need no special care."""
        if isinstance(score, bool) or score not in (0, 0.5, 1):
            raise ValueError(
                f"OpponentPool.record score must be 1 (win), 0.5 (draw) or 0 (loss), got {score!r}"
            )
        index = self._index(snapshot_id)
        if index is None:
            return
        row = self._meta[index]
        row[_GAMES] += 1
        row[_WINS if score == 1 else _DRAWS if score == 0.5 else _LOSSES] += 1

    def win_rate(self, snapshot_id: int) -> float | None:
        """The learner's mean score against ``snapshot_id`` (wins + draws / 2 over games), or
        None if it has no games recorded or is not in the pool."""
        index = self._index(snapshot_id)
        return None if index is None else self._rate(self._meta[index])

    def results(self, snapshot_id: int) -> dict[str, int]:
        """``{"id", "step", "games", "wins", "draws", "losses"}`` of ``snapshot_id``; KeyError
        if not in the pool."""
        index = self._index(snapshot_id)
        if index is None:
            raise KeyError(f"OpponentPool has no snapshot {snapshot_id!r}; it holds {self.ids()}")
        return dict(zip(_META_COLUMNS, self._meta[index], strict=True))

    def summary(self) -> dict[str, float]:
        """Numbers to log: ``size``, and over the snapshots now in the pool the learner's
        ``games``, ``wins``, ``draws``, ``losses`` and ``win_rate`` (mean score over all those
        games; only present once there are games)."""
        games = sum(row[_GAMES] for row in self._meta)
        wins = sum(row[_WINS] for row in self._meta)
        draws = sum(row[_DRAWS] for row in self._meta)
        out = {
            "size": float(len(self._params)),
            "games": float(games),
            "wins": float(wins),
            "draws": float(draws),
            "losses": float(sum(row[_LOSSES] for row in self._meta)),
        }
        if games:
            out["win_rate"] = (wins + 0.5 * draws) / games
        return out

    def ids(self) -> list[int]:
        """Ids of the snapshots in the pool, oldest first."""
        return [row[_ID] for row in self._meta]

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, snapshot_id: object) -> bool:
        if not isinstance(snapshot_id, int) or isinstance(snapshot_id, bool):
            return False
        return self._index(snapshot_id) is not None

    def __repr__(self) -> str:
        return (
            f"OpponentPool(capacity={self.capacity}, strategy={self.strategy!r}, "
            f"temperature={self.temperature}, ids={self.ids()})"
        )

    # -- checkpointing --------------------------------------------------------------------

    def state_tensors(self) -> dict[str, Tensor]:
        """The pool's whole state as a flat dict of CPU tensors (safetensors can store it):
        ``params`` [K, P] float32 ([0, 0] when empty), ``meta`` [K, 6] int64 (id, step, games,
        wins, draws, losses), ``next_id`` int64 scalar and ``rng`` (the sampling generator's
        state, uint8). Configuration (capacity, strategy, temperature) is not included."""
        if self._params:
            params = torch.stack(self._params)
        else:
            params = torch.zeros((0, 0), dtype=torch.float32)
        meta = torch.tensor(self._meta, dtype=torch.int64).reshape(len(self._meta), 6)
        return {
            "params": params,
            "meta": meta,
            "next_id": torch.tensor(self._next_id, dtype=torch.int64),
            "rng": self._generator.get_state().clone(),
        }

    def load_state_tensors(self, d: Mapping[str, Tensor]) -> None:
        """Restore the state written by :meth:`state_tensors` exactly (snapshots, results, next
        id and the sampling generator, so later draws continue the original sequence)."""
        missing = [key for key in _STATE_KEYS if key not in d]
        if missing:
            raise ValueError(
                f"OpponentPool state is missing {', '.join(missing)}; "
                f"it needs {', '.join(_STATE_KEYS)}"
            )
        params, meta, next_id, rng = (d[key] for key in _STATE_KEYS)
        if not all(isinstance(t, Tensor) for t in (params, meta, next_id, rng)):
            raise ValueError("OpponentPool state values must be tensors")
        if params.ndim != 2 or meta.ndim != 2 or meta.shape[1] != 6:
            raise ValueError(
                f"OpponentPool state needs params [K, P] and meta [K, 6], got params "
                f"{list(params.shape)} and meta {list(meta.shape)}"
            )
        k = meta.shape[0]
        if params.shape[0] != k or (k == 0 and params.shape[1] != 0):
            raise ValueError(
                f"OpponentPool state params {list(params.shape)} do not match meta "
                f"{list(meta.shape)} (an empty pool has params [0, 0])"
            )
        if k > self.capacity:
            raise ValueError(
                f"OpponentPool state holds {k} snapshots, more than this pool's capacity "
                f"{self.capacity}"
            )
        if next_id.numel() != 1 or rng.dtype != torch.uint8 or rng.ndim != 1:
            raise ValueError(
                "OpponentPool state needs a scalar next_id and a 1-D uint8 rng state, got "
                f"next_id of shape {list(next_id.shape)} and rng {rng.dtype} "
                f"{list(rng.shape)}"
            )
        rows = [[int(v) for v in row] for row in meta.to(torch.int64).tolist()]
        next_value = int(next_id.item())
        if rows and next_value <= rows[-1][_ID]:
            raise ValueError(
                f"OpponentPool state next_id {next_value} must exceed the newest id {rows[-1][_ID]}"
            )
        generator = torch.Generator()
        generator.set_state(rng.detach().cpu().clone())
        self._generator = generator
        self._params = [row.detach().to("cpu", torch.float32).clone() for row in params]
        self._meta = rows
        self._next_id = next_value
        self._size = int(params.shape[1]) if k else None

    # -- helpers --------------------------------------------------------------------------

    def _index(self, snapshot_id: int) -> int | None:
        for index, row in enumerate(self._meta):
            if row[_ID] == snapshot_id:
                return index
        return None

    @staticmethod
    def _rate(row: list[int]) -> float | None:
        games = row[_GAMES]
        return None if games == 0 else (row[_WINS] + 0.5 * row[_DRAWS]) / games
