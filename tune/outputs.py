"""What a study leaves in its run directory besides the study itself: the trial table, the best
configuration as a ``rlkit train --config`` file, plots and the multi-seed re-evaluation."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlkit.evaluation import interval_estimates
from rlkit.utils.files import write_bytes_atomic

from .records import TrialRecord, best_of, to_csv
from .space import SearchSpace
from .trial import TrialPlan, seed_scores


def _plain(value: Any) -> Any:
    """YAML-safe: tuples become lists, mappings and lists recurse."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def best_config(plan: TrialPlan, params: Mapping[str, Any]) -> dict[str, Any]:
    """A flat run config (what ``rlkit train --config`` reads): env and run settings, every
    hyperparameter of the base config with the drawn values over it, and the primitives.
    ``total_steps`` is the study's budget, the setting the score was measured at."""
    run, hyper, prims = plan.settings(params)
    out: dict[str, Any] = {"env": run["env"]}
    for key in ("num_envs", "asynchronous", "env_kwargs"):
        if key in run:
            out[key] = run[key]
    out["total_steps"] = plan.budget
    out.update({k: v for k, v in hyper.items() if k != "seed"})
    out.update(prims)
    return _plain(out)


def write_best(path: Path, algo: str, plan: TrialPlan, best: TrialRecord, total: int) -> Path:
    """Write ``best.yaml`` with a header saying where it came from and how to use it."""
    header = (
        f"# rlkit tune {algo}: the best of {total} trials (trial {best.number}, mean final "
        f"return {best.value:.4g} over seeds {list(plan.seeds)} at {plan.budget} steps).\n"
        f"# Train it: rlkit train {algo} --config {path.name}\n"
    )
    body = yaml.safe_dump(best_config(plan, best.params), sort_keys=False)
    write_bytes_atomic(path, (header + body).encode())
    return path


def write_trials(out: Path, records: Sequence[TrialRecord]) -> None:
    write_bytes_atomic(out / "trials.csv", to_csv(records).encode())


@dataclasses.dataclass(frozen=True)
class Reevaluation:
    """A top trial trained again on fresh seeds: per-seed scores and interval estimates."""

    number: int
    role: str
    params: dict[str, Any]
    seeds: list[int]
    scores: list[float]
    mean: float
    iqm: float
    ci_low: float
    ci_high: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def reevaluate(
    plan: TrialPlan,
    records: Sequence[TrialRecord],
    top: int,
    seeds: Sequence[int],
    baselines: Sequence[Mapping[str, Any]] = (),
) -> list[Reevaluation]:
    """Train the ``top`` best complete trials again on ``seeds`` (not the search's seeds, so
    the score is not the one the search selected on), and the trials that ran the
    ``baselines`` (the ``start`` configurations) for comparison; estimate IQM and mean with
    95% stratified-bootstrap intervals (:func:`rlkit.evaluation.interval_estimates`)."""
    done = sorted(
        (r for r in records if r.state == "complete" and r.value is not None),
        key=lambda r: (-(r.value or 0.0), r.number),
    )
    chosen = [(r, "top") for r in done[:top]]
    ran = sorted(records, key=lambda r: r.number)
    for values in baselines:
        match = next((r for r in ran if r.params == dict(values)), None)
        if match is not None and all(match is not r for r, _ in chosen):
            chosen.append((match, "start"))
    fresh = dataclasses.replace(plan, seeds=tuple(seeds))
    out = []
    for record, role in chosen:
        scores = seed_scores(fresh, record.params, lambda step, score: False)
        key = f"trial {record.number}"
        estimate = interval_estimates(
            {key: np.asarray(scores, dtype=np.float64)[:, None]}, metrics=("iqm", "mean")
        )[key]
        out.append(
            Reevaluation(
                number=record.number,
                role=role,
                params=dict(record.params),
                seeds=list(seeds),
                scores=scores,
                mean=float(estimate["mean"].point),
                iqm=float(estimate["iqm"].point),
                ci_low=float(estimate["iqm"].low),
                ci_high=float(estimate["iqm"].high),
            )
        )
    return out


def reevaluation_table(rows: Sequence[Reevaluation]) -> str:
    lines = ["trial  role   seeds  IQM [95% CI]              mean"]
    for r in rows:
        interval = f"{r.iqm:.4g} [{r.ci_low:.4g}, {r.ci_high:.4g}]"
        lines.append(f"{r.number:<5}  {r.role:<5}  {len(r.seeds):<5}  {interval:<24}  {r.mean:.4g}")
    return "\n".join(lines)


def importances(records: Sequence[TrialRecord], space: SearchSpace) -> dict[str, float]:
    """Parameter importances over the complete trials by Optuna's PED-ANOVA evaluator (no
    scikit-learn needed, unlike fANOVA); empty with fewer than two complete trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = space.distributions()
    study = optuna.create_study(direction="maximize")
    labels = {p.name: p for p in space.params}
    added = 0
    for r in records:
        if r.state != "complete" or r.value is None:
            continue
        stored = {}
        for name, value in r.params.items():
            param = labels.get(name)
            if param is None:
                continue
            stored[name] = param.encode(value)
        study.add_trial(
            optuna.trial.create_trial(
                params=stored,
                distributions={k: distributions[k] for k in stored},
                value=r.value,
            )
        )
        added += 1
    if added < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "quantiles select the same trials"
            result = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
    except (RuntimeError, ValueError):
        return {}
    return {k: float(v) for k, v in result.items() if math.isfinite(v)}


def plot(out: Path, records: Sequence[TrialRecord], weights: Mapping[str, float]) -> list[Path]:
    """``history.png`` (score per trial and best so far) and ``importance.png``; needs
    matplotlib (``pip install 'rlkit[plot]'``)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "rlkit tune: the plots need matplotlib: pip install 'rlkit[plot]' (or pass --no-plots)"
        ) from None
    written = []
    ordered = sorted(records, key=lambda r: r.number)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for state, marker, colour in (("complete", "o", "C0"), ("pruned", "x", "C7")):
        xs = [r.number for r in ordered if r.state == state and r.value is not None]
        ys = [r.value for r in ordered if r.state == state and r.value is not None]
        if xs:
            ax.scatter(xs, ys, marker=marker, color=colour, label=state)
    best_x, best_y, best = [], [], -math.inf
    for r in ordered:
        if r.state == "complete" and r.value is not None:
            best = max(best, r.value)
        if best > -math.inf:
            best_x.append(r.number)
            best_y.append(best)
    if best_x:
        ax.step(best_x, best_y, where="post", color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("score (mean final return)")
    ax.set_title("Optimisation history")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "history.png", dpi=100)
    plt.close(fig)
    written.append(out / "history.png")
    if weights:
        names = sorted(weights, key=lambda k: weights[k])
        fig, ax = plt.subplots(figsize=(6.4, 0.6 + 0.4 * len(names)))
        ax.barh(names, [weights[n] for n in names], color="C0")
        ax.set_xlabel("importance (PED-ANOVA)")
        ax.set_title("Parameter importance")
        fig.tight_layout()
        fig.savefig(out / "importance.png", dpi=100)
        plt.close(fig)
        written.append(out / "importance.png")
    return written


def write_summary(out: Path, summary: Mapping[str, Any]) -> None:
    write_bytes_atomic(out / "summary.json", json.dumps(summary, indent=2, default=str).encode())


__all__ = [
    "Reevaluation",
    "best_config",
    "best_of",
    "importances",
    "plot",
    "reevaluate",
    "reevaluation_table",
    "write_best",
    "write_summary",
    "write_trials",
]
