"""Fidelity and speed against Stable-Baselines3 and sb3-contrib in one markdown table (issue #15).

Runs the paired benchmarks over the same seeds, one after the other in this process:

* DQN on CartPole-v1 vs Stable-Baselines3 DQN (benchmarks/dqn_cartpole_vs_sb3.py),
* QR-DQN on CartPole-v1 vs sb3-contrib QR-DQN (benchmarks/qrdqn_cartpole_vs_sb3.py),
* TQC on Pendulum-v1 vs sb3-contrib TQC (benchmarks/tqc_pendulum_vs_sb3.py),

each with its own protocol (:func:`sac_pendulum_vs_sb3.run_main`: identical hyperparameters,
same thread count, alternating runs, each run's final return the mean of 20 deterministic
evaluation episodes), and prints per task and library the final return's interquartile mean
over seeds with a 95% percentile bootstrap CI (:func:`rlkit.evaluation.interval_estimates`),
training steps/s (mean, std and the rlkit/peer ratio), the CPU model and the thread count.
The per-benchmark reports go to stderr, the markdown to stdout.

    python benchmarks/versus_sb3_summary.py > versus_sb3.md      # 10 seeds, about 3 hours
    python benchmarks/versus_sb3_summary.py --seeds 0 1 2 3 4    # 5 seeds, about 1.5 hours
    python benchmarks/versus_sb3_summary.py --only dqn qrdqn     # the CartPole pair, ~1 hour
    python benchmarks/versus_sb3_summary.py --steps 2000 --seeds 0   # smoke test, a few minutes
    python benchmarks/versus_sb3_summary.py --from-json dqn.json qrdqn.json tqc.json

``--from-json`` summarises the ``--json`` files of earlier runs of the individual scripts
instead of training.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dqn_cartpole_vs_sb3
import numpy as np
import qrdqn_cartpole_vs_sb3
import tqc_pendulum_vs_sb3
from ppo_cartpole_vs_sb3 import COMPUTE_CHOICES, EVAL_EPISODES, EVAL_SEED_OFFSET
from qrdqn_cartpole_vs_sb3 import _import_sb3_contrib
from sac_pendulum_vs_sb3 import BenchmarkSpec, run_main

from rlkit.evaluation import interval_estimates

#: --only name -> (the benchmark, the peer's package (its version's key in the machine info)).
BENCHMARKS: dict[str, tuple[BenchmarkSpec, str]] = {
    "dqn": (dqn_cartpole_vs_sb3.SPEC, "stable_baselines3"),
    "qrdqn": (qrdqn_cartpole_vs_sb3.SPEC, "sb3_contrib"),
    "tqc": (tqc_pendulum_vs_sb3.SPEC, "sb3_contrib"),
}
PACKAGE_NAMES = {"stable_baselines3": "Stable-Baselines3", "sb3_contrib": "sb3-contrib"}
DEFAULT_SEEDS = list(range(10))
CONFIDENCE = 0.95

EPILOG = """\
full measurement (the issue #15 figures: 10 seeds, each script's default budget: DQN and
QR-DQN 50k steps, TQC 20k steps; about 3 hours on a quiet 2-core machine, most of it TQC, as
one process; run nothing else meanwhile):
  python benchmarks/versus_sb3_summary.py --json versus_sb3.json > versus_sb3.md
smoke test (a few minutes): python benchmarks/versus_sb3_summary.py --steps 2000 --seeds 0"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="DQN, QR-DQN and TQC vs Stable-Baselines3 / sb3-contrib: final return IQM "
        "(95% bootstrap CI over seeds) and steps/s, as markdown",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=DEFAULT_SEEDS, help="training seeds (0..9)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="repeats per seed (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (1)")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="env steps per run for every benchmark (default: each script's own, 50k/50k/20k)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(BENCHMARKS),
        default=list(BENCHMARKS),
        help="benchmarks to run (default all: dqn qrdqn tqc)",
    )
    parser.add_argument(
        "--compute", choices=COMPUTE_CHOICES, default="fast", help="rlkit compute backend"
    )
    parser.add_argument(
        "--eval",
        action="store_true",
        help="also evaluate during training (time to threshold in the JSON; adds wall time, "
        "not training time); the default evaluates once, at the end",
    )
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (2000)")
    parser.add_argument("--json", type=Path, default=None, help="write the summary as JSON")
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="+",
        default=None,
        metavar="PATH",
        help="summarise these --json files of the individual scripts instead of training",
    )
    args = parser.parse_args(argv)
    for name in ("repeats", "threads", "reps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds must not repeat a seed (use --repeats)")
    return args


# --------------------------------------------------------------------------- measuring
def run_benchmark(spec: BenchmarkSpec, args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """Run ``spec``'s paired benchmark (its report to stderr) and return its JSON payload."""
    argv = ["--seeds", *map(str, args.seeds), "--repeats", str(args.repeats)]
    argv += ["--threads", str(args.threads), "--compute", args.compute, "--json", str(path)]
    if args.steps is not None:
        argv += ["--steps", str(args.steps)]
    if not args.eval:
        argv.append("--no-eval")
    print(f"== {spec.name} on {spec.env_id}: {' '.join(argv)}", file=sys.stderr, flush=True)
    with contextlib.redirect_stdout(sys.stderr):
        run_main(spec, argv)
    payload: dict[str, Any] = json.loads(path.read_text())
    return payload


def _per_seed_returns(runs: list[dict[str, Any]], library: str) -> dict[int, float]:
    """Final return per seed (the mean over its repeats)."""
    by_seed: dict[int, list[float]] = {}
    for run in runs:
        if run["library"] == library:
            by_seed.setdefault(int(run["seed"]), []).append(float(run["return_mean"]))
    return {seed: float(np.mean(values)) for seed, values in sorted(by_seed.items())}


def summarize_payload(payload: dict[str, Any], reps: int) -> dict[str, Any]:
    """Return IQM with CI and steps/s figures per library of one benchmark's JSON payload."""
    runs = payload["runs"]
    out: dict[str, Any] = {"libraries": {}}
    for library in ("rlkit", "sb3"):
        returns = _per_seed_returns(runs, library)
        scores = np.asarray(list(returns.values()), dtype=np.float64).reshape(-1, 1)
        estimate = interval_estimates(
            {library: scores}, metrics=("iqm",), reps=reps, confidence=CONFIDENCE
        )[library]["iqm"]
        sps = [float(r["sps"]) for r in runs if r["library"] == library]
        out["libraries"][library] = {
            "return_iqm": estimate.point,
            "return_ci": [estimate.low, estimate.high],
            "returns_per_seed": returns,
            "sps_mean": statistics.fmean(sps),
            "sps_std": statistics.stdev(sps) if len(sps) > 1 else 0.0,
            "sps_all": sps,
        }
    mine, peer = out["libraries"]["rlkit"], out["libraries"]["sb3"]
    out["sps_ratio_of_means"] = mine["sps_mean"] / peer["sps_mean"]
    out["sps_ratio_median_of_pairs"] = payload["summary"]["ratio_median"]
    out["return_at_least_peer"] = mine["return_iqm"] >= peer["return_iqm"]
    out["faster"] = out["sps_ratio_of_means"] > 1.0
    return out


# --------------------------------------------------------------------------- markdown
def _fmt_return(value: float) -> str:
    return f"{value:,.1f}"


def markdown(
    results: list[tuple[str, dict[str, Any], dict[str, Any]]],
    machine: dict[str, Any],
    args: argparse.Namespace,
    wall_s: float | None,
) -> str:
    """The summary table: ``results`` holds (peer package, benchmark payload, its summary)."""
    first = results[0][1]
    settings = first["args"]
    versions = f"rlkit {machine['rlkit']}, Stable-Baselines3 {machine['stable_baselines3']}"
    if "sb3_contrib" in machine:
        versions += f", sb3-contrib {machine['sb3_contrib']}"
    seeds = settings["seeds"]
    lines = [
        "## rlkit vs Stable-Baselines3 / sb3-contrib: fidelity and speed (issue #15)",
        "",
        f"- CPU: {machine['processor']}; {machine['cpu_count']} logical CPUs "
        f"({machine['affinity_cpus']} usable); {machine['platform']}",
        f"- threads: torch {settings['threads']} for both libraries (`torch.set_num_threads`)",
        f"- versions: {versions}, torch {machine['torch']}, gymnasium {machine['gymnasium']}, "
        f"python {machine['python']}",
        f"- seeds: {' '.join(map(str, seeds))} ({len(seeds)}), {settings['repeats']} run(s) "
        f"per seed and library, alternating; rlkit compute backend `{settings['compute']}`",
        f"- final return: mean of {EVAL_EPISODES} deterministic episodes on a fresh env seeded "
        f"seed + {EVAL_SEED_OFFSET} after training; IQM over seeds with a "
        f"{100 * CONFIDENCE:g}% percentile bootstrap CI ({args.reps} resamples)",
        "- steps/s: training env steps per second (evaluation excluded), mean ± std over runs; "
        "ratio: rlkit mean / peer mean (median of the per-seed ratios in brackets)",
        "- target: rlkit's return IQM ≥ the peer's, and faster (ratio > 1)",
    ]
    if wall_s is not None:
        lines.append(f"- wall time of the whole measurement: {wall_s / 60:.1f} minutes")
    lines += [
        "",
        "| task | steps/run | library | final return IQM | 95% CI | steps/s | ratio | target |",
        "|---|---|---|---:|---|---:|---:|---|",
    ]
    for peer, payload, summary in results:
        libs = summary["libraries"]
        task = f"{payload['benchmark'].split('_')[0].upper()}, {payload['env']}"
        steps = f"{payload['args']['steps']:,}"
        peer_label = f"{PACKAGE_NAMES[peer]} {machine.get(peer, '?')} {task.split(',')[0]}"
        for library, label in (("rlkit", f"rlkit {machine['rlkit']}"), ("sb3", peer_label)):
            fig = libs[library]
            low, high = fig["return_ci"]
            sps = f"{fig['sps_mean']:,.1f} ± {fig['sps_std']:,.1f}"
            if library == "rlkit":
                ratio = (
                    f"{summary['sps_ratio_of_means']:.2f} "
                    f"({summary['sps_ratio_median_of_pairs']:.2f})"
                )
                met = "return " + ("yes" if summary["return_at_least_peer"] else "no")
                met += ", speed " + ("yes" if summary["faster"] else "no")
                first_cols = f"| {task} | {steps} "
            else:
                ratio, met, first_cols = "1", "", "| | "
            lines.append(
                f"{first_cols}| {label} | {_fmt_return(fig['return_iqm'])} | "
                f"[{_fmt_return(low)}, {_fmt_return(high)}] | {sps} | {ratio} | {met} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run (or load) the benchmarks, print the markdown summary, optionally save JSON."""
    args = parse_args(argv)
    payloads: list[tuple[str, dict[str, Any]]] = []
    wall_s: float | None = None
    if args.from_json is not None:
        peers = {spec.name.lower(): peer for spec, peer in BENCHMARKS.values()}
        for path in args.from_json:
            payload = json.loads(path.read_text())
            name = payload["benchmark"].split("_")[0]
            payloads.append((peers.get(name, "stable_baselines3"), payload))
    else:
        _import_sb3_contrib()
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="versus_sb3_") as tmp:
            for key in args.only:
                spec, peer = BENCHMARKS[key]
                payloads.append((peer, run_benchmark(spec, args, Path(tmp) / f"{key}.json")))
        wall_s = time.perf_counter() - start
    results = [(peer, p, summarize_payload(p, args.reps)) for peer, p in payloads]
    machine = dict(payloads[0][1]["machine"])
    for _, payload in payloads:  # sb3_contrib's version where one of them recorded it
        machine.update({k: v for k, v in payload["machine"].items() if k not in machine})
    print(markdown(results, machine, args, wall_s))
    if args.json is not None:
        out: dict[str, Any] = {
            "benchmark": "versus_sb3_summary",
            "machine": machine,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "wall_s": wall_s,
            "benchmarks": [
                {"peer": peer, "summary": summary, "payload": payload}
                for peer, payload, summary in results
            ],
        }
        out["args"]["from_json"] = [str(p) for p in args.from_json or []]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
