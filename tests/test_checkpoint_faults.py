"""A save killed at any write or rename never costs the checkpoint.

Each case forks the test process right before ``agent.save(..., overwrite=True)``, attaches
strace to the child and has it deliver SIGKILL at one write/rename-family syscall of the save:
a first, uninjected save counts the calls of each syscall, then every single call is a kill
point (strace counts ``when=N`` per syscall). After every kill the checkpoint directory
must hold one complete checkpoint, the old or the new, replay included, and the next save must
remove what the killed one left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlkit.agents import DQN
from rlkit.checkpoint import CONFIG_FILE
from rlkit.envs import make_vec_env
from rlkit.prototypes import load_agent
from rlkit.utils import files

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("strace") is None,
    reason="fault injection needs Linux and strace",
)

SYSCALLS = (
    "write,pwrite64,writev,pwritev,rename,renameat,renameat2,mkdir,mkdirat,unlink,unlinkat,"
    "rmdir,fsync,fdatasync"
)
OLD_STEPS, NEW_STEPS = 200, 600


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """A DQN with its replay in checkpoints, saved at 200 steps (the pristine old checkpoint)
    and trained on to 600 (what each killed save tries to write)."""
    root = tmp_path_factory.mktemp("faults")
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = DQN(env, seed=0, learning_starts=50, buffer_size=1000, save_replay=True)
    agent.train(OLD_STEPS, progress_bar=False)
    agent.save(root / "pristine")
    agent.train(NEW_STEPS, progress_bar=False)
    yield agent, root / "pristine"
    env.close()


def _killed_save(
    agent: Any, target: Path, point: tuple[str, int] | None, log: Path | None = None
) -> int:
    """Save in a forked child killed at ``point`` (the N-th call of one syscall); the wait
    status. ``log`` receives strace's trace."""
    pid = os.fork()
    if pid == 0:  # child: wait for strace, save, leave without running any cleanup
        os.kill(os.getpid(), signal.SIGSTOP)
        code = 0
        try:
            agent.save(target, overwrite=True)
        except BaseException:
            code = 3
        os._exit(code)
    os.waitpid(pid, os.WUNTRACED)
    output = str(log) if log is not None else "/dev/null"
    command = ["strace", "-qq", "-f", "-p", str(pid), "-e", f"trace={SYSCALLS}", "-o", output]
    if point is not None:
        command += ["-e", f"inject={point[0]}:signal=KILL:when={point[1]}"]
    tracer = subprocess.Popen(command, stderr=subprocess.PIPE)
    time.sleep(0.2)  # strace has attached (it reports failures on stderr)
    os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the save at injection point {point} hung")
        time.sleep(0.01)
    _, err = tracer.communicate(timeout=30)
    if tracer.returncode not in (0, None) and b"attach" in err:
        pytest.skip(f"strace cannot attach here: {err.decode().strip()}")
    return status


def _check_complete(target: Path) -> int:
    """Load the checkpoint (through the normal load path) and return its step count, after
    checking that its replay holds exactly what that many steps collected."""
    agent = load_agent(target)
    step = agent.global_step
    assert step in (OLD_STEPS, NEW_STEPS), step
    assert len(agent.storage) == step, (len(agent.storage), step)
    agent.env.close()
    return step


def _hidden(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.glob(f".{target.name}.*"))


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_a_save_killed_at_any_syscall_leaves_one_complete_checkpoint(
    agents: tuple[Any, Path],
    tmp_path: Path,
    exchange: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent, pristine = agents
    if not exchange:  # a filesystem without RENAME_EXCHANGE
        monkeypatch.setattr("rlkit.checkpoint.exchange_paths", lambda a, b: False)
    elif not files.exchange_paths(*_pair(tmp_path)):
        pytest.skip("this filesystem cannot exchange directories")
    target = tmp_path / "run" / "checkpoint"
    shutil.copytree(pristine, target)
    trace = tmp_path / "trace.txt"
    assert os.WIFEXITED(_killed_save(agent, target, None, trace))
    calls: dict[str, int] = {}
    for line in trace.read_text().splitlines():
        name = line.split(maxsplit=1)[-1].split("(", 1)[0]
        if name.isidentifier():
            calls[name] = calls.get(name, 0) + 1
    points = [(name, n) for name, count in calls.items() for n in range(1, count + 1)]
    assert len(points) > 20 and ("renameat2" in calls) == exchange, calls
    seen = {OLD_STEPS: 0, NEW_STEPS: 0}
    for point in points:
        shutil.rmtree(target.parent, ignore_errors=True)
        shutil.copytree(pristine, target)
        status = _killed_save(agent, target, point)
        if os.WIFEXITED(status):  # e.g. a call made only on the uninjected run
            assert os.WEXITSTATUS(status) == 0, point
        else:
            assert os.WTERMSIG(status) == signal.SIGKILL, point
        if exchange:  # exactly one complete checkpoint is visible at every instant
            assert (target / CONFIG_FILE).is_file(), (point, _hidden(target))
        seen[_check_complete(target)] += 1
        agent.save(target, overwrite=True)  # the next save cleans what the killed one left
        assert _hidden(target) == [], (point, _hidden(target))
        assert _check_complete(target) == NEW_STEPS
    assert seen[OLD_STEPS] > 0 and seen[NEW_STEPS] > 0, seen


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "probe-a", tmp_path / "probe-b"
    a.mkdir()
    b.mkdir()
    return a, b
