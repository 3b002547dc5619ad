"""``rlkit plot`` and ``rlkit compare``: figures and aggregate tables from run directories.

:func:`add_parsers` registers both subcommands on the ``rlkit`` parser and :func:`run` executes
them. Errors are raised (``ValueError``, ``FileNotFoundError``, ``ImportError``) for the caller
to report.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlkit.evaluation.plots import BANDS
from rlkit.evaluation.runs import DEFAULT_METRIC, find_runs, score_matrix

KINDS = ("learning", "intervals", "profiles", "improvement")
COMMANDS = ("plot", "compare")
RAW_METRICS = ("median", "iqm", "mean")
NORMALIZED_METRICS = (*RAW_METRICS, "optimality_gap")


def _add_stats_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument(
        "--confidence", type=float, default=0.95, help="confidence level (default 0.95)"
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument(
        "--normalize",
        action="append",
        metavar="ENV=LOW:HIGH",
        help="normalise ENV's final scores to (score - LOW) / (HIGH - LOW), e.g. "
        "CartPole-v1=0:500; repeat for every env (needed for a meaningful optimality gap and "
        "for aggregating envs with different score scales)",
    )


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``plot`` and ``compare`` on the ``rlkit`` command's subparsers."""
    plot = subparsers.add_parser(
        "plot",
        help="plot learning curves or aggregate statistics of runs",
        description="Plot run directories (a directory of runs stands for the runs in it). "
        "learning: mean curve over seeds, one panel per env and one line per algorithm, with "
        "a band chosen by --band. intervals / profiles / improvement: bootstrap interval "
        "estimates, performance profiles or probability of improvement of the runs' final "
        "scores (eval.json, else the last rollout/return_mean).",
    )
    plot.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories")
    plot.add_argument("-o", "--output", required=True, help="image file (.png, .svg or .pdf)")
    plot.add_argument("--kind", choices=KINDS, default="learning", help="figure (default learning)")
    plot.add_argument(
        "--metric",
        help=f"progress.csv column for --kind learning (default {DEFAULT_METRIC})",
    )
    plot.add_argument(
        "--band",
        choices=BANDS,
        help="band around learning curves (--kind learning): auto (default) draws a "
        "percentile bootstrap CI of the mean for 5+ runs (--confidence, --reps, --seed), the "
        "min-max range of the runs for 2-4 runs and none for one run; bootstrap, range, t "
        "(Student-t CI, very wide for few runs) or none force one",
    )
    plot.add_argument("--title", help="figure title")
    _add_stats_options(plot)
    compare = subparsers.add_parser(
        "compare",
        help="aggregate final scores of runs with confidence intervals",
        description="Median, IQM, mean and optimality gap of the runs' final scores (eval.json, "
        "else the last rollout/return_mean) per algorithm, with stratified-bootstrap "
        "confidence intervals.",
    )
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    _add_stats_options(compare)


def _bounds(specs: Sequence[str] | None, tasks: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    parsed: dict[str, tuple[float, float]] = {}
    for spec in specs or ():
        env, eq, rng = spec.rpartition("=")
        low, colon, high = rng.partition(":")
        try:
            if not (eq and env and colon):
                raise ValueError
            parsed[env] = (float(low), float(high))
        except ValueError:
            raise ValueError(f"--normalize {spec!r}: expected ENV=LOW:HIGH") from None
    missing = [t for t in tasks if t not in parsed]
    if missing:
        raise ValueError(f"--normalize gives no bounds for {', '.join(missing)}")
    unused = sorted(set(parsed) - set(tasks))
    if unused:
        raise ValueError(f"--normalize names env(s) without runs: {', '.join(unused)}")
    lows, highs = zip(*(parsed[t] for t in tasks), strict=True)
    return np.asarray(lows), np.asarray(highs)


def _scores(args: argparse.Namespace) -> tuple[dict[str, np.ndarray], list[str], bool]:
    from rlkit.evaluation.stats import normalize_scores

    scores, tasks = score_matrix(find_runs(args.runs))
    if not args.normalize:
        return scores, tasks, False
    low, high = _bounds(args.normalize, tasks)
    return {k: normalize_scores(v, low, high) for k, v in scores.items()}, tasks, True


def _plot(args: argparse.Namespace) -> int:
    from rlkit.evaluation import plots, stats

    if args.kind == "learning":
        if args.normalize:
            raise ValueError("--normalize applies to final scores, not to --kind learning")
        path = plots.plot_learning_curves(
            find_runs(args.runs),
            args.output,
            metric=args.metric or DEFAULT_METRIC,
            confidence=args.confidence,
            title=args.title,
            band=args.band or "auto",
            resamples=args.reps,
            seed=args.seed,
        )
        print(f"saved {path}")
        return 0
    if args.metric:
        raise ValueError("--metric applies to --kind learning only (final scores are returns)")
    if args.band:
        raise ValueError("--band applies to --kind learning only")
    scores, tasks, normalized = _scores(args)
    label = "Normalized score" if normalized else "Final return"
    common: dict[str, Any] = {"reps": args.reps, "confidence": args.confidence, "seed": args.seed}
    if args.kind == "intervals":
        metrics = NORMALIZED_METRICS if normalized else RAW_METRICS
        estimates = stats.interval_estimates(scores, metrics=metrics, **common)
        title = args.title or f"{args.confidence:.0%} CIs over {', '.join(tasks)}"
        path = plots.plot_interval_estimates(estimates, args.output, xlabel=label, title=title)
    elif args.kind == "profiles":
        values = np.concatenate([s.ravel() for s in scores.values()])
        pad = 0.05 * (values.max() - values.min()) or 1.0
        taus = np.linspace(values.min() - pad, values.max() + pad, 101)
        profiles = stats.performance_profiles(scores, taus, **common)
        path = plots.plot_performance_profiles(
            profiles, taus, args.output, xlabel=f"{label} threshold", title=args.title
        )
    else:
        if len(scores) < 2:
            raise ValueError("--kind improvement needs runs of at least two algorithms")
        pairs = {
            (x, y): stats.probability_of_improvement_interval(scores[x], scores[y], **common)
            for x, y in itertools.combinations(scores, 2)
        }
        path = plots.plot_probability_of_improvement(pairs, args.output, title=args.title)
    print(f"saved {path}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from rlkit.evaluation import stats

    scores, tasks, normalized = _scores(args)
    common: dict[str, Any] = {"reps": args.reps, "confidence": args.confidence, "seed": args.seed}
    if args.json:
        estimates = stats.interval_estimates(scores, **common)
        result = {
            "tasks": tasks,
            "normalized": normalized,
            "runs": {algo: int(s.shape[0]) for algo, s in scores.items()},
            "scores": {algo: s.tolist() for algo, s in scores.items()},
            "estimates": {
                algo: {m: {"point": e.point, "low": e.low, "high": e.high} for m, e in est.items()}
                for algo, est in estimates.items()
            },
            "confidence": args.confidence,
            "reps": args.reps,
        }
        print(json.dumps(result))
        return 0
    runs = ", ".join(f"{algo} {s.shape[0]}" for algo, s in scores.items())
    kind = "normalized" if normalized else "raw (optimality_gap assumes 1 is the target)"
    print(f"final scores on {', '.join(tasks)}; runs per task: {runs}; scores {kind}")
    print(stats.aggregate_table(scores, **common))
    return 0


def run(args: argparse.Namespace) -> int:
    """Execute ``rlkit plot`` or ``rlkit compare`` (``args.command``); returns the exit code."""
    if args.command == "plot":
        return _plot(args)
    if args.command == "compare":
        return _compare(args)
    raise ValueError(f"rlkit.evaluation.cli.run: unknown command {args.command!r}")
