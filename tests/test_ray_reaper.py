"""A learner that started a local Ray instance and is killed (SIGKILL) leaves no Ray process
behind: its watchdog (:mod:`rlkit.distributed.reaper`) kills raylet, GCS, the dashboard and
runtime-env agents and the actors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray")
pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
    pytest.mark.xdist_group("ray"),  # one local Ray at a time (pyproject addopts)
]

from rlkit.distributed.reaper import _descendants, _table  # noqa: E402

LEARNER = """
from rlkit.agents import APPO
from rlkit.envs import make_vec_env
agent = APPO(make_vec_env("CartPole-v1", num_envs=2, seed=0), seed=0, backend="ray", num_actors=1)
print("ready", flush=True)
agent.train(10_000_000, progress_bar=False)
"""


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def test_killing_the_learner_leaves_no_ray_process_behind() -> None:
    learner = subprocess.Popen(
        [sys.executable, "-c", LEARNER],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert learner.stdout is not None and learner.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 90
        while True:  # until the actor and Ray's agents are up
            table = _table()
            started = {pid: table[pid][1] for pid in _descendants({learner.pid}, table)}
            names = {_name(pid) for pid in started}
            if "raylet" in names and sum(n.startswith("ray::") for n in names) >= 2:
                break
            assert time.monotonic() < deadline, names
            time.sleep(0.5)
    finally:
        os.kill(learner.pid, signal.SIGKILL)
        learner.wait()
    deadline = time.monotonic() + 20
    while True:
        table = _table()
        left = [pid for pid, start in started.items() if pid in table and table[pid][1] == start]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    names = {pid: _name(pid) for pid in left}
    for pid in left:  # leave the machine clean even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"{len(left)} process(es) of the killed learner's Ray outlived it: {names}"
