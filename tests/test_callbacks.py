"""Training callbacks: called after every iteration on every prototype, can log metrics and stop
training, and evaluating inside training does not change what training does."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch

from rlkit.agents import DQN, IMPALA, PPO
from rlkit.envs import make_vec_env
from rlkit.prototypes import Agent, Callback, Evaluate

PPO_TINY = {"num_steps": 16, "batch_size": 16, "num_epochs": 1, "device": "cpu"}


def _ppo(seed: int = 0) -> PPO:
    return PPO(make_vec_env("CartPole-v1", num_envs=2, seed=seed), seed=seed, **PPO_TINY)


class Recorder(Callback):
    def __init__(self, stop_after: int | None = None) -> None:
        self.events: list[tuple[str, int]] = []
        self.stop_after = stop_after

    def on_train_start(self, agent: Agent) -> None:
        self.events.append(("start", agent.global_step))

    def on_iteration(self, agent: Agent, metrics: dict[str, float]) -> bool:
        self.events.append(("iteration", agent.global_step))
        metrics["custom/steps_seen"] = float(agent.global_step)
        return self.stop_after is not None and agent.global_step >= self.stop_after

    def on_train_end(self, agent: Agent) -> None:
        self.events.append(("end", agent.global_step))


def test_callback_sees_every_iteration_and_logs_its_metrics(tmp_path: Path) -> None:
    recorder = Recorder()
    _ppo().train(128, run_dir=tmp_path, progress_bar=False, callbacks=recorder)
    assert recorder.events == [
        ("start", 0),
        *[("iteration", 32 * k) for k in range(1, 5)],
        ("end", 128),
    ]
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["custom/steps_seen"]) for r in rows] == [32.0, 64.0, 96.0, 128.0]


def test_callback_returning_true_stops_training_and_every_callback_still_runs() -> None:
    seen: list[int] = []
    stopper, other = Recorder(stop_after=64), Recorder()
    agent = _ppo().train(
        10_000,
        progress_bar=False,
        callbacks=[stopper, other, lambda a, m: seen.append(a.global_step)],
    )
    assert agent.global_step == 64
    assert other.events[-2:] == [("iteration", 64), ("end", 64)]
    assert seen == [32, 64]
    # a later train call continues from where the stop left off
    agent.train(96, progress_bar=False)
    assert agent.global_step == 96


def test_on_train_end_runs_when_training_raises() -> None:
    recorder = Recorder()

    def explode(agent: Agent, metrics: dict[str, float]) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _ppo().train(128, progress_bar=False, callbacks=[recorder, explode])
    assert recorder.events[-1] == ("end", 32)


def test_evaluating_during_training_does_not_change_training() -> None:
    plain = _ppo().train(128, progress_bar=False)
    evaluations = Evaluate(every=32, episodes=2)
    evaluated = _ppo().train(128, progress_bar=False, callbacks=evaluations)
    for a, b in zip(plain.policy.parameters(), evaluated.policy.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert [step for step, _ in evaluations.history] == [32, 64, 96, 128]
    assert all(r["episodes"] == 2 for _, r in evaluations.history)
    assert evaluations.best == max(r["return_mean"] for _, r in evaluations.history)
    assert evaluations.last == evaluations.history[-1][1]["return_mean"]
    assert evaluations.reached_at is None


def test_evaluate_matches_agent_evaluate_and_stops_at_the_score() -> None:
    agent = _ppo()
    evaluations = Evaluate(every=64, episodes=4, stop_at=-1.0)  # any score reaches -1
    agent.train(10_000, progress_bar=False, callbacks=evaluations)
    assert agent.global_step == 64 and evaluations.reached_at == 64
    assert evaluations.history[0][1] == agent.evaluate(episodes=4)


def test_evaluate_keeps_its_grid_across_train_calls() -> None:
    evaluations = Evaluate(every=48, episodes=1)
    agent = _ppo().train(64, progress_bar=False, callbacks=evaluations)
    agent.train(160, progress_bar=False, callbacks=evaluations)
    # iterations end at 32, 64, ..., 160: the first at or past each multiple of 48 evaluates
    assert [step for step, _ in evaluations.history] == [64, 96, 160]


@pytest.mark.parametrize(
    "make",
    [
        lambda: DQN(
            make_vec_env("CartPole-v1", num_envs=2, seed=0),
            seed=0,
            learning_starts=16,
            batch_size=8,
            buffer_size=200,
            log_interval=32,  # an off-policy iteration is log_interval env steps
            device="cpu",
        ),
        lambda: IMPALA(
            make_vec_env("CartPole-v1", num_envs=2, seed=0),
            seed=0,
            num_actors=1,
            num_steps=8,
            device="cpu",
        ),
    ],
    ids=["off_policy", "distributed"],
)
def test_evaluate_runs_on_every_prototype(make: Any) -> None:
    evaluations = Evaluate(every=32, episodes=2)
    agent = make().train(96, progress_bar=False, callbacks=evaluations)
    assert len(evaluations.history) >= 2
    assert evaluations.history[-1][0] == agent.global_step


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every": 0}, "Evaluate: every must be > 0 env steps, got 0"),
        ({"every": 10, "episodes": 0}, "Evaluate: episodes must be >= 1, got 0"),
    ],
)
def test_evaluate_rejects_bad_settings(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Evaluate(**kwargs)


def test_train_rejects_a_callback_that_is_not_one() -> None:
    with pytest.raises(TypeError, match="callbacks must be Callback objects or functions"):
        _ppo().train(64, progress_bar=False, callbacks=[5])  # type: ignore[list-item]
