"""One trial: train a configuration for a step budget on each seed, evaluating on the way.

Both backends run trials through :func:`run_trial`; they differ only in the ``report``
function that receives the intermediate scores (and may ask to stop the trial early).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from rlkit import runtime
from rlkit.device import resolve_device
from rlkit.prototypes.callbacks import Evaluate
from rlkit.prototypes.settings import make_run_env

from .space import apply_params

#: ``report(step, score) -> stop``: ``step`` counts env steps over all seeds of the trial.
Report = Callable[[int, float], bool]


class Pruned(Exception):
    """The backend stopped the trial after an intermediate score."""


@dataclasses.dataclass(frozen=True)
class TrialPlan:
    """What every trial of a study shares: the agent, the base config and the budget.

    ``seeds`` are the training seeds each configuration runs on (the same for every trial,
    so trials differ by configuration and not by luck); ``evals`` evaluations per seed are
    reported; the trial's score is the mean over seeds of the final evaluation's return.
    """

    algo: str
    run: Mapping[str, Any]
    hyper: Mapping[str, Any]
    prims: Mapping[str, Any]
    budget: int
    seeds: tuple[int, ...]
    evals: int = 5
    eval_episodes: int = 10

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ValueError(f"rlkit tune: --budget must be >= 1 env step, got {self.budget}")
        if not self.seeds:
            raise ValueError("rlkit tune: --seeds must be >= 1")
        if self.evals < 1:
            raise ValueError(f"rlkit tune: --evals must be >= 1, got {self.evals}")
        if self.eval_episodes < 1:
            raise ValueError(f"rlkit tune: --eval-episodes must be >= 1, got {self.eval_episodes}")

    @property
    def max_step(self) -> int:
        """The last step a trial reports (the pruners' time axis)."""
        return self.budget * len(self.seeds)

    def settings(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
        """Run settings, hyperparameters and primitives of a trial with ``params`` drawn."""
        return apply_params(params, self.run, self.hyper, self.prims)


class _ReportingEvaluate(Evaluate):
    """:class:`Evaluate` that hands each score to the backend and stops when it says so."""

    def __init__(
        self,
        every: int,
        episodes: int,
        seed: int,
        offset: int,
        budget: int,
        max_step: int,
        report: Report,
    ) -> None:
        super().__init__(every, episodes=episodes, seed=seed)
        self.offset = offset
        self.budget = budget
        self.max_step = max_step
        self.report = report
        self.stopped = False

    def on_iteration(self, agent: Any, metrics: dict[str, float]) -> bool:
        before = len(self.history)
        super().on_iteration(agent, metrics)
        if len(self.history) == before:
            return False
        step, result = self.history[-1]
        score = float(result["return_mean"])
        if not math.isfinite(score):
            raise FloatingPointError(f"evaluation return is {score} at step {step}")
        # Report on the evaluation grid, so trials whose iterations end at different steps
        # still compare at the same points (pruners compare scores at equal steps).
        grid = min((step // self.every) * self.every, self.budget)
        stop = bool(self.report(self.offset + grid, score))
        # The score at the end of the last seed is the trial's result, not a reason to stop.
        self.stopped = stop and self.offset + grid < self.max_step
        return self.stopped


def run_trial(plan: TrialPlan, params: Mapping[str, Any], report: Report) -> float:
    """Train ``params`` over ``plan`` on every seed and return the mean final return.

    Raises :class:`Pruned` when ``report`` asks to stop.
    """
    finals = seed_scores(plan, params, report)
    return sum(finals) / len(finals)


def seed_scores(plan: TrialPlan, params: Mapping[str, Any], report: Report) -> list[float]:
    """The final evaluation return of ``params`` on each of ``plan.seeds``."""
    from rlkit.prototypes import AGENTS

    agent_cls: Any = AGENTS.get(plan.algo)
    run, hyper, prims = plan.settings(params)
    if "num_threads" not in hyper:  # one thread per trial: trials run side by side
        hyper["num_threads"] = runtime.default_num_threads(
            resolve_device(hyper.get("device", "auto"))
        )
    every = max(1, plan.budget // plan.evals)
    finals: list[float] = []
    for index, seed in enumerate(plan.seeds):
        env = make_run_env(run, seed=seed)
        try:
            agent = agent_cls(env, **{**hyper, "seed": seed}, **prims)
            evaluate = _ReportingEvaluate(
                every,
                plan.eval_episodes,
                seed + 10_000,
                index * plan.budget,
                plan.budget,
                plan.max_step,
                report,
            )
            agent.train(plan.budget, progress_bar=False, tensorboard=False, callbacks=[evaluate])
            if evaluate.stopped:
                raise Pruned(f"stopped at step {index * plan.budget + agent.global_step}")
            if evaluate.history and evaluate.history[-1][0] >= agent.global_step:
                final = float(evaluate.history[-1][1]["return_mean"])
            else:  # the budget was not a multiple of the evaluation interval
                final = float(
                    agent.evaluate(episodes=plan.eval_episodes, seed=seed + 10_000)["return_mean"]
                )
                stop = report((index + 1) * plan.budget, final)
                if stop and index + 1 < len(plan.seeds):
                    raise Pruned(f"stopped at step {(index + 1) * plan.budget}")
        finally:
            env.close()
        if not math.isfinite(final):
            raise FloatingPointError(f"final evaluation return is {final} (seed {seed})")
        finals.append(final)
    return finals


__all__ = ["Pruned", "Report", "TrialPlan", "run_trial", "seed_scores"]
