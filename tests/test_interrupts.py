"""SIGINT (Ctrl-C) and SIGTERM stop training cleanly: a resumable checkpoint is saved first, the
message says how to resume, and resuming continues from the saved step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rlkit.agents import PPO
from rlkit.envs import make_vec_env
from rlkit.prototypes import load_agent
from rlkit.prototypes.trainer import TrainingInterrupted


def _signal_at(iteration: int, signum: int, times: int = 1) -> Any:
    calls = [0]

    def callback(agent: Any, metrics: dict[str, float]) -> None:
        calls[0] += 1
        if calls[0] == iteration:
            for _ in range(times):
                signal.raise_signal(signum)

    return callback


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_a_resumable_checkpoint_and_says_how_to_resume(
    tmp_path: Path, signum: int
) -> None:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    agent = PPO(make_vec_env("CartPole-v1", num_envs=2, seed=0), seed=0, num_steps=16)
    with pytest.raises(TrainingInterrupted) as info:
        agent.train(100_000, run_dir=tmp_path, progress_bar=False, callbacks=_signal_at(3, signum))
    stopped = info.value
    assert stopped.step == agent.global_step == 3 * 32
    assert stopped.checkpoint == tmp_path / "checkpoint"
    assert f"stopped by {signal.Signals(signum).name} at step 96" in str(stopped)
    assert f"rlkit train ppo --resume {tmp_path}" in str(stopped)
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # restored
    resumed = load_agent(tmp_path / "checkpoint")
    assert resumed.global_step == 96
    resumed.train(160, progress_bar=False)
    assert resumed.global_step == 160


def test_without_a_run_directory_nothing_is_saved_and_the_message_says_so() -> None:
    agent = PPO(make_vec_env("CartPole-v1", num_envs=2, seed=0), seed=0, num_steps=16)
    with pytest.raises(TrainingInterrupted, match="nothing was saved") as info:
        agent.train(100_000, progress_bar=False, callbacks=_signal_at(2, signal.SIGINT))
    assert info.value.checkpoint is None and info.value.step == 64


def test_a_second_signal_interrupts_at_once(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs as a background job
    agent = PPO(make_vec_env("CartPole-v1", num_envs=2, seed=0), seed=0, num_steps=16)
    with pytest.raises(KeyboardInterrupt, match="SIGINT received twice") as info:
        agent.train(
            100_000,
            run_dir=tmp_path,
            progress_bar=False,
            callbacks=_signal_at(2, signal.SIGINT, times=2),
        )
    assert not isinstance(info.value, TrainingInterrupted)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_command_saves_on_a_signal_and_resumes(tmp_path: Path, signum: int) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "rlkit", "train", "ppo", "--env", "CartPole-v1"]
    command += ["--num-envs", "2", "--num-steps", "16", "--no-progress", "--out", str(run)]
    proc = subprocess.Popen(
        [*command, "--total-steps", "100000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while (
        not (run / "progress.csv").exists()
        or len((run / "progress.csv").read_text().splitlines()) < 3
    ):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.startswith("rlkit:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "saved a resumable checkpoint" in lines[0] and "--resume" in lines[0]
    saved = json.loads((run / "checkpoint" / "config.json").read_text())
    step = saved["counters"]["global_step"]
    assert step > 0 and not (run / "final").exists()
    target = step + 64
    done = subprocess.run(
        [*command, "--resume", str(run), "--total-steps", str(target)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    final = json.loads((run / "final" / "config.json").read_text())
    assert final["counters"]["global_step"] == target
