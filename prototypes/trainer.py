"""The training loop shared by every prototype: iterations until a step target, progress bar,
logging, periodic checkpoints, and the one-time report of what each component runs on."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlkit.config import config_to_dict
from rlkit.logging import Logger, ProgressBar

if TYPE_CHECKING:
    from .base import Agent
    from .callbacks import Callback

log = logging.getLogger("rlkit")


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
    """
    logger = None
    if run_dir is not None:
        logger = Logger(
            run_dir, tensorboard=tensorboard, wandb=wandb, config=config_to_dict(agent.config)
        )
    bar = ProgressBar(total_steps, agent.global_step, progress_bar, type(agent).__name__)
    next_checkpoint = agent.global_step + checkpoint_every if checkpoint_every and run_dir else None
    start_step, start_time = agent.global_step, time.perf_counter()
    started: list[Callback] = []
    try:
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
        if stop:
            log.info("train: stopped by a callback at step %d", agent.global_step)
    finally:
        for callback in reversed(started):
            callback.on_train_end(agent)
        bar.close()
        if logger is not None:
            logger.close()


__all__ = ["run_training"]
