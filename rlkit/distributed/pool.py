"""The actor pool: keeps ``num_actors`` actors busy, restarts or drops the ones that fail.

:meth:`ActorPool.gather` hands the latest weights to every idle actor and returns finished
unrolls: in ``sync`` mode one from every actor (the learner waits for all), in ``async`` mode
whatever has finished (at least one), leaving the others running with the weights they have.
An actor that raises, dies (its process is killed) or exceeds ``actor_timeout_s`` is replaced
by a fresh one (a new incarnation, reseeded) up to ``max_restarts`` times, then dropped with a
warning; training stops only when no actor is left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .actor import ActorSpec, PolicyWeights
from .backends import ActorError, Backend
from .trajectory import Trajectory

log = logging.getLogger("rlkit")

MODES = ("sync", "async")


class ActorPool:
    """Actors on a :class:`Backend` with restart bookkeeping (see the module doc)."""

    def __init__(
        self,
        backend: Backend,
        make_spec: Callable[[int, int], ActorSpec],
        num_actors: int,
        max_restarts: int = 3,
        actor_timeout_s: float | None = None,
        startup_timeout_s: float = 300.0,
    ) -> None:
        if num_actors < 1:
            raise ValueError(f"ActorPool: num_actors must be >= 1, got {num_actors}")
        if max_restarts < 0:
            raise ValueError(f"ActorPool: max_restarts must be >= 0, got {max_restarts}")
        self.backend = backend
        self.make_spec = make_spec
        self.num_actors = num_actors
        self.max_restarts = max_restarts
        self.actor_timeout_s = actor_timeout_s
        self.startup_timeout_s = startup_timeout_s
        #: actors that have delivered an unroll since they were (re)started.
        self._up: set[int] = set()
        self.alive: list[int] = list(range(num_actors))
        self.restarts = [0] * num_actors
        self.dropped: list[int] = []
        self._submitted_at: dict[int, float] = {}
        self._started = False

    @property
    def total_restarts(self) -> int:
        return sum(self.restarts)

    def start(self) -> None:
        """Create every actor (they come up while the learner goes on)."""
        for actor_id in self.alive:
            self.backend.start_actor(self.make_spec(actor_id, 0))
        self._started = True

    def gather(self, weights: PolicyWeights, mode: str) -> list[Trajectory]:
        """Submit ``weights`` to idle actors and return finished unrolls (sorted by actor)."""
        if mode not in MODES:
            raise ValueError(f"ActorPool.gather: mode must be 'sync' or 'async', got {mode!r}")
        if not self._started:
            self.start()
        while True:
            busy = self.backend.in_flight
            now = time.monotonic()
            for actor_id in self.alive:
                if actor_id not in busy:
                    self.backend.submit(actor_id, weights)
                    self._submitted_at[actor_id] = now
            results = self.backend.wait(wait_all=mode == "sync", timeout=self._wait_timeout())
            trajectories = []
            for result in results:
                self._submitted_at.pop(result.actor_id, None)
                if result.trajectory is not None:
                    self._up.add(result.actor_id)
                    trajectories.append(result.trajectory)
                else:
                    assert result.error is not None
                    self._fail(result.actor_id, result.error)
            self._check_timeouts()
            if trajectories:
                return sorted(trajectories, key=lambda t: t.actor_id)

    def _limit(self, actor_id: int) -> float:
        """Seconds an actor may take: ``actor_timeout_s``, and for its first unroll after a
        (re)start at least ``startup_timeout_s`` (its process may still be importing torch)."""
        assert self.actor_timeout_s is not None
        if actor_id in self._up:
            return self.actor_timeout_s
        return max(self.actor_timeout_s, self.startup_timeout_s)

    def _wait_timeout(self) -> float | None:
        if self.actor_timeout_s is None or not self._submitted_at:
            return None
        now = time.monotonic()
        deadline = min(t + self._limit(i) for i, t in self._submitted_at.items())
        return max(0.0, deadline - now) + 0.01

    def _check_timeouts(self) -> None:
        if self.actor_timeout_s is None:
            return
        now = time.monotonic()
        for actor_id, since in list(self._submitted_at.items()):
            limit = self._limit(actor_id)
            if now - since > limit:
                del self._submitted_at[actor_id]
                self._fail(
                    actor_id,
                    ActorError(
                        f"actor {actor_id} returned nothing for {now - since:.1f} s "
                        f"(actor_timeout_s={self.actor_timeout_s}, limit {limit:.0f} s)"
                    ),
                )

    def _fail(self, actor_id: int, error: BaseException) -> None:
        self.backend.stop_actor(actor_id)
        self._up.discard(actor_id)
        self._submitted_at.pop(actor_id, None)
        reason = f"{type(error).__name__}: {error}".strip()
        if self.restarts[actor_id] < self.max_restarts:
            self.restarts[actor_id] += 1
            log.warning(
                "actor %d failed (%s); restarting it (restart %d of %d)",
                actor_id,
                _first_lines(reason),
                self.restarts[actor_id],
                self.max_restarts,
            )
            self.backend.start_actor(self.make_spec(actor_id, self.restarts[actor_id]))
            return
        self.alive.remove(actor_id)
        self.dropped.append(actor_id)
        log.warning(
            "actor %d failed (%s) after %d restarts; dropping it, training goes on with %d "
            "actor(s)",
            actor_id,
            _first_lines(reason),
            self.max_restarts,
            len(self.alive),
        )
        if not self.alive:
            raise RuntimeError(
                f"all {self.num_actors} actors failed (max_restarts={self.max_restarts}); the "
                f"last error was {reason}"
            ) from error

    def close(self) -> None:
        """Stop every actor (idempotent)."""
        self.backend.close()
        self._submitted_at.clear()
        self._started = False


def _first_lines(text: str, limit: int = 400) -> str:
    """Keep log lines readable: the end of a long traceback is the informative part."""
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


__all__ = ["MODES", "ActorPool"]
