"""Aggregate scores with honest uncertainty: the statistics of "Deep RL at the Edge of the
Statistical Precipice" (Agarwal et al., 2021).

Scores are arrays ``[runs, tasks]`` (one number per training run and task, usually normalised
so that 0 is a baseline and 1 a target); a :data:`ScoreDict` maps algorithm names to them.
Point estimates follow the reference implementation (``rliable``); confidence intervals are
percentile intervals over a *stratified* bootstrap that resamples runs independently within
each task, computed for all replicates at once.

Only numpy is needed; nothing here imports matplotlib or torch.
"""

from __future__ import annotations

import numbers
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "AGGREGATES",
    "IntervalEstimate",
    "ScoreDict",
    "aggregate_table",
    "interval_estimates",
    "iqm",
    "mean",
    "median",
    "normalize_scores",
    "optimality_gap",
    "performance_profile",
    "performance_profiles",
    "probability_of_improvement",
    "probability_of_improvement_interval",
    "sample_efficiency_curves",
    "stratified_bootstrap_indices",
]

ScoreDict = Mapping[str, np.ndarray]
"""Algorithm name -> scores ``[runs, tasks]``."""

# Bootstrap replicates are processed in chunks of at most this many resampled scores, so memory
# stays bounded for large studies. Typical sizes (e.g. 20000 x 10 runs x 20 tasks) fit one chunk.
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class IntervalEstimate:
    """A point estimate with the ends of its confidence interval."""

    point: float
    low: float
    high: float


# --------------------------------------------------------------------------- validation


def _as_array(value: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of numbers ({err})") from None
    return array


def _check_scores(value: Any, name: str, ndim: int = 2) -> np.ndarray:
    array = _as_array(value, name)
    layout = "[runs, tasks]" if ndim == 2 else "[runs, tasks, points]"
    if array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array {layout}, got shape {array.shape}")
    if 0 in array.shape:
        raise ValueError(f"{name} needs at least one entry along each axis, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite values only (found NaN or inf)")
    return array


def _check_score_dict(
    score_dict: Any, name: str = "score_dict", ndim: int = 2
) -> dict[str, np.ndarray]:
    if not isinstance(score_dict, Mapping):
        raise TypeError(f"{name} must be a mapping algorithm -> scores, got {type(score_dict)}")
    if not score_dict:
        raise ValueError(f"{name} is empty: give at least one algorithm")
    checked = {
        key: _check_scores(value, f"{name}[{key!r}]", ndim) for key, value in score_dict.items()
    }
    tasks = {key: array.shape[1] for key, array in checked.items()}
    if len(set(tasks.values())) > 1:
        raise ValueError(f"{name}: every algorithm needs the same number of tasks, got {tasks}")
    return checked


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_confidence(confidence: Any) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real):
        raise TypeError(f"confidence must be a number, got {confidence!r}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return float(confidence)


def _check_taus(taus: Any) -> np.ndarray:
    array = _as_array(taus, "taus")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"taus must be a non-empty 1-d array of thresholds, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("taus must hold finite values only (found NaN or inf)")
    return array


def _check_metrics(metrics: Any, name: str = "metrics") -> list[str]:
    if isinstance(metrics, str):
        metrics = [metrics]
    names = list(metrics)
    if not names:
        raise ValueError(f"{name} is empty: choose from {sorted(AGGREGATES)}")
    unknown = [m for m in names if m not in AGGREGATES]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown} in {name}; valid: {sorted(AGGREGATES)}")
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- aggregates
# The batched forms take [..., runs, tasks] and return [...]: the leading axes are replicates.


def _batched_mean(scores: np.ndarray) -> np.ndarray:
    return np.asarray(scores.mean(axis=-2).mean(axis=-1))


def _batched_median(scores: np.ndarray) -> np.ndarray:
    return np.asarray(np.median(scores.mean(axis=-2), axis=-1))


def _batched_iqm(scores: np.ndarray) -> np.ndarray:
    flat = scores.reshape(*scores.shape[:-2], -1)
    n = flat.shape[-1]
    cut = n // 4  # == int(0.25 * n), scipy.stats.trim_mean's cut
    # One score matrix: partition like scipy.stats.trim_mean, so that the point estimate is the
    # same float as rliable's (the middle scores are summed in the same order). Bootstrap
    # replicates: sorting many short rows at once is several times faster than partitioning them;
    # the sum order then differs from scipy's only in the last bits.
    one = flat.ndim == 1
    ordered = np.partition(flat, (cut, n - cut - 1)) if one else np.sort(flat, axis=-1)
    return np.asarray(ordered[..., cut : n - cut].mean(axis=-1))


def _batched_optimality_gap(scores: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    return np.asarray(threshold - np.minimum(scores, threshold).mean(axis=(-2, -1)))


_BATCHED: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": _batched_mean,
    "median": _batched_median,
    "iqm": _batched_iqm,
    "optimality_gap": _batched_optimality_gap,
}


def mean(scores: np.ndarray) -> float:
    """Mean over all runs and tasks (the mean of the per-task mean scores)."""
    return float(_batched_mean(_check_scores(scores, "scores")))


def median(scores: np.ndarray) -> float:
    """Median over tasks of the per-task mean score over runs."""
    return float(_batched_median(_check_scores(scores, "scores")))


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of all run x task scores.

    The lowest and highest ``n // 4`` of the ``n = runs * tasks`` scores are dropped, as in
    ``scipy.stats.trim_mean(scores, 0.25, axis=None)``.
    """
    return float(_batched_iqm(_check_scores(scores, "scores")))


def optimality_gap(scores: np.ndarray, threshold: float = 1.0) -> float:
    """How far scores fall short of ``threshold`` on average: ``threshold - mean(min(s, thr))``.

    Lower is better; scores above the threshold earn nothing extra.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a number, got {threshold!r}")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    checked = _check_scores(scores, "scores")
    return float(_batched_optimality_gap(checked, float(threshold)))


AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "mean": mean,
    "median": median,
    "iqm": iqm,
    "optimality_gap": optimality_gap,
}
"""Aggregate metrics by name (``optimality_gap`` at its default threshold of 1)."""


def normalize_scores(
    scores: np.ndarray, low: np.ndarray | float, high: np.ndarray | float
) -> np.ndarray:
    """Map raw scores to ``(s - low) / (high - low)``.

    ``scores`` is ``[runs, tasks]`` or ``[runs, tasks, points]``; ``low`` and ``high`` are
    numbers or per-task arrays ``[tasks]`` (e.g. random and human scores), so 0 means "as good as
    ``low``" and 1 "as good as ``high``".
    """
    array = _as_array(scores, "scores")
    if array.ndim not in (2, 3):
        raise ValueError(
            f"scores must be [runs, tasks] or [runs, tasks, points], got shape {array.shape}"
        )
    array = _check_scores(array, "scores", array.ndim)
    tasks = array.shape[1]
    bounds = []
    for name, bound in (("low", low), ("high", high)):
        b = _as_array(bound, name)
        if b.ndim > 1 or (b.ndim == 1 and b.shape[0] != tasks):
            raise ValueError(f"{name} must be a number or an array [tasks={tasks}], got {b.shape}")
        if not np.all(np.isfinite(b)):
            raise ValueError(f"{name} must hold finite values only (found NaN or inf)")
        bounds.append(b.reshape(-1, *([1] * (array.ndim - 2))) if b.ndim == 1 else b)
    lo, hi = bounds
    if np.any(hi == lo):
        raise ValueError("high must differ from low for every task")
    return np.asarray((array - lo) / (hi - lo))


# --------------------------------------------------------------------------- bootstrap


def stratified_bootstrap_indices(
    num_runs: int, num_tasks: int, reps: int, rng: np.random.Generator
) -> np.ndarray:
    """Run indices ``[reps, runs, tasks]`` drawn with replacement, independently for each task.

    ``scores[idx[r], np.arange(num_tasks)]`` is the ``r``-th resample of ``scores`` ``[runs,
    tasks]``: every task keeps its own runs (the bootstrap is stratified by task).
    """
    num_runs = _check_int(num_runs, "num_runs", 1)
    num_tasks = _check_int(num_tasks, "num_tasks", 1)
    reps = _check_int(reps, "reps", 1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng)}")
    return rng.integers(0, num_runs, size=(reps, num_runs, num_tasks))


def _rng_for(seed: int, key: object) -> np.random.Generator:
    """An independent stream per (seed, algorithm), so results ignore dict order and company."""
    return np.random.default_rng([seed, zlib.crc32(str(key).encode("utf-8"))])


def _index_chunks(
    num_runs: int, num_tasks: int, reps: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Bootstrap indices in chunks of replicates (one chunk for typical sizes)."""
    per_chunk = max(1, _CHUNK_ELEMENTS // (num_runs * num_tasks))
    for start in range(0, reps, per_chunk):
        yield stratified_bootstrap_indices(num_runs, num_tasks, min(per_chunk, reps - start), rng)


def _resample(scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Gather ``scores [runs, tasks, ...]`` at run indices ``[reps, runs, tasks]``."""
    return np.asarray(scores[idx, np.arange(scores.shape[1])])


def _resample_counts(idx: np.ndarray, num_runs: int) -> np.ndarray:
    """How often each original run appears in each resample: ``[reps, runs, tasks]`` floats."""
    reps, _, tasks = idx.shape
    flat = (np.arange(reps)[:, None, None] * num_runs + idx) * tasks + np.arange(tasks)
    counts = np.bincount(flat.ravel(), minlength=reps * num_runs * tasks)
    return counts.reshape(reps, num_runs, tasks).astype(np.float64)


def _percentile_interval(
    replicates: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [100.0 * alpha, 100.0 * (1.0 - alpha)], axis=0)
    return np.asarray(low), np.asarray(high)


def interval_estimates(
    score_dict: ScoreDict,
    metrics: Sequence[str] = ("median", "iqm", "mean", "optimality_gap"),
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, IntervalEstimate]]:
    """Point estimates and stratified-bootstrap percentile CIs: algorithm -> metric -> estimate.

    Every metric of an algorithm is computed on the same ``reps`` resamples; each algorithm
    draws from its own stream derived from ``seed`` and its name.
    """
    checked = _check_score_dict(score_dict)
    names = _check_metrics(metrics)
    reps = _check_int(reps, "reps", 1)
    confidence = _check_confidence(confidence)
    seed = _check_int(seed, "seed", 0)
    results: dict[str, dict[str, IntervalEstimate]] = {}
    for key, scores in checked.items():
        runs, tasks = scores.shape
        parts: dict[str, list[np.ndarray]] = {m: [] for m in names}
        for idx in _index_chunks(runs, tasks, reps, _rng_for(seed, key)):
            resampled = _resample(scores, idx)
            for m in names:
                parts[m].append(_BATCHED[m](resampled))
        results[key] = {}
        for m in names:
            low, high = _percentile_interval(np.concatenate(parts[m]), confidence)
            point = float(_BATCHED[m](scores))
            results[key][m] = IntervalEstimate(point, float(low), float(high))
    return results


# --------------------------------------------------------------------------- improvement


def _pairwise_wins(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[runs_x, runs_y, tasks]``: 1 where x beats y, 1/2 on ties, 0 otherwise."""
    a, b = x[:, None, :], y[None, :, :]
    return (a > b).astype(np.float64) + 0.5 * (a == b)


def _check_pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    xa, ya = _check_scores(x, "x"), _check_scores(y, "y")
    if xa.shape[1] != ya.shape[1]:
        raise ValueError(
            f"x and y need the same number of tasks, got {xa.shape[1]} (x) and {ya.shape[1]} (y)"
        )
    return xa, ya


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): the chance that a run of X beats a run of Y on a task, averaged over tasks.

    Per task this is the Mann-Whitney U statistic over ``n * m`` (ties count 1/2).
    """
    xa, ya = _check_pair(x, y)
    per_task = _pairwise_wins(xa, ya).mean(axis=(0, 1))
    return float(per_task.mean())


def probability_of_improvement_interval(
    x: np.ndarray, y: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> IntervalEstimate:
    """P(X > Y) with a percentile CI; x and y are resampled independently, stratified by task."""
    xa, ya = _check_pair(x, y)
    reps = _check_int(reps, "reps", 1)
    confidence = _check_confidence(confidence)
    seed = _check_int(seed, "seed", 0)
    (nx, tasks), ny = xa.shape, ya.shape[0]
    # U of a resample = sum_ij count_x[i] * wins[i, j] * count_y[j] (per task): a batched matmul
    # over the original runs instead of comparing every resampled pair.
    wins = _pairwise_wins(xa, ya).transpose(2, 0, 1)  # [tasks, nx, ny]
    stream_x, stream_y = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    per_chunk = max(1, _CHUNK_ELEMENTS // (max(nx, ny) * tasks))
    parts = []
    for start in range(0, reps, per_chunk):
        n = min(per_chunk, reps - start)
        cx = _resample_counts(stratified_bootstrap_indices(nx, tasks, n, stream_x), nx)
        cy = _resample_counts(stratified_bootstrap_indices(ny, tasks, n, stream_y), ny)
        u = (np.matmul(cx.transpose(2, 0, 1), wins) * cy.transpose(2, 0, 1)).sum(axis=-1)
        parts.append(u.mean(axis=0) / (nx * ny))  # [n]
    low, high = _percentile_interval(np.concatenate(parts), confidence)
    return IntervalEstimate(probability_of_improvement(xa, ya), float(low), float(high))


# --------------------------------------------------------------------------- profiles


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of runs scoring above each ``tau`` (averaged over tasks), shape ``[len(taus)]``.

    This is the run-score distribution of the paper: an empirical tail ``P(score > tau)``.
    """
    checked = _check_scores(scores, "scores")
    thresholds = _check_taus(taus)
    ordered = np.sort(checked, axis=None)
    above = ordered.size - np.searchsorted(ordered, thresholds, side="right")
    return np.asarray(above / ordered.size)


def performance_profiles(
    score_dict: ScoreDict,
    taus: np.ndarray,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Performance profiles with pointwise bootstrap CIs: algorithm -> (point, low, high)."""
    checked = _check_score_dict(score_dict)
    thresholds = _check_taus(taus)
    reps = _check_int(reps, "reps", 1)
    confidence = _check_confidence(confidence)
    seed = _check_int(seed, "seed", 0)
    results: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for key, scores in checked.items():
        runs, tasks = scores.shape
        # The fraction above tau in a resample is a count-weighted sum over the original runs.
        above = (scores[:, :, None] > thresholds).reshape(runs * tasks, -1).astype(np.float64)
        parts = []
        for idx in _index_chunks(runs, tasks, reps, _rng_for(seed, key)):
            counts = _resample_counts(idx, runs).reshape(idx.shape[0], -1)
            parts.append(counts @ above / (runs * tasks))
        low, high = _percentile_interval(np.concatenate(parts), confidence)
        results[key] = (performance_profile(scores, thresholds), low, high)
    return results


def sample_efficiency_curves(
    score_dict: Mapping[str, np.ndarray],
    metric: str = "iqm",
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """An aggregate with CIs at every evaluation point: algorithm -> (point, low, high).

    Scores are ``[runs, tasks, points]``. Whole runs are resampled (per task), so a resample keeps
    each run's learning curve intact; every point's interval is that of its own ``[runs, tasks]``
    slice.
    """
    checked = _check_score_dict(score_dict, ndim=3)
    (name,) = _check_metrics([metric], "metric")
    fn = _BATCHED[name]
    reps = _check_int(reps, "reps", 1)
    confidence = _check_confidence(confidence)
    seed = _check_int(seed, "seed", 0)
    results: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for key, scores in checked.items():
        runs, tasks, points = scores.shape
        by_point = np.ascontiguousarray(scores.transpose(2, 0, 1))  # [points, runs, tasks]
        point = np.array([fn(by_point[p]) for p in range(points)])
        parts = []
        for idx in _index_chunks(runs, tasks, reps, _rng_for(seed, key)):
            parts.append(np.stack([fn(_resample(by_point[p], idx)) for p in range(points)], -1))
        low, high = _percentile_interval(np.concatenate(parts), confidence)
        results[key] = (point, low, high)
    return results


# --------------------------------------------------------------------------- reporting


def _format_estimate(estimate: IntervalEstimate) -> str:
    return f"{estimate.point:.3f} [{estimate.low:.3f}, {estimate.high:.3f}]"


def aggregate_table(
    score_dict: ScoreDict, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> str:
    """A plain-text table, one row per algorithm: each metric as ``point [low, high]``."""
    columns = ["median", "iqm", "mean", "optimality_gap"]
    estimates = interval_estimates(score_dict, columns, reps=reps, confidence=confidence, seed=seed)
    rows = [["algorithm", *columns]]
    rows += [
        [str(key), *(_format_estimate(est[m]) for m in columns)] for key, est in estimates.items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    note = f"{100 * confidence:g}% percentile CIs, stratified bootstrap, {reps} resamples"
    lines.append(f"point [low, high]: {note}")
    return "\n".join(lines)
