"""Where actors run: in the learner's process, in local subprocesses, or as Ray actors.

A backend starts actors from :class:`ActorSpec`\\ s, hands them versioned weights with
:meth:`Backend.submit` (one unroll per submission), and reports finished unrolls *and failures*
from :meth:`Backend.wait`; what to do about a failure (restart, drop) is the
:class:`~rlkit.distributed.pool.ActorPool`'s business.

- ``local``: actors live in the learner's process and run when the learner waits for them, in
  submission order. Deterministic, no serialisation, and a debugger steps straight into the env
  and the policy. In ``async`` mode each wait runs one actor, so staleness is real (and
  reproducible) even though nothing runs concurrently.
- ``process``: one ``multiprocessing`` process per actor (forked from a warm forkserver where
  available, else spawned); messages are pickled over a pipe. No Ray needed; uses the cores
  of one machine.
- ``ray``: one Ray actor per actor; weights go into the object store once per version
  (``ray.put``) and each actor fetches them only when its version is behind. Joins a cluster
  with ``address=`` or starts a local Ray instance (and shuts down only an instance it started).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rlkit.distributed.reaper import Reaper

from .actor import ActorPosition, ActorSpec, ActorWorker, PolicyWeights
from .trajectory import Trajectory

log = logging.getLogger("rlkit")

#: how to get the optional Ray dependency.
RAY_INSTALL_HINT = 'pip install "rlkit[ray]"'
#: the backend names :func:`make_backend` accepts.
BACKENDS = ("local", "process", "ray")


def ray_missing_message() -> str:
    """The error text shown when the ``ray`` backend is asked for without Ray installed."""
    return (
        f'the "ray" backend needs Ray, which is not installed; install it with '
        f'`{RAY_INSTALL_HINT}` (or use backend="local" / "process", which need no Ray)'
    )


def import_ray() -> Any:
    """Import Ray lazily, with an install hint instead of a bare ImportError."""
    try:
        import ray
    except ImportError:
        raise ImportError(ray_missing_message()) from None
    return ray


class ActorError(RuntimeError):
    """An actor failed: it raised, its process died, or it stopped answering."""


@dataclass
class ActorResult:
    """One finished submission: a trajectory, or the error that ended the actor."""

    actor_id: int
    trajectory: Trajectory | None = None
    error: BaseException | None = None


class Backend(ABC):
    """Runs actors and moves weights to them and trajectories back (see the module doc)."""

    #: the name :func:`make_backend` knows it by.
    name: ClassVar[str]
    #: True when actors live in other processes (their specs must be picklable).
    remote: ClassVar[bool]

    @abstractmethod
    def start_actor(self, spec: ActorSpec) -> None:
        """Create actor ``spec.actor_id`` (without waiting for it to be up); construction
        errors surface as a failed result of its first submission."""

    @abstractmethod
    def submit(self, actor_id: int, weights: PolicyWeights) -> None:
        """Ask an idle actor for one unroll acting with ``weights``."""

    @abstractmethod
    def wait(self, wait_all: bool, timeout: float | None = None) -> list[ActorResult]:
        """Results of finished submissions: all in flight (``wait_all``) or at least one plus
        whatever else is ready. Returns what is there when ``timeout`` seconds pass."""

    @abstractmethod
    def stop_actor(self, actor_id: int) -> None:
        """Stop an actor now (failed or hung); forgets its submission."""

    @abstractmethod
    def close(self) -> None:
        """Stop every actor and release what the backend started (idempotent)."""

    @property
    @abstractmethod
    def in_flight(self) -> set[int]:
        """Actors with a submission not yet returned by :meth:`wait`."""

    def position(self, actor_id: int) -> ActorPosition:
        """Where an idle actor is between unrolls (:meth:`ActorWorker.position`), for exact
        resume; raises :class:`ActorError` when it cannot be asked (gone, busy, hung, or a
        backend that does not implement it)."""
        raise ActorError(f"the {self.name!r} backend cannot read an actor's position")

    def restore_position(
        self, actor_id: int, state: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> str | None:
        """Put a freshly started actor where :meth:`position` was taken, before its first
        unroll (:meth:`ActorWorker.restore_position`): None, or why it could not."""
        return f"the {self.name!r} backend cannot put an actor back"


# --------------------------------------------------------------------------- local


class LocalBackend(Backend):
    """Actors in the learner's process, run lazily (in submission order) by :meth:`wait`."""

    name = "local"
    remote = False

    def __init__(self) -> None:
        self._specs: dict[int, ActorSpec] = {}
        self._actors: dict[int, ActorWorker] = {}
        self._pending: dict[int, PolicyWeights] = {}  # insertion-ordered: FIFO

    def start_actor(self, spec: ActorSpec) -> None:
        self.stop_actor(spec.actor_id)
        self._specs[spec.actor_id] = spec

    def submit(self, actor_id: int, weights: PolicyWeights) -> None:
        if actor_id in self._pending:
            raise RuntimeError(f"actor {actor_id} already has a submission in flight")
        self._pending[actor_id] = weights

    def wait(self, wait_all: bool, timeout: float | None = None) -> list[ActorResult]:
        ids = list(self._pending) if wait_all else list(self._pending)[:1]
        return [self._run(i, self._pending.pop(i)) for i in ids]

    def worker(self, actor_id: int) -> ActorWorker:
        """The in-process actor ``actor_id`` (started with :meth:`start_actor`), built now if
        it has not run yet (exact resume puts it back before its first unroll)."""
        actor = self._actors.get(actor_id)
        if actor is None:
            actor = self._actors[actor_id] = ActorWorker(self._specs[actor_id])
        return actor

    @property
    def workers(self) -> dict[int, ActorWorker]:
        """The actors built so far (actor id -> worker)."""
        return dict(self._actors)

    def position(self, actor_id: int) -> ActorPosition:
        if actor_id in self._pending:
            raise ActorError(f"actor {actor_id} has a submission in flight")
        return self.worker(actor_id).position()

    def restore_position(
        self, actor_id: int, state: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> str | None:
        return self.worker(actor_id).restore_position(state, arrays)

    def _run(self, actor_id: int, weights: PolicyWeights) -> ActorResult:
        try:
            actor = self.worker(actor_id)
            send = weights if actor.version != weights.version else None
            return ActorResult(actor_id, trajectory=actor.collect(send, weights.version))
        except Exception as e:
            return ActorResult(actor_id, error=e)

    def stop_actor(self, actor_id: int) -> None:
        self._pending.pop(actor_id, None)
        actor = self._actors.pop(actor_id, None)
        if actor is not None:
            try:
                actor.close()
            except Exception:
                log.debug("closing actor %d failed", actor_id, exc_info=True)

    def close(self) -> None:
        for actor_id in list(self._actors):
            self.stop_actor(actor_id)
        self._pending.clear()
        self._specs.clear()

    @property
    def in_flight(self) -> set[int]:
        return set(self._pending)


# --------------------------------------------------------------------------- subprocesses


def _send(conn: multiprocessing.connection.Connection, message: Any) -> None:
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _process_main(conn: multiprocessing.connection.Connection, spec: ActorSpec) -> None:
    """Body of an actor subprocess: build the actor, then answer messages: ``("collect",
    version, weights or None)`` -> ``("ok", trajectory)``; ``("position",)`` -> ``("ok",
    (state, arrays))``; ``("restore", state, arrays)`` -> ``("ok", None or why not)``;
    ``("close",)`` ends it. A failed ``collect`` answers ``("error", traceback)`` and ends
    the process; a failed ``position`` answers ``("raised", traceback)`` and goes on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the learner's to handle
    try:
        worker = ActorWorker(spec)
    except BaseException:
        _send(conn, ("error", traceback.format_exc()))
        return
    try:
        while True:
            try:
                message = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):  # the learner is gone
                return
            if message[0] == "close":
                return
            if message[0] == "position":
                try:
                    reply: tuple[str, Any] = ("ok", worker.position())
                except Exception:
                    reply = ("raised", traceback.format_exc())
                _send(conn, reply)
                continue
            if message[0] == "restore":
                try:
                    problem = worker.restore_position(message[1], message[2])
                except Exception as e:
                    problem = f"{type(e).__name__}: {e}"
                _send(conn, ("ok", problem))
                continue
            _, version, weights = message
            try:
                trajectory = worker.collect(weights, version)
            except BaseException:
                _send(conn, ("error", traceback.format_exc()))
                return
            _send(conn, ("ok", trajectory))
    finally:
        worker.close()


@dataclass
class _Proc:
    process: Any  # multiprocessing.context.SpawnProcess
    conn: multiprocessing.connection.Connection
    sent_version: int = -1
    busy: bool = False
    #: it has returned at least one unroll.
    delivered: bool = False
    #: a failure noticed while submitting, reported by the next wait.
    error: BaseException | None = None


class ProcessBackend(Backend):
    """One subprocess per actor.

    ``start_method`` defaults to ``forkserver`` where the platform has it: a server process
    imports rlkit (and torch) once and forks each actor from it, so starting or restarting an
    actor takes tens of milliseconds instead of seconds of imports; ``spawn`` elsewhere. Both
    re-import the main module, so scripts must guard training with
    ``if __name__ == "__main__":``.
    """

    name = "process"
    remote = True

    def __init__(self, start_method: str | None = None, request_timeout_s: float = 300.0) -> None:
        #: seconds to wait for the answer to a ``position`` or ``restore`` request (the
        #: first may wait for the actor's process to start).
        self.request_timeout_s = request_timeout_s
        if start_method is None:
            methods = multiprocessing.get_all_start_methods()
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        self._ctx = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._ctx.set_forkserver_preload([__name__])
        self._procs: dict[int, _Proc] = {}

    def start_actor(self, spec: ActorSpec) -> None:
        self.stop_actor(spec.actor_id)
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(  # type: ignore[attr-defined]
            target=_process_main,
            args=(child, spec),
            name=f"rlkit-actor-{spec.actor_id}",
            daemon=True,
        )
        process.start()
        child.close()
        self._procs[spec.actor_id] = _Proc(process, parent)

    def pid(self, actor_id: int) -> int:
        """The OS process id of an actor (to inspect or kill it)."""
        return int(self._procs[actor_id].process.pid)

    def submit(self, actor_id: int, weights: PolicyWeights) -> None:
        proc = self._procs[actor_id]
        if proc.busy:
            raise RuntimeError(f"actor {actor_id} already has a submission in flight")
        payload = weights if proc.sent_version != weights.version else None
        proc.busy = True
        try:
            _send(proc.conn, ("collect", weights.version, payload))
            proc.sent_version = weights.version
        except OSError:  # broken pipe: the process is gone
            proc.error = self._death(actor_id, proc)

    def wait(self, wait_all: bool, timeout: float | None = None) -> list[ActorResult]:
        deadline = None if timeout is None else time.monotonic() + timeout
        results: list[ActorResult] = []
        while True:
            busy = {i: p for i, p in self._procs.items() if p.busy}
            for i, p in busy.items():
                if p.error is not None:
                    results.append(self._finish(i, error=p.error))
            busy = {i: p for i, p in busy.items() if p.busy}
            if not busy or (results and not wait_all):
                return results
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            handles: list[Any] = [p.conn for p in busy.values()]
            handles += [p.process.sentinel for p in busy.values()]
            ready = multiprocessing.connection.wait(handles, timeout=remaining)
            for i, p in busy.items():
                if p.conn in ready or p.conn.poll():
                    results.append(self._receive(i, p))
                elif p.process.sentinel in ready:
                    results.append(self._finish(i, error=self._death(i, p)))
            if deadline is not None and time.monotonic() >= deadline:
                return results

    def position(self, actor_id: int) -> ActorPosition:
        return self._request(actor_id, ("position",))

    def restore_position(
        self, actor_id: int, state: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> str | None:
        return self._request(actor_id, ("restore", state, arrays))

    def _request(self, actor_id: int, message: tuple[Any, ...]) -> Any:
        """Send a request to an idle actor and wait for its answer (``request_timeout_s``)."""
        proc = self._procs.get(actor_id)
        if proc is None:
            raise ActorError(f"actor {actor_id} is not running")
        if proc.busy:
            raise ActorError(f"actor {actor_id} has a submission in flight")
        try:
            _send(proc.conn, message)
            if not proc.conn.poll(self.request_timeout_s):
                raise ActorError(
                    f"actor {actor_id} did not answer {message[0]!r} within "
                    f"{self.request_timeout_s:.0f} s"
                )
            status, payload = pickle.loads(proc.conn.recv_bytes())
        except (EOFError, OSError):
            raise self._death(actor_id, proc) from None
        if status != "ok":
            raise ActorError(f"actor {actor_id} raised:\n{payload}")
        return payload

    def _receive(self, actor_id: int, proc: _Proc) -> ActorResult:
        try:
            status, payload = pickle.loads(proc.conn.recv_bytes())
        except (EOFError, OSError):
            return self._finish(actor_id, error=self._death(actor_id, proc))
        if status == "ok":
            proc.delivered = True
            return self._finish(actor_id, trajectory=payload)
        return self._finish(actor_id, error=ActorError(f"actor {actor_id} raised:\n{payload}"))

    @staticmethod
    def _death(actor_id: int, proc: _Proc) -> ActorError:
        proc.process.join(1.0)
        message = f"actor {actor_id}: process died (exit code {proc.process.exitcode})"
        if not proc.delivered:
            message += (
                "; it never delivered an unroll. If its output shows 'An attempt has been made "
                "to start a new process before the current process has finished its "
                "bootstrapping phase', guard the script that starts training with "
                "`if __name__ == '__main__':` (backend='process' starts actors through "
                "multiprocessing's forkserver or spawn, which re-import the main module)"
            )
        return ActorError(message)

    def _finish(
        self,
        actor_id: int,
        trajectory: Trajectory | None = None,
        error: BaseException | None = None,
    ) -> ActorResult:
        proc = self._procs[actor_id]
        proc.busy = False
        proc.error = None
        return ActorResult(actor_id, trajectory=trajectory, error=error)

    def stop_actor(self, actor_id: int) -> None:
        proc = self._procs.pop(actor_id, None)
        if proc is None:
            return
        if proc.process.is_alive():
            proc.process.kill()
        proc.process.join(5.0)
        proc.conn.close()

    def close(self, grace_s: float = 2.0) -> None:
        """Ask every actor to exit, give them ``grace_s`` together, then kill the rest; every
        process is joined (no zombies)."""
        procs = list(self._procs.values())
        self._procs.clear()
        for proc in procs:
            with contextlib.suppress(OSError):
                _send(proc.conn, ("close",))
        deadline = time.monotonic() + grace_s
        for proc in procs:
            proc.process.join(max(0.0, deadline - time.monotonic()))
        for proc in procs:
            if proc.process.is_alive():
                proc.process.kill()
            proc.process.join(5.0)
            proc.conn.close()

    @property
    def in_flight(self) -> set[int]:
        return {i for i, p in self._procs.items() if p.busy}


# --------------------------------------------------------------------------- Ray


class RayActorWorker(ActorWorker):
    """The actor as a Ray actor: fetches the broadcast weights only when it is behind. Its
    :meth:`position` and :meth:`restore_position` (inherited) are remote methods too."""

    def collect_from(self, version: int, weights_refs: list[Any]) -> Trajectory:
        """``weights_refs`` holds one ObjectRef (wrapped in a list so Ray does not fetch it
        for every call; it is only fetched when this actor's version differs)."""
        weights = None
        if version != self.version:
            import ray

            weights = ray.get(weights_refs[0])
        return self.collect(weights, version)


class RayBackend(Backend):
    """Ray actors, on a local Ray instance or a cluster (``address``)."""

    name = "ray"
    remote = True

    def __init__(
        self,
        address: str | None = None,
        num_cpus_per_actor: float = 1.0,
        num_gpus_per_actor: float = 0.0,
        num_actors: int = 1,
    ) -> None:
        ray = import_ray()
        self._ray = ray
        self.started_ray = False
        self._reaper: Reaper | None = None
        if not ray.is_initialized():
            init_kwargs: dict[str, Any] = {
                "address": address,
                "include_dashboard": False,
                "logging_level": logging.WARNING,
            }
            if address is None:
                # A local instance sized so that every actor can be scheduled (oversubscribing
                # the cores if asked for more actors than there are CPUs).
                cpus = os.cpu_count() or 1
                needed = math.ceil(num_actors * num_cpus_per_actor)
                if needed > cpus:
                    log.warning(
                        "ray backend: %d actors x %.2g CPUs exceed this machine's %d CPUs; "
                        "starting Ray with %d logical CPUs (oversubscribed)",
                        num_actors,
                        num_cpus_per_actor,
                        cpus,
                        needed,
                    )
                init_kwargs["num_cpus"] = max(cpus, needed)
            if address is None:  # kill this local instance's processes if the learner dies
                self._reaper = Reaper()
            try:
                if self._reaper is not None:
                    with self._reaper.marked():  # Ray's processes inherit the token
                        ray.init(**init_kwargs)
                else:
                    ray.init(**init_kwargs)
            except BaseException:
                if self._reaper is not None:
                    self._reaper.done()
                    self._reaper = None
                raise
            self.started_ray = True
        elif address is not None:
            log.info("ray backend: Ray is already initialised; ignoring address=%r", address)
        self._remote_cls = ray.remote(RayActorWorker).options(
            num_cpus=num_cpus_per_actor, num_gpus=num_gpus_per_actor, max_restarts=0
        )
        #: seconds to wait for an actor's ``position`` / ``restore_position`` answer.
        self.request_timeout_s = 300.0
        self._handles: dict[int, Any] = {}
        self._refs: dict[Any, int] = {}  # in-flight ObjectRef -> actor id
        self._weights_version = -1
        self._weights_ref: Any = None

    def handle(self, actor_id: int) -> Any:
        """The Ray actor handle of an actor (e.g. to ``ray.kill`` it)."""
        return self._handles[actor_id]

    def start_actor(self, spec: ActorSpec) -> None:
        self.stop_actor(spec.actor_id)
        self._handles[spec.actor_id] = self._remote_cls.remote(spec)

    def submit(self, actor_id: int, weights: PolicyWeights) -> None:
        if actor_id in self._refs.values():
            raise RuntimeError(f"actor {actor_id} already has a submission in flight")
        if weights.version != self._weights_version:
            self._weights_ref = self._ray.put(weights)  # one copy per version, shared by all
            self._weights_version = weights.version
        ref = self._handles[actor_id].collect_from.remote(weights.version, [self._weights_ref])
        self._refs[ref] = actor_id

    def position(self, actor_id: int) -> ActorPosition:
        return self._call(actor_id, "position")

    def restore_position(
        self, actor_id: int, state: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> str | None:
        return self._call(actor_id, "restore_position", state, arrays)

    def _call(self, actor_id: int, method: str, *args: Any) -> Any:
        """Call a method of an idle actor and wait for the answer (``request_timeout_s``)."""
        handle = self._handles.get(actor_id)
        if handle is None:
            raise ActorError(f"actor {actor_id} is not running")
        if actor_id in self._refs.values():
            raise ActorError(f"actor {actor_id} has a submission in flight")
        ref = getattr(handle, method).remote(*args)
        try:
            return self._ray.get(ref, timeout=self.request_timeout_s)
        except (self._ray.exceptions.RayError, TimeoutError) as e:
            raise ActorError(f"actor {actor_id}: {method} failed: {e}") from e

    def wait(self, wait_all: bool, timeout: float | None = None) -> list[ActorResult]:
        if not self._refs:
            return []
        refs = list(self._refs)
        ready, rest = self._ray.wait(
            refs, num_returns=len(refs) if wait_all else 1, timeout=timeout
        )
        if ready and rest:  # take whatever else has finished too
            more, _ = self._ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        results = []
        for ref in ready:
            actor_id = self._refs.pop(ref)
            try:
                results.append(ActorResult(actor_id, trajectory=self._ray.get(ref)))
            except self._ray.exceptions.RayError as e:
                results.append(ActorResult(actor_id, error=e))
        return results

    def stop_actor(self, actor_id: int) -> None:
        handle = self._handles.pop(actor_id, None)
        for ref in [r for r, i in self._refs.items() if i == actor_id]:
            del self._refs[ref]
        if handle is not None:
            try:
                self._ray.kill(handle, no_restart=True)
            except Exception:
                log.debug("ray.kill of actor %d failed", actor_id, exc_info=True)

    def close(self) -> None:
        for actor_id in list(self._handles):
            self.stop_actor(actor_id)
        self._refs.clear()
        self._weights_ref = None
        if self.started_ray and self._ray.is_initialized():
            self._ray.shutdown()
        self.started_ray = False
        if self._reaper is not None:
            self._reaper.done()
            self._reaper = None

    @property
    def in_flight(self) -> set[int]:
        return set(self._refs.values())


def make_backend(
    name: str,
    *,
    num_actors: int = 1,
    ray_address: str | None = None,
    num_cpus_per_actor: float = 1.0,
    num_gpus_per_actor: float = 0.0,
) -> Backend:
    """Build a backend by name (``local``, ``process`` or ``ray``)."""
    if name == "local":
        return LocalBackend()
    if name == "process":
        return ProcessBackend()
    if name == "ray":
        return RayBackend(ray_address, num_cpus_per_actor, num_gpus_per_actor, num_actors)
    raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(map(repr, BACKENDS))}")


#: a factory of actor specs: (actor id, incarnation) -> spec.
SpecFactory = Callable[[int, int], ActorSpec]

__all__ = [
    "BACKENDS",
    "RAY_INSTALL_HINT",
    "ActorError",
    "ActorResult",
    "Backend",
    "LocalBackend",
    "ProcessBackend",
    "RayActorWorker",
    "RayBackend",
    "SpecFactory",
    "import_ray",
    "make_backend",
    "ray_missing_message",
]
