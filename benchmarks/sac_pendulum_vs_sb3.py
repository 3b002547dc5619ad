"""Speed and score benchmark: rlkit SAC vs Stable-Baselines3 SAC on Pendulum-v1.

Both libraries train in the same process with the same hyperparameters, network sizes, thread
count and device; runs alternate (rlkit, sb3, sb3, rlkit, ...) so machine noise hits both alike.
Each run reports training steps/s (evaluation excluded), the time spent collecting and in
gradient updates, the mean return of 20 deterministic evaluation episodes, and the training
time to a score threshold (evaluations every ``--eval-every`` env steps, their time excluded).

    python benchmarks/sac_pendulum_vs_sb3.py                    # ~5 minutes on 2 cores
    python benchmarks/sac_pendulum_vs_sb3.py --seeds 0 1 --repeats 2 --json sac.json
    python benchmarks/sac_pendulum_vs_sb3.py --compute reference   # rlkit on plain autograd

The pairing, reporting and JSON machinery is shared with benchmarks/dqn_cartpole_vs_sb3.py
(:func:`run_main`). Stable-Baselines3 is the optional ``bench`` extra:
``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from ppo_cartpole_vs_sb3 import (  # shared helpers of the PPO benchmark (same directory)
    EVAL_EPISODES,
    EVAL_SEED_OFFSET,
    EvalLog,
    RunResult,
    _import_sb3,
    _range,
    _score,
    add_common_options,
    backend_info,
    backend_line,
    check_common_options,
    eval_every_of,
    eval_info,
    machine_info,
    print_backend,
    print_threshold,
    rlkit_run,
    runs_std,
    sb3_run,
    summarize,
)

from rlkit.agents import SAC
from rlkit.envs import make_vec_env
from rlkit.prototypes.off_policy import OffPolicyConfig, retain_freed_memory

ENV_ID = "Pendulum-v1"

#: identical SAC hyperparameters (rl-baselines3-zoo's Pendulum setting: SB3 defaults with
#: lr 1e-3), named as in rlkit; the SB3 names are in :func:`train_sb3`.
HYPERPARAMETERS: dict[str, Any] = {
    "num_envs": 1,
    "lr": 1e-3,
    "buffer_size": 100_000,
    "learning_starts": 100,
    "batch_size": 256,
    "tau": 0.005,
    "gamma": 0.99,
    "train_freq": 1,
    "gradient_steps": 1,
    "ent_coef": "auto",
    "target_entropy": "auto",
    "hidden_sizes": [256, 256],
    "network": "actor and twin critics: MLPs 256-256 ReLU (SB3's defaults); Adam eps 1e-8",
    "device": "cpu",
}


@dataclasses.dataclass
class BenchmarkSpec:
    """What differs between the off-policy benchmarks."""

    name: str
    env_id: str
    default_steps: int
    #: default --threshold (score for the time to threshold) and --eval-every (env steps).
    threshold: float
    eval_every: int
    hyperparameters: dict[str, Any]
    setup_lines: list[str]
    train_rlkit: Callable[[int, int, int, int, int], RunResult]
    train_sb3: Callable[[int, int, int, int, int], RunResult]
    #: the peer's package beside Stable-Baselines3 (e.g. "sb3_contrib"): its version goes into
    #: the machine info and the report's header.
    peer_package: str | None = None
    #: text after the options in --help (e.g. the full-measurement command and its duration).
    epilog: str = ""


# --------------------------------------------------------------------------- runs
def _rlkit_hyper(hp: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hp.items() if k not in ("num_envs", "network")}


@dataclasses.dataclass
class Options:
    """The command line's rlkit backend and evaluation settings (set by :func:`run_main`)."""

    compute: str = "fast"
    compiler: str = "inductor"
    #: rlkit's flush_denormals (--no-flush-denormals: off, to measure what it is worth).
    flush_denormals: bool = True
    #: env steps between intermediate evaluations; None: none (--no-eval).
    eval_every: int | None = None
    threshold: float = 0.0


OPTIONS = Options()


def rlkit_backend_options() -> dict[str, Any]:
    """``compute=``, ``compiler=`` and ``flush_denormals=`` for rlkit agent constructors."""
    return {
        "compute": OPTIONS.compute,
        "compiler": OPTIONS.compiler,
        "flush_denormals": OPTIONS.flush_denormals,
    }


def timed_rlkit_run(agent: Any, seed: int, steps: int, repeat: int, order: int) -> RunResult:
    """Train an rlkit off-policy agent (timed, split into collection and updates, intermediate
    evaluations taken out), evaluate."""
    log = EvalLog(OPTIONS.eval_every, OPTIONS.threshold)
    return rlkit_run(agent, seed, steps, repeat, order, log, ("collect", "train_step"))


def timed_sb3_run(
    model: Any, env_id: str, seed: int, steps: int, repeat: int, order: int
) -> RunResult:
    """Train a Stable-Baselines3 off-policy model (timed, split likewise, evaluated at the
    steps where rlkit's iterations end: every ``OffPolicyConfig.log_interval`` env steps),
    evaluate."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    def make_eval_env() -> Any:
        return sb3_make_vec_env(env_id, n_envs=1, seed=seed + EVAL_SEED_OFFSET)

    log = EvalLog(OPTIONS.eval_every, OPTIONS.threshold)
    iteration = OffPolicyConfig.log_interval  # rlkit's default: env steps per iteration
    return sb3_run(model, make_eval_env, seed, steps, repeat, order, log, iteration)


def train_rlkit(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """Build, train (timed) and evaluate rlkit SAC."""
    torch.set_num_threads(threads)
    env = make_vec_env(ENV_ID, num_envs=1, seed=seed)
    agent = SAC(
        env,
        seed=seed,
        num_threads=threads,
        **rlkit_backend_options(),
        **_rlkit_hyper(HYPERPARAMETERS),
    )
    return timed_rlkit_run(agent, seed, steps, repeat, order)


def train_sb3(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """Build, train (timed) and evaluate Stable-Baselines3 SAC."""
    _import_sb3()
    from stable_baselines3 import SAC as SB3SAC
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

    torch.set_num_threads(threads)
    hp = HYPERPARAMETERS
    model = SB3SAC(
        "MlpPolicy",
        sb3_make_vec_env(ENV_ID, n_envs=1, seed=seed),
        learning_rate=hp["lr"],
        buffer_size=hp["buffer_size"],
        learning_starts=hp["learning_starts"],
        batch_size=hp["batch_size"],
        tau=hp["tau"],
        gamma=hp["gamma"],
        train_freq=hp["train_freq"],
        gradient_steps=hp["gradient_steps"],
        ent_coef=hp["ent_coef"],
        target_entropy=hp["target_entropy"],
        policy_kwargs={"net_arch": list(hp["hidden_sizes"])},
        device=hp["device"],
        seed=seed,
        verbose=0,
    )
    return timed_sb3_run(model, ENV_ID, seed, steps, repeat, order)


SPEC = BenchmarkSpec(
    name="SAC",
    env_id=ENV_ID,
    default_steps=10_000,
    threshold=-200.0,
    eval_every=1_000,
    hyperparameters=HYPERPARAMETERS,
    setup_lines=[
        "1 env, lr 1e-3, buffer 100k, 100 warm-up steps, batch 256, tau 0.005, gamma 0.99,",
        "       1 gradient step per env step, learned entropy coefficient (target -dim A),",
        "       actor and twin critics 256-256 ReLU, Adam eps 1e-8, CPU",
    ],
    train_rlkit=train_rlkit,
    train_sb3=train_sb3,
)


# --------------------------------------------------------------------------- reporting
def print_report(
    spec: BenchmarkSpec,
    machine: dict[str, Any],
    args: argparse.Namespace,
    runs: list[RunResult],
    summary: dict[str, Any],
) -> None:
    """The readable table."""
    print()
    peers = f"Stable-Baselines3 {machine['stable_baselines3']}"
    if spec.peer_package is not None:
        peers += f" + {spec.peer_package.replace('_', '-')} {machine[spec.peer_package]}"
    print(f"{spec.name} on {spec.env_id}: rlkit {machine['rlkit']} vs {peers}")
    print(
        f"machine: {machine['cpu_count']} CPUs ({machine['affinity_cpus']} usable), "
        f"{machine['processor']}, torch {machine['torch']}, torch threads {args.threads}, "
        f"python {machine['python']}"
    )
    print("setup: " + "\n".join(spec.setup_lines))
    print(f"       rlkit path: {backend_line(args)}")
    if machine.get("malloc_retains_freed_memory"):
        print("       glibc malloc keeps freed memory (mallopt) for both libraries")
    print(
        f"       {args.steps:,} steps/run; eval {EVAL_EPISODES} deterministic episodes on a "
        f"fresh env seeded train seed + {EVAL_SEED_OFFSET}"
    )
    print_backend(runs)
    print()
    header = (
        f"{'seed':>4} {'rep':>3} | {'rlkit steps/s':>13} {'sb3 steps/s':>12} "
        f"{'ratio':>6} | {'rlkit return':>16} {'sb3 return':>16}"
    )
    print(header)
    print("-" * len(header))
    by_key = {(r.library, r.seed, r.repeat): r for r in runs}
    for pair in summary["pairs"]:
        mine = by_key[("rlkit", pair["seed"], pair["repeat"])]
        peer = by_key[("sb3", pair["seed"], pair["repeat"])]
        print(
            f"{pair['seed']:>4} {pair['repeat']:>3} | {mine.sps:>13,.0f} {peer.sps:>12,.0f} "
            f"{pair['ratio']:>6.2f} | {_score(mine):>16} {_score(peer):>16}"
        )
    print("-" * len(header))
    rl, sb = summary["rlkit"], summary["sb3"]
    n = len(summary["pairs"])
    if n == 1:
        what = f"mean ± std over the {EVAL_EPISODES} evaluation episodes"
        rl_std, sb_std = runs_std(runs, "rlkit"), runs_std(runs, "sb3")
    else:
        what = f"mean of the {n} runs' {EVAL_EPISODES}-episode means ± std across runs"
        rl_std, sb_std = rl["return_std_across_runs"], sb["return_std_across_runs"]
    print()
    print(
        f"{'summary over ' + str(n) + ' paired run(s)':<30} {'rlkit':>16} {'sb3':>16} {'ratio':>8}"
    )
    print(
        f"{'  training steps/s, median':<30} {rl['sps_median']:>16,.0f} "
        f"{sb['sps_median']:>16,.0f} {summary['ratio_median']:>8.2f}"
    )
    if n > 1:
        print(f"{'    min .. max':<30} {_range(rl['sps_all']):>16} {_range(sb['sps_all']):>16}")
    print(
        f"{'  final return':<30} {rl['return_mean_of_runs']:>10.1f} ± {rl_std:<5.1f}"
        f"{sb['return_mean_of_runs']:>10.1f} ± {sb_std:<5.1f}"
    )
    print("  ratio: rlkit/sb3 training steps/s, median of the per-pair ratios")
    print(f"  final return: {what}")
    print()
    print("where the training time goes (median seconds per run; ratio = sb3 / rlkit time)")
    print(f"{'':<30} {'rlkit':>16} {'sb3':>16} {'ratio':>8}")
    for label, field in (("  collecting", "rollout_s"), ("  gradient updates", "update_s")):
        mine_s = statistics.median(getattr(r, field) for r in runs if r.library == "rlkit")
        peer_s = statistics.median(getattr(r, field) for r in runs if r.library == "sb3")
        print(f"{label:<30} {mine_s:>16.2f} {peer_s:>16.2f} {peer_s / max(mine_s, 1e-9):>8.2f}")
    print("  (rlkit's collection includes storage writes; its updates include batch sampling,")
    print("   SB3's updates include sampling too)")
    print()
    print_threshold(args, runs, summary)


# --------------------------------------------------------------------------- main
def parse_args(spec: BenchmarkSpec, argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=f"{spec.name} on {spec.env_id}: rlkit vs SB3",
        epilog=spec.epilog or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=spec.default_steps, help="env steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    parser.add_argument("--repeats", type=int, default=1, help="repeats per seed (noise)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both")
    parser.add_argument("--json", type=Path, default=None, help="write all figures here")
    add_common_options(parser, spec.threshold, spec.eval_every)
    parser.add_argument(
        "--no-flush-denormals",
        action="store_true",
        help="train rlkit with flush_denormals=False (its default flushes them while training)",
    )
    args = parser.parse_args(argv)
    check_common_options(parser, args)
    for name in ("steps", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds must not repeat a seed (use --repeats)")
    return args


def run_main(spec: BenchmarkSpec, argv: list[str] | None = None) -> int:
    """Run the paired benchmark of ``spec``, print the report and optionally save JSON."""
    args = parse_args(spec, argv)
    OPTIONS.compute, OPTIONS.compiler = args.compute, args.compiler
    OPTIONS.flush_denormals = not args.no_flush_denormals
    OPTIONS.eval_every, OPTIONS.threshold = eval_every_of(args), args.threshold
    machine = machine_info(args.threads)
    if spec.peer_package is not None:
        machine[spec.peer_package] = importlib.import_module(spec.peer_package).__version__
    # rlkit's off-policy agents ask glibc to keep freed memory (fewer page faults per update);
    # the setting is process-wide, so turn it on before the first run: both libraries then
    # train under the same allocator settings and the ratio does not count that gain
    machine["malloc_retains_freed_memory"] = retain_freed_memory()
    runs: list[RunResult] = []
    order = 0
    pair_index = 0
    total = len(args.seeds) * args.repeats
    for repeat in range(args.repeats):
        for seed in args.seeds:
            libs = ("rlkit", "sb3") if pair_index % 2 == 0 else ("sb3", "rlkit")
            for lib in libs:
                fn = spec.train_rlkit if lib == "rlkit" else spec.train_sb3
                run = fn(seed, args.steps, args.threads, repeat, order)
                order += 1
                runs.append(run)
                print(
                    f"  {lib}: seed {seed} repeat {repeat}: {run.sps:,.1f} steps/s, return "
                    f"{run.return_mean:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
            pair_index += 1
            print(f"[{pair_index}/{total}] pairs trained", file=sys.stderr, flush=True)
    summary = summarize(runs, args.threshold, OPTIONS.eval_every)
    print_report(spec, machine, args, runs, summary)
    if args.json is not None:
        payload = {
            "benchmark": f"{spec.name.lower()}_{spec.env_id}_vs_sb3",
            "env": spec.env_id,
            "machine": machine,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "hyperparameters": spec.hyperparameters,
            "eval": eval_info(args),
            "rlkit_backend": backend_info(args, runs),
            "runs": [dataclasses.asdict(r) for r in runs],
            "summary": summary,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(SPEC))
