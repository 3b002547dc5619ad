"""A watchdog for the local Ray instance a learner starts: if the learner dies without shutting
Ray down (SIGKILL, OOM killer, a crash), the watchdog kills every process that instance was
made of, so no raylet, dashboard agent or runtime-env agent outlives it.

The watchdog is a small separate process (this file run as a script, stdlib only) holding
the read end of a pipe from the learner. Every half second it records the learner's descendant
processes (from ``/proc``; Linux only). When the learner is gone it kills the recorded
processes and everything below them, and every process whose environment carries the
watchdog's token (:meth:`Reaper.marked` puts it in the environment Ray's processes are started
with, so a worker born between two polls whose parent was killed first is found too); when the
learner says ``done`` on the pipe (Ray was shut down normally) it just exits.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import IO

POLL_S = 0.5
#: environment variable holding the watchdog's token in the processes it is responsible for.
TOKEN_ENV = "RLKIT_RAY_REAPER"


def _table() -> dict[int, tuple[int, int]]:
    """``pid -> (parent pid, start time)`` of every process, read from ``/proc``."""
    out: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                data = f.read()
        except OSError:
            continue
        fields = data.rsplit(")", 1)[1].split()
        out[int(name)] = (int(fields[1]), int(fields[19]))
    return out


def _descendants(roots: set[int], table: dict[int, tuple[int, int]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _marked(token: str, table: dict[int, tuple[int, int]]) -> set[int]:
    """The processes whose initial environment holds ``TOKEN_ENV=token``."""
    needle = f"{TOKEN_ENV}={token}".encode()
    found = set()
    for pid in table:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.add(pid)
        except OSError:
            continue
    return found


def watch(learner: int, pipe: IO[str], token: str = "") -> None:
    """Record ``learner``'s descendants until it dies; then kill them. Exit quietly when told
    ``done`` on ``pipe``. Death is read from ``/proc`` (processes the learner forked may hold
    the pipe open after it died, so its end-of-file is not enough)."""
    me = os.getpid()
    born = _table().get(learner, (0, -1))[1]
    known: dict[int, int] = {}  # pid -> start time (guards against pid reuse)
    while True:
        table = _table()
        if table.get(learner, (0, -1))[1] != born:
            break  # the learner is gone
        for pid in _descendants({learner}, table) - {me}:
            known.setdefault(pid, table[pid][1])
        if pipe.closed:
            time.sleep(POLL_S)
            continue
        ready, _, _ = select.select([pipe], [], [], POLL_S)
        if ready:
            line = pipe.readline()
            if line.strip() == "done":
                return
            if not line:  # end of file: keep watching /proc only
                pipe.close()
    table = _table()
    alive = {pid for pid, start in known.items() if pid in table and table[pid][1] == start}
    victims = alive | _descendants(alive, table)
    if token:
        victims |= _marked(token, table)
    for pid in victims - {me}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class Reaper:
    """The learner's side: start the watchdog, and tell it when Ray was shut down."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        #: marks the processes started inside :meth:`marked` (see the module doc).
        self.token = secrets.token_hex(8)
        if not sys.platform.startswith("linux"):
            return
        self.process = subprocess.Popen(
            [sys.executable, "-S", __file__, str(os.getpid()), self.token],  # stdlib only
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a Ctrl-C to the learner's terminal does not reach it
        )

    @contextlib.contextmanager
    def marked(self) -> Iterator[None]:
        """Processes started inside this block (Ray's, when ``ray.init`` runs in it) carry the
        token in their environment; the learner's own environment is restored afterwards."""
        previous = os.environ.get(TOKEN_ENV)
        os.environ[TOKEN_ENV] = self.token
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(TOKEN_ENV, None)
            else:
                os.environ[TOKEN_ENV] = previous

    def done(self) -> None:
        """Ray was shut down normally: the watchdog exits without killing anything."""
        if self.process is None:
            return
        try:
            assert self.process.stdin is not None
            self.process.stdin.write("done\n")
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.process = None


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.stdin, sys.argv[2] if len(sys.argv) > 2 else "")
