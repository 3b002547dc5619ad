"""The distributed backend: the same search on Ray Tune (``--backend ray``).

Values are drawn by Ray's Optuna searcher from the same define-by-run space (TPE, same
conditions), trials run as Ray tasks with one CPU each, and the pruner becomes the matching
Ray scheduler: ``median`` -> ``MedianStoppingRule``, ``halving`` -> ``ASHAScheduler``. With
``address`` the search joins an existing cluster (every node needs rlkit and the env's
packages installed); without it a local Ray instance is started and shut down afterwards.
Ray keeps its experiment state under ``out/ray``: running the command again resumes it.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .optuna_backend import SearchSettings, import_optuna, make_sampler
from .records import TrialRecord
from .space import SearchSpace
from .trial import Pruned, TrialPlan, run_trial

METRIC = "score"
STEP = "step"


def import_ray_tune() -> Any:
    """``ray.tune``, or an error naming the extra that installs it."""
    try:
        from ray import tune
    except ImportError:
        raise ImportError(
            "rlkit tune --backend ray needs Ray Tune: pip install 'rlkit[tune-ray]' "
            "(or pip install 'ray[tune]')"
        ) from None
    return tune


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Ray may nest ``a/b`` keys; the space's names are flat."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}/"))
        else:
            out[name] = value
    return out


def _trainable(config: dict[str, Any], plan: TrialPlan, space: SearchSpace) -> None:
    tune = import_ray_tune()
    params = space.decode(_flatten(config))
    start = time.perf_counter()

    def report(step: int, score: float) -> bool:
        tune.report({METRIC: score, STEP: step, "final": False})
        return False  # Ray's scheduler stops a trial itself

    try:
        value = run_trial(plan, params, report)
    except Pruned:  # pragma: no cover - report never asks to stop on Ray
        return
    tune.report(
        {
            METRIC: value,
            STEP: plan.max_step,
            "final": True,
            "seconds": time.perf_counter() - start,
        }
    )


def _scheduler(settings: SearchSettings, plan: TrialPlan) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    if settings.pruner == "median":
        return MedianStoppingRule(
            time_attr=STEP,
            metric=METRIC,
            mode="max",
            grace_period=max(1, plan.budget // 3),
            min_samples_required=settings.startup_trials,
        )
    if settings.pruner == "halving":
        return ASHAScheduler(
            time_attr=STEP,
            metric=METRIC,
            mode="max",
            max_t=plan.max_step,
            grace_period=max(1, plan.budget // plan.evals),
            reduction_factor=3,
        )
    return FIFOScheduler()


def run_search(
    out: Path,
    name: str,
    settings: SearchSettings,
    plan: TrialPlan,
    space: SearchSpace,
    address: str | None = None,
    start: Sequence[Mapping[str, Any]] = (),
) -> list[TrialRecord]:
    """Run the study on Ray; return one record per trial."""
    tune = import_ray_tune()
    import ray
    from ray.tune.search.optuna import OptunaSearch

    import_optuna()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            kwargs["num_cpus"] = settings.jobs
        ray.init(address=address, **kwargs)
        started = True
    try:
        trainable = tune.with_parameters(_trainable, plan=plan, space=space)
        trainable = tune.with_resources(trainable, {"cpu": 1})
        path = (out / "ray").resolve()
        if (path / name).exists() and tune.Tuner.can_restore(str(path / name)):
            tuner = tune.Tuner.restore(str(path / name), trainable, resume_errored=True)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                searcher = OptunaSearch(
                    space=space.suggest,
                    metric=METRIC,
                    mode="max",
                    sampler=make_sampler(settings, settings.seed),
                    points_to_evaluate=[dict(v) for v in start] or None,
                )
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    search_alg=searcher,
                    scheduler=_scheduler(settings, plan),
                    num_samples=settings.trials,
                    max_concurrent_trials=settings.jobs,
                ),
                run_config=tune.RunConfig(
                    name=name, storage_path=str(path), verbose=0 if settings.quiet else 1
                ),
            )
        grid = tuner.fit()
        return [_record(i, result, plan, space) for i, result in enumerate(grid)]
    finally:
        if started:
            ray.shutdown()


def _record(number: int, result: Any, plan: TrialPlan, space: SearchSpace) -> TrialRecord:
    metrics = result.metrics or {}
    params = space.decode(_flatten(result.config or {}))
    value = metrics.get(METRIC)
    if value is not None and not math.isfinite(float(value)):
        value = None
    if result.error is not None:
        state, error = "failed", f"{type(result.error).__name__}: {result.error}"
    elif metrics.get("final"):
        state, error = "complete", None
    else:
        state, error = "pruned", None
    return TrialRecord(
        number=number,
        state=state,
        value=None if value is None else float(value),
        params=params,
        steps=int(metrics.get(STEP, 0)),
        seconds=float(metrics.get("time_total_s", 0.0)),
        error=error,
    )


__all__ = ["import_ray_tune", "run_search"]
