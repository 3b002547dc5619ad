"""The training loop shared by every prototype: iterations until a step target, progress bar,
logging, periodic checkpoints, and the one-time report of what each component runs on."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlkit.config import config_to_dict
from rlkit.logging import Logger, ProgressBar

if TYPE_CHECKING:
    from .base import Agent
    from .callbacks import Callback

log = logging.getLogger("rlkit")

#: the signals that stop training cleanly (at the end of the current iteration).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by SIGINT (Ctrl-C) or SIGTERM. With a run directory a resumable
    checkpoint was written first: :attr:`checkpoint` (else ``None``); the message says how to
    resume. A ``KeyboardInterrupt``, so code that already handles Ctrl-C keeps working."""

    def __init__(self, message: str, step: int, checkpoint: Path | None) -> None:
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint


class _StopRequests:
    """Records SIGINT/SIGTERM while installed (main thread only); a second signal of either
    kind restores the previous handlers and interrupts at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None:  # asked twice: stop now
            self.restore()
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} received twice")
        self.received = signum
        log.warning(
            "%s received: stopping at the end of this iteration (send it again to stop now)",
            signal.Signals(signum).name,
        )

    @contextmanager
    def installed(self) -> Iterator[_StopRequests]:
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals are delivered to the main thread only
            return
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)
        try:
            yield self
        finally:
            self.restore()

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()


def _interrupt(agent: Agent, signum: int, run_dir: str | Path | None) -> TrainingInterrupted:
    """Save a resumable checkpoint (with a run directory) and build the exception to raise."""
    name = signal.Signals(signum).name
    step = agent.global_step
    if run_dir is None:
        return TrainingInterrupted(
            f"training stopped by {name} at step {step}; nothing was saved (no run_dir); "
            "agent.save(path) keeps what was learned",
            step,
            None,
        )
    path = agent.save(Path(run_dir) / "checkpoint", overwrite=True)
    algo = type(agent).registry_id or "ALGO"
    return TrainingInterrupted(
        f"training stopped by {name} at step {step}; saved a resumable checkpoint to {path}; "
        f"resume with: rlkit train {algo} --resume {run_dir} --out {run_dir} --total-steps N "
        f"(or {type(agent).__name__}.load('{path}').train(N, run_dir='{run_dir}'))",
        step,
        path,
    )


def run_training(
    agent: Agent,
    total_steps: int,
    run_dir: str | Path | None = None,
    progress_bar: bool = True,
    checkpoint_every: int | None = None,
    tensorboard: bool = True,
    wandb: Mapping[str, Any] | None = None,
    callbacks: Sequence[Callback] = (),
) -> None:
    """Call ``agent.iteration()`` until ``agent.global_step`` reaches ``total_steps``.

    With ``run_dir``: ``progress.csv``, TensorBoard scalars and, every ``checkpoint_every`` env
    steps, a checkpoint in ``run_dir/checkpoint``. After the first iteration the backend report
    (which implementation each component took, and why it fell back) is logged once.

    SIGINT (Ctrl-C) and SIGTERM stop training at the end of the current iteration: with
    ``run_dir`` a resumable checkpoint is written to ``run_dir/checkpoint`` first, then
    :class:`TrainingInterrupted` is raised (a second signal interrupts at once).
    """
    logger = None
    if run_dir is not None:
        logger = Logger(
            run_dir, tensorboard=tensorboard, wandb=wandb, config=config_to_dict(agent.config)
        )
    bar = ProgressBar(total_steps, agent.global_step, progress_bar, type(agent).__name__)
    started: list[Callback] = []
    stops = _StopRequests()
    try:
        with stops.installed():
            _loop(
                agent,
                total_steps,
                run_dir,
                checkpoint_every,
                callbacks,
                logger,
                bar,
                stops,
                started,
            )
    finally:
        for callback in reversed(started):
            callback.on_train_end(agent)
        bar.close()
        if logger is not None:
            logger.close()


def _loop(
    agent: Agent,
    total_steps: int,
    run_dir: str | Path | None,
    checkpoint_every: int | None,
    callbacks: Sequence[Callback],
    logger: Logger | None,
    bar: ProgressBar,
    stops: _StopRequests,
    started: list[Callback],
) -> None:
    next_checkpoint = agent.global_step + checkpoint_every if checkpoint_every and run_dir else None
    start_step, start_time = agent.global_step, time.perf_counter()
    for callback in callbacks:
        callback.on_train_start(agent)
        started.append(callback)
    stop = False
    while agent.global_step < total_steps and not stop:
        before = agent.global_step
        metrics = dict(agent.iteration())
        agent.backend_report.log_once()
        # every callback sees every iteration, even after an earlier one asked to stop
        stop = any([callback.on_iteration(agent, metrics) for callback in callbacks])
        elapsed = time.perf_counter() - start_time
        sps = (agent.global_step - start_step) / max(elapsed, 1e-9)
        ret = agent.episodes.return_mean
        bar.update(agent.global_step - before, sps, ret)
        if logger is not None:
            row = {
                "time/sps": sps,
                "time/elapsed_s": elapsed,
                "time/updates": float(agent.num_updates),
                **metrics,
            }
            if ret is not None:
                row["rollout/return_mean"] = ret
                row["rollout/length_mean"] = float(agent.episodes.length_mean or 0.0)
            logger.write(agent.global_step, row)
        if next_checkpoint is not None and agent.global_step >= next_checkpoint:
            assert run_dir is not None and checkpoint_every is not None
            agent.save(Path(run_dir) / "checkpoint", overwrite=True)
            next_checkpoint += checkpoint_every
        if stops.received is not None:
            raise _interrupt(agent, stops.received, run_dir)
    if stop:
        log.info("train: stopped by a callback at step %d", agent.global_step)


__all__ = ["STOP_SIGNALS", "TrainingInterrupted", "run_training"]
