"""The embedded backend: an Optuna study in an SQLite file inside the run directory.

The study file is the whole state: a killed search resumes by running the same command again
(trials that were running when it died are marked failed and queued again with the same
values). ``jobs > 1`` runs trials side by side in worker processes that share the file.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlkit.utils.processes import pid_alive

from .records import TrialRecord
from .space import SearchSpace
from .trial import Pruned, TrialPlan, run_trial

PRUNERS = ("median", "halving", "none")
STUDY_FILE = "study.db"
LOCK_FILE = "tune.lock"
#: a study attribute listing the trials that were queued again after an interruption.
_REQUEUED = "rlkit_requeued"


def import_optuna() -> Any:
    """Optuna, or an error naming the extra that installs it."""
    try:
        import optuna
    except ImportError:
        raise ImportError(
            "rlkit tune needs optuna: pip install 'rlkit[tune]' (or pip install optuna)"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """How the search proceeds: sampler seed, pruner, how many trials run side by side."""

    trials: int
    pruner: str = "median"
    jobs: int = 1
    seed: int = 0
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ValueError(f"rlkit tune: --trials must be >= 1, got {self.trials}")
        if self.pruner not in PRUNERS:
            raise ValueError(
                f"rlkit tune: --pruner {self.pruner!r} is not one of {', '.join(PRUNERS)}"
            )
        if self.jobs < 1:
            raise ValueError(f"rlkit tune: --jobs must be >= 1, got {self.jobs}")

    @property
    def startup_trials(self) -> int:
        """Trials drawn at random before TPE models the results (and before pruning)."""
        return max(1, min(10, self.trials // 3))


def make_pruner(settings: SearchSettings, plan: TrialPlan) -> Any:
    optuna = import_optuna()
    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=settings.startup_trials, n_warmup_steps=plan.budget // 3
        )
    if settings.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, plan.budget // plan.evals), reduction_factor=3
        )
    return optuna.pruners.NopPruner()


def make_sampler(settings: SearchSettings, seed: int) -> Any:
    optuna = import_optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            n_startup_trials=settings.startup_trials, multivariate=True, group=True, seed=seed
        )


def storage_url(out: Path) -> str:
    return f"sqlite:///{(out / STUDY_FILE).resolve()}"


def _storage(out: Path) -> Any:
    optuna = import_optuna()
    return optuna.storages.RDBStorage(
        storage_url(out), engine_kwargs={"connect_args": {"timeout": 60}}
    )


class StudyLock:
    """``out/tune.lock`` holds the pid of the process running the study; a lock left by a
    process that no longer exists is taken over (the study resumes)."""

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK_FILE

    def __enter__(self) -> StudyLock:
        if self.path.exists():
            try:
                pid = int(self.path.read_text().strip() or 0)
            except ValueError:
                pid = 0
            if pid and pid != os.getpid() and pid_alive(pid):
                raise RuntimeError(
                    f"rlkit tune: {self.path.parent} is in use by process {pid}; wait for it or "
                    "choose another --out"
                )
        self.path.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def open_study(
    out: Path,
    name: str,
    settings: SearchSettings,
    plan: TrialPlan,
    start: Sequence[Mapping[str, Any]] = (),
) -> Any:
    """Create or load the study; a new study queues the ``start`` configurations (as stored
    values) first; trials left running by a dead process are failed and queued again with the
    values they had drawn."""
    optuna = import_optuna()
    storage = _storage(out)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=make_sampler(settings, settings.seed),
        pruner=make_pruner(settings, plan),
    )
    if not study.trials:
        for values in start:
            study.enqueue_trial(dict(values))
    requeued = list(study.user_attrs.get(_REQUEUED, []))
    study_id = storage.get_study_id_from_name(name)
    running = optuna.trial.TrialState.RUNNING
    for trial in study.get_trials(deepcopy=False):
        interrupted = trial.state == running or (
            trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs.get("interrupted")
        )
        if not interrupted or trial.number in requeued:
            continue
        if trial.state == running:
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            storage.set_trial_user_attr(trial_id, "interrupted", True)
            storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
        if trial.params:  # (killed before its first value was drawn: nothing to repeat)
            study.enqueue_trial(trial.params, skip_if_exists=False)
        requeued.append(trial.number)
    study.set_user_attr(_REQUEUED, requeued)
    # A resumed study draws new random values: the sampler's seed moves with the history.
    study.sampler = make_sampler(settings, settings.seed + len(study.trials))
    return study


def finished(study: Any) -> int:
    """Trials that count toward ``--trials``: finished ones, less those queued again."""
    optuna = import_optuna()
    done = (
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.FAIL,
    )
    return sum(
        t.state in done and not t.user_attrs.get("interrupted")
        for t in study.get_trials(deepcopy=False)
    )


def objective(plan: TrialPlan, space: SearchSpace) -> Callable[[Any], float]:
    """The function Optuna calls per trial."""
    optuna = import_optuna()

    def run(trial: Any) -> float:
        params = space.suggest(trial)
        steps = [0]

        def report(step: int, score: float) -> bool:
            steps[0] = step
            trial.report(score, step)
            return bool(trial.should_prune())

        try:
            value = run_trial(plan, params, report)
        except Pruned:
            trial.set_user_attr("steps", steps[0])
            raise optuna.TrialPruned() from None
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as e:
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            raise
        trial.set_user_attr("steps", plan.max_step)
        return value

    return run


def progress_printer(space: SearchSpace, total: int) -> Callable[[Any, Any], None]:
    """A study callback printing one line per finished trial to stderr."""

    def show(study: Any, trial: Any) -> None:
        state = trial.state.name.lower().replace("fail", "failed")
        value = trial.value
        if value is None and trial.intermediate_values:
            value = trial.intermediate_values[max(trial.intermediate_values)]
        try:
            best = f"best {study.best_value:.4g} (trial {study.best_trial.number})"
        except ValueError:
            best = "no complete trial yet"
        params = " ".join(f"{k}={v!r}" for k, v in space.decode(trial.params).items())
        shown = "-" if value is None else f"{value:.4g}"
        error = trial.user_attrs.get("error")
        tail = f"  error: {error}" if error else ""
        print(
            f"[tune] {finished(study)}/{total} trial {trial.number} {state:<8} {shown:>9}  "
            f"{best}  {params}{tail}",
            file=sys.stderr,
            flush=True,
        )

    return show


def _optimize(
    study: Any,
    plan: TrialPlan,
    space: SearchSpace,
    n_trials: int,
    settings: SearchSettings,
) -> None:
    study.optimize(
        objective(plan, space),
        n_trials=n_trials,
        catch=(Exception,),
        callbacks=[] if settings.quiet else [progress_printer(space, settings.trials)],
        gc_after_trial=False,
    )


def _worker(
    out: Path,
    name: str,
    settings: SearchSettings,
    plan: TrialPlan,
    space: SearchSpace,
    n_trials: int,
    index: int,
) -> None:
    optuna = import_optuna()
    study = optuna.load_study(
        study_name=name,
        storage=_storage(out),
        sampler=make_sampler(settings, settings.seed + 7919 * (index + 1) + n_trials),
        pruner=make_pruner(settings, plan),
    )
    _optimize(study, plan, space, n_trials, settings)


def run_search(
    out: Path,
    name: str,
    settings: SearchSettings,
    plan: TrialPlan,
    space: SearchSpace,
    start: Sequence[Mapping[str, Any]] = (),
) -> Any:
    """Run the study in ``out`` up to ``settings.trials`` trials; return the study."""
    with StudyLock(out):
        study = open_study(out, name, settings, plan, start)
        remaining = settings.trials - finished(study)
        if remaining <= 0:
            return study
        jobs = min(settings.jobs, remaining)
        if jobs == 1:
            _optimize(study, plan, space, remaining, settings)
            return study
        context = multiprocessing.get_context("spawn")
        shares = [remaining // jobs + (i < remaining % jobs) for i in range(jobs)]
        workers = [
            context.Process(
                target=_worker,
                args=(out, name, settings, plan, space, share, i),
                name=f"rlkit-tune-{i}",
            )
            for i, share in enumerate(shares)
        ]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                worker.join()
        finally:
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
                    worker.join()
        failed = [w.name for w in workers if w.exitcode not in (0, None)]
        if failed:
            raise RuntimeError(
                f"rlkit tune: worker process(es) {', '.join(failed)} exited with an error "
                "(see above); run the command again to resume the study"
            )
        return study


def records(study: Any, space: SearchSpace) -> list[TrialRecord]:
    """Every trial of the study as a :class:`TrialRecord` (re-queued copies excluded)."""
    optuna = import_optuna()
    states = {
        optuna.trial.TrialState.COMPLETE: "complete",
        optuna.trial.TrialState.PRUNED: "pruned",
        optuna.trial.TrialState.FAIL: "failed",
        optuna.trial.TrialState.RUNNING: "running",
    }
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in states or t.user_attrs.get("interrupted"):
            continue
        value = t.value
        if value is None and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        if value is not None and not math.isfinite(value):
            value = None
        seconds = 0.0
        if t.datetime_start is not None:
            end = t.datetime_complete or datetime.datetime.now()
            seconds = (end - t.datetime_start).total_seconds()
        error = t.user_attrs.get("error") or t.system_attrs.get("fail_reason")
        out.append(
            TrialRecord(
                number=t.number,
                state=states[t.state],
                value=value,
                params=space.decode(t.params),
                steps=int(t.user_attrs.get("steps", 0)),
                seconds=seconds,
                error=error if t.state == optuna.trial.TrialState.FAIL else None,
            )
        )
    return out


__all__ = [
    "PRUNERS",
    "STUDY_FILE",
    "SearchSettings",
    "import_optuna",
    "open_study",
    "records",
    "run_search",
]
