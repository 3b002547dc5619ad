"""``rlkit.tune.tune``: the hyperparameter search behind ``rlkit tune``, callable from Python."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from rlkit.prototypes.settings import resolve_train_settings

from . import optuna_backend, outputs
from .records import TrialRecord, best_of, counts, table
from .space import SearchSpace, SpaceError, builtin_space
from .trial import TrialPlan

BACKENDS = ("optuna", "ray")
#: settings a study is made with; resuming with different ones is refused.
_PLAN_KEYS = ("algo", "env", "budget", "seeds", "evals", "eval_episodes", "space")


@dataclasses.dataclass
class TuneResult:
    """What a study found: every trial, the best one, the config file written for it, the
    re-evaluation of the top trials on fresh seeds and the run directory."""

    out: Path
    trials: list[TrialRecord]
    best: TrialRecord | None
    best_config: dict[str, Any] | None
    best_config_path: Path | None
    reevaluation: list[outputs.Reevaluation]
    importances: dict[str, float]

    def table(self, limit: int | None = None) -> str:
        return table(self.trials, limit)


def _space(space: SearchSpace | Mapping[str, Any] | str | Path | None, algo: str) -> SearchSpace:
    if space is None:
        return builtin_space(algo)
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, Mapping):
        return SearchSpace.from_dict(space)
    if isinstance(space, str | Path):
        return SearchSpace.load(space)
    raise TypeError(
        f"tune: space must be a SearchSpace, a mapping or a YAML path, got {type(space).__name__}"
    )


def _positive(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"rlkit tune: --{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def tune(
    algo: str,
    env: str | None = None,
    *,
    space: SearchSpace | Mapping[str, Any] | str | Path | None = None,
    trials: int = 20,
    budget: int | None = None,
    seeds: int = 1,
    out: str | Path | None = None,
    config: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    backend: str = "optuna",
    address: str | None = None,
    jobs: int = 1,
    pruner: str = "median",
    evals: int = 5,
    eval_episodes: int = 10,
    seed: int = 0,
    top: int = 3,
    eval_seeds: int = 5,
    start: Sequence[Mapping[str, Any]] | Mapping[str, Any] | str | Path | None = None,
    plots: bool = True,
    quiet: bool = False,
) -> TuneResult:
    """Search hyperparameters of agent ``algo`` on ``env`` and write the results to ``out``.

    Each trial draws values from ``space`` (default: the agent's built-in space), puts them
    over the base config (the agent's preset for the env < ``config`` file < ``overrides``,
    as ``rlkit train`` merges them), trains ``budget`` env steps (default: the base config's
    ``total_steps``) on each of ``seeds`` seeds (``seed``, ``seed + 1``, ...; the same for
    every trial) and scores the mean final evaluation return (``eval_episodes`` deterministic
    episodes). ``evals`` evaluations per seed go to the pruner (``median``, ``halving`` or
    ``none``). The ``optuna`` backend keeps the study in ``out/study.db``: calling again with
    the same ``out`` resumes it up to ``trials``. ``backend="ray"`` runs the same search on
    Ray Tune (``address`` joins a cluster). Afterwards the ``top`` best trials are trained
    again on ``eval_seeds`` fresh seeds for scores with confidence intervals. ``start``: one
    or more configurations of the space's parameters to try first (a mapping, a list of
    mappings, or a YAML file holding either), e.g. the setting in use today; they are
    re-evaluated beside the top trials, so the table says whether the search beat them.

    Writes ``trials.csv``, ``best.yaml`` (``rlkit train ALGO --config best.yaml``),
    ``summary.json``, ``reevaluation.json`` and, with ``plots``, ``history.png`` and
    ``importance.png``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"rlkit tune: --backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise ValueError("rlkit tune: --address joins a Ray cluster; it needs --backend ray")
    for name, value, minimum in (
        ("trials", trials, 1),
        ("seeds", seeds, 1),
        ("jobs", jobs, 1),
        ("evals", evals, 1),
        ("eval-episodes", eval_episodes, 1),
        ("top", top, 0),
        ("eval-seeds", eval_seeds, 1),
        ("seed", seed, 0),
    ):
        _positive(name, value, minimum)
    explicit = dict(overrides or {})
    if env is not None:
        explicit["env"] = env
    agent_cls, run, hyper, prims = resolve_train_settings(
        algo, explicit, config, command="rlkit tune"
    )
    if "env" not in run:
        raise ValueError("rlkit tune: --env ENV_ID is required (or `env:` in the config file)")
    search_space = _space(space, algo)
    search_space.check_agent(agent_cls)
    first = [search_space.encode_start(v) for v in _start(start)]
    if budget is None:
        budget = int(run.get("total_steps", 100_000))
    _positive("budget", budget)
    run.pop("seed", None)
    hyper.pop("seed", None)
    plan = TrialPlan(
        algo=algo,
        run=run,
        hyper=hyper,
        prims=prims,
        budget=budget,
        seeds=tuple(range(seed, seed + seeds)),
        evals=evals,
        eval_episodes=eval_episodes,
    )
    settings = optuna_backend.SearchSettings(
        trials=trials, pruner=pruner, jobs=jobs, seed=seed, quiet=quiet
    )
    directory = Path(out) if out is not None else _default_out(algo, str(run["env"]), backend)
    identity = {
        "algo": algo,
        "env": str(run["env"]),
        "budget": budget,
        "seeds": list(plan.seeds),
        "evals": evals,
        "eval_episodes": eval_episodes,
        "space": search_space.names,
        "backend": backend,
    }
    _prepare(directory, identity)
    name = f"{algo}-{str(run['env']).replace('/', '_')}"
    _say(
        quiet,
        f"[tune] {algo} on {run['env']}: {trials} trials, {budget} steps x {seeds} seed(s), "
        f"{backend} backend, study in {directory}",
    )
    if backend == "optuna":
        study = optuna_backend.run_search(directory, name, settings, plan, search_space, first)
        records = optuna_backend.records(study, search_space)
    else:
        from . import ray_backend

        records = ray_backend.run_search(
            directory, name, settings, plan, search_space, address=address, start=first
        )
    baselines = [search_space.decode(v) for v in first]
    return _finish(
        directory, algo, plan, search_space, records, top, eval_seeds, plots, quiet, baselines
    )


def _start(
    start: Sequence[Mapping[str, Any]] | Mapping[str, Any] | str | Path | None,
) -> list[Mapping[str, Any]]:
    if start is None:
        return []
    if isinstance(start, str | Path):
        try:
            start = yaml.safe_load(Path(start).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"rlkit tune: --start file {start} does not exist") from None
        except yaml.YAMLError as e:
            raise SpaceError(f"rlkit tune: --start file {start} is not valid YAML: {e}") from None
    if isinstance(start, Mapping):
        return [start]
    if isinstance(start, list | tuple) and all(isinstance(v, Mapping) for v in start):
        return list(start)
    raise SpaceError(
        f"rlkit tune: start must be a mapping of parameter values or a list of them, got {start!r}"
    )


def _default_out(algo: str, env_id: str, backend: str) -> Path:
    return Path("runs") / f"tune-{algo}-{env_id.replace('/', '_')}"


def _prepare(directory: Path, identity: dict[str, Any]) -> None:
    """Create the run directory, or check that the study in it was made with these settings."""
    marker = directory / "tune.json"
    if marker.exists():
        try:
            saved = json.loads(marker.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"rlkit tune: {marker} is not valid JSON ({e})") from None
        differ = [
            k
            for k in (*_PLAN_KEYS, "backend")
            if k in saved and k in identity and saved[k] != identity[k]
        ]
        if differ:
            shown = ", ".join(f"{k}: {saved[k]!r} there, {identity[k]!r} now" for k in differ)
            raise ValueError(
                f"rlkit tune: the study in {directory} was made with other settings ({shown}); "
                "pass the same settings to resume it, or choose another --out"
            )
        return
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(
            f"rlkit tune: {directory} exists and holds no study (no tune.json); choose another "
            "--out"
        )
    directory.mkdir(parents=True, exist_ok=True)
    from rlkit.utils.files import write_bytes_atomic

    write_bytes_atomic(marker, json.dumps(identity, indent=2).encode())


def _finish(
    directory: Path,
    algo: str,
    plan: TrialPlan,
    space: SearchSpace,
    records: Sequence[TrialRecord],
    top: int,
    eval_seeds: int,
    plots: bool,
    quiet: bool,
    baselines: Sequence[Mapping[str, Any]] = (),
) -> TuneResult:
    records = sorted(records, key=lambda r: r.number)
    outputs.write_trials(directory, records)
    best = best_of(records)
    tally = counts(records)
    if best is None:
        errors = sorted({r.error for r in records if r.error})
        reason = f"; first error: {errors[0]}" if errors else ""
        raise RuntimeError(
            f"rlkit tune: no trial completed ({tally['failed']} failed, {tally['pruned']} "
            f"pruned){reason}"
        )
    config_path = outputs.write_best(directory / "best.yaml", algo, plan, best, len(records))
    weights = outputs.importances(records, space)
    rows: list[outputs.Reevaluation] = []
    if top > 0:
        start = plan.seeds[-1] + 1000
        _say(quiet, f"[tune] re-evaluating the top {top} trial(s) on {eval_seeds} fresh seeds")
        rows = outputs.reevaluate(plan, records, top, range(start, start + eval_seeds), baselines)
    if plots:
        outputs.plot(directory, records, weights)
    summary = {
        "algo": algo,
        "env": plan.run["env"],
        "budget": plan.budget,
        "seeds": list(plan.seeds),
        "trials": tally,
        "best": best.to_json(),
        "best_config": str(config_path),
        "importances": weights,
        "reevaluation": [r.to_json() for r in rows],
    }
    outputs.write_summary(directory, summary)
    if not quiet:
        print(table(records, limit=10))
        print(
            f"best: trial {best.number}, score {best.value:.4g}; config {config_path} "
            f"(rlkit train {algo} --config {config_path})"
        )
        if rows:
            print(outputs.reevaluation_table(rows))
    return TuneResult(
        out=directory,
        trials=list(records),
        best=best,
        best_config=outputs.best_config(plan, best.params),
        best_config_path=config_path,
        reevaluation=rows,
        importances=weights,
    )


__all__ = ["BACKENDS", "SpaceError", "TuneResult", "tune"]
