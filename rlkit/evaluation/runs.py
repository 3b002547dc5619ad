"""Reading run directories written by ``rlkit train`` / ``Agent.train``.

A run directory holds ``progress.csv`` (one row per iteration, see :mod:`rlkit.logging`), the
saved agent in ``final/`` (or, for an unfinished run, the periodic ``checkpoint/``) whose
``config.json`` names the agent, the env and the seed, and, after ``rlkit train``, ``eval.json``
with the evaluation of the final agent.

Everything here is plain NumPy: no plotting library is needed to build score matrices.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PROGRESS_FILE = "progress.csv"
EVAL_FILE = "eval.json"
STEP_COLUMN = "global_step"
DEFAULT_METRIC = "rollout/return_mean"
#: where a run's config.json is looked for, in order.
CONFIG_LOCATIONS = ("final", "checkpoint")

PathLike = str | Path


@dataclass(frozen=True)
class RunInfo:
    """One run directory: its path, agent id, env id and seed (``None`` if it had none)."""

    path: Path
    algorithm: str
    env_id: str
    seed: int | None

    @classmethod
    def from_dir(cls, run_dir: PathLike) -> RunInfo:
        """Read the agent, env id and seed from ``run_dir/final/config.json`` (else
        ``run_dir/checkpoint/config.json``)."""
        path = Path(run_dir)
        config = _read_config(path)
        algorithm = config.get("agent")
        env = config.get("env")
        env_id = env.get("id") if isinstance(env, dict) else None
        if not isinstance(algorithm, str) or not isinstance(env_id, str):
            raise ValueError(
                f"run directory {path}: its config.json does not name both a registered agent "
                f"(agent: {algorithm!r}) and an env id (env: {{'id': ...}}); runs of an "
                "unregistered agent class or of an env given as a callable cannot be compared"
            )
        hyper = config.get("hyperparameters")
        seed = hyper.get("seed") if isinstance(hyper, dict) else None
        if seed is None and isinstance(env, dict):
            seed = env.get("seed")
        return cls(path, algorithm, env_id, int(seed) if isinstance(seed, int) else None)


def _read_config(run_dir: Path) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run directory at {run_dir}")
    for sub in CONFIG_LOCATIONS:
        file = run_dir / sub / "config.json"
        if file.is_file():
            try:
                config = json.loads(file.read_text())
            except json.JSONDecodeError as e:
                raise ValueError(f"run config {file} is not valid JSON: {e}") from None
            if not isinstance(config, dict):
                raise ValueError(f"run config {file} is not a JSON object")
            return config
    raise FileNotFoundError(
        f"run directory {run_dir} has no saved agent config (looked for "
        f"{' and '.join(f'{s}/config.json' for s in CONFIG_LOCATIONS)}); pass directories "
        "written by `rlkit train`"
    )


def is_run_dir(path: PathLike) -> bool:
    """Whether ``path`` looks like a run directory (has ``progress.csv``)."""
    return (Path(path) / PROGRESS_FILE).is_file()


def find_runs(paths: Iterable[PathLike]) -> list[Path]:
    """Expand ``paths``: a run directory stands for itself, any other directory for the run
    directories directly inside it (sorted). Duplicates are dropped, order is kept."""
    found: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise FileNotFoundError(f"no run directory at {path}")
        if is_run_dir(path) or not path.is_dir():
            candidates = [path]
        else:
            candidates = sorted(p for p in path.iterdir() if p.is_dir() and is_run_dir(p))
            if not candidates:
                raise FileNotFoundError(
                    f"{path} is not a run directory ({PROGRESS_FILE} not found) and holds none"
                )
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def load_progress(run_dir: PathLike) -> dict[str, np.ndarray]:
    """The columns of ``run_dir/progress.csv`` as float64 arrays of equal length (empty or
    missing cells are NaN)."""
    file = Path(run_dir) / PROGRESS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"run directory {run_dir} has no {PROGRESS_FILE}")
    with file.open(newline="") as f:
        reader = csv.DictReader(f)
        columns: dict[str, list[float]] = {name: [] for name in reader.fieldnames or []}
        if not columns:
            raise ValueError(f"{file} is empty (no header row)")
        for line, row in enumerate(reader, start=2):
            for name, values in columns.items():
                cell = row.get(name)
                if cell is None or cell.strip() == "":
                    values.append(math.nan)
                    continue
                try:
                    values.append(float(cell))
                except ValueError:
                    raise ValueError(
                        f"{file} line {line}: column {name!r} holds {cell!r}, not a number"
                    ) from None
    return {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}


def _column(progress: dict[str, np.ndarray], metric: str, run_dir: PathLike) -> np.ndarray:
    if metric not in progress:
        raise ValueError(
            f"{Path(run_dir) / PROGRESS_FILE} has no column {metric!r}; columns: "
            f"{', '.join(progress)}"
        )
    return progress[metric]


def final_score(run_dir: PathLike) -> float:
    """A run's final score: ``return_mean`` of ``eval.json`` (written by ``rlkit train`` after
    training) when present, else the last logged ``rollout/return_mean`` of ``progress.csv``."""
    path = Path(run_dir)
    eval_file = path / EVAL_FILE
    if eval_file.is_file():
        try:
            result = json.loads(eval_file.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{eval_file} is not valid JSON: {e}") from None
        value = result.get("return_mean") if isinstance(result, dict) else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"{eval_file} has no numeric 'return_mean'")
        return float(value)
    returns = _column(load_progress(path), DEFAULT_METRIC, path)
    finite = returns[np.isfinite(returns)]
    if finite.size == 0:
        raise ValueError(
            f"run directory {path} has no {EVAL_FILE} and its {PROGRESS_FILE} records no "
            f"finished episode ({DEFAULT_METRIC} is empty)"
        )
    return float(finite[-1])


def group_runs(run_dirs: Iterable[PathLike]) -> dict[tuple[str, str], list[RunInfo]]:
    """Runs grouped by ``(algorithm, env_id)``: keys sorted, runs within a group sorted by seed
    (then path). A directory given twice counts once."""
    groups: dict[tuple[str, str], list[RunInfo]] = {}
    seen: set[Path] = set()
    for run_dir in run_dirs:
        info = RunInfo.from_dir(run_dir)
        key = info.path.resolve()
        if key in seen:
            continue
        seen.add(key)
        groups.setdefault((info.algorithm, info.env_id), []).append(info)
    return {
        key: sorted(runs, key=lambda r: (r.seed is None, r.seed or 0, str(r.path)))
        for key, runs in sorted(groups.items())
    }


def score_matrix(run_dirs: Iterable[PathLike]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Final scores (see :func:`final_score`) as ``algorithm -> [runs, tasks]`` with tasks the
    sorted env ids, the input of :mod:`rlkit.evaluation.stats`.

    Every algorithm must have runs on every task, and the same number of runs on each of them
    (no padding or dropping: a ``ValueError`` names the offending groups). Different algorithms
    may have different numbers of runs. Row ``i`` holds each task's ``i``-th run by seed.
    """
    groups = group_runs(run_dirs)
    if not groups:
        raise ValueError("no runs given")
    tasks = sorted({env for _, env in groups})
    algorithms = sorted({algo for algo, _ in groups})
    scores: dict[str, np.ndarray] = {}
    for algo in algorithms:
        missing = [env for env in tasks if (algo, env) not in groups]
        if missing:
            raise ValueError(
                f"{algo} has no runs on {', '.join(missing)}; every algorithm needs runs on "
                f"every task ({', '.join(tasks)})"
            )
        counts = {env: len(groups[(algo, env)]) for env in tasks}
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{n} on {env}" for env, n in counts.items())
            raise ValueError(
                f"{algo} has unequal run counts per task ({listed}); a [runs, tasks] score "
                "matrix needs the same number of runs of an algorithm on every task"
            )
        columns = [[final_score(r.path) for r in groups[(algo, env)]] for env in tasks]
        scores[algo] = np.asarray(columns, dtype=np.float64).T
    return scores, tasks


def _curve(run: RunInfo, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one run where both are finite, steps increasing (a repeated step
    keeps its last value)."""
    progress = load_progress(run.path)
    steps = _column(progress, STEP_COLUMN, run.path)
    values = _column(progress, metric, run.path)
    ok = np.isfinite(steps) & np.isfinite(values)
    if not ok.any():
        raise ValueError(f"run directory {run.path}: {metric!r} has no values in {PROGRESS_FILE}")
    steps, values = steps[ok], values[ok]
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    keep = np.append(steps[1:] != steps[:-1], True)
    return steps[keep], values[keep]


def _grid(curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int, label: str) -> np.ndarray:
    low = max(float(s[0]) for s, _ in curves)
    high = min(float(s[-1]) for s, _ in curves)
    if high < low:
        raise ValueError(f"the logged steps of the runs of {label} do not overlap")
    return np.linspace(low, high, points)


def learning_curve_matrix(
    run_dirs: Iterable[PathLike],
    metric: str = DEFAULT_METRIC,
    points: int = 50,
    shared_grid: bool = True,
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Learning curves of ``metric`` per ``(algorithm, env_id)`` as ``(steps [points],
    values [runs, points])``, runs sorted by seed.

    Each run's curve is linearly interpolated onto the step grid, which spans only the steps
    every run of the grid reached (no extrapolation). With ``shared_grid`` all algorithms on an
    env share one grid (so their columns line up; a longer run is cut at the shortest one's
    end); otherwise each ``(algorithm, env_id)`` group has its own.
    """
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    groups = group_runs(run_dirs)
    if not groups:
        raise ValueError("no runs given")
    curves = {key: [_curve(run, metric) for run in runs] for key, runs in groups.items()}
    grids: dict[tuple[str, str], np.ndarray] = {}
    if shared_grid:
        for env in sorted({env for _, env in groups}):
            on_env = [c for (_, e), cs in curves.items() if e == env for c in cs]
            grid = _grid(on_env, points, env)
            grids.update({key: grid for key in curves if key[1] == env})
    else:
        grids = {key: _grid(cs, points, f"{key[0]} on {key[1]}") for key, cs in curves.items()}
    return {
        key: (grids[key], np.stack([np.interp(grids[key], s, v) for s, v in cs]))
        for key, cs in curves.items()
    }
