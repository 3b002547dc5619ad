"""Speed and score benchmark: rlkit PPO vs Stable-Baselines3 PPO on CartPole-v1.

Both libraries train in the same process with the same hyperparameters, thread count and
device; runs alternate (rlkit, sb3, sb3, rlkit, ...) so machine noise hits both alike.
Every timing is printed next to its peer figure (the SB3 run or raw env stepping).

    python benchmarks/ppo_cartpole_vs_sb3.py                    # about a minute on 2 cores
    python benchmarks/ppo_cartpole_vs_sb3.py --seeds 0 1 2 --repeats 2 --json bench.json

Stable-Baselines3 is the optional ``bench`` extra: ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import rlkit
from rlkit.agents import PPO
from rlkit.envs import make_vec_env

ENV_ID = "CartPole-v1"
NUM_ENVS = 8
EVAL_EPISODES = 20
#: train seed + this = evaluation seed (rlkit's ``evaluate`` default; used for SB3 too).
EVAL_SEED_OFFSET = 10_000

#: identical PPO hyperparameters, named as in rlkit (SB3 names in :func:`train_sb3`).
HYPERPARAMETERS: dict[str, Any] = {
    "num_envs": NUM_ENVS,
    "num_steps": 32,
    "batch_size": 256,
    "num_epochs": 20,
    "lr": 1e-3,
    "anneal_lr": False,
    "gamma": 0.98,
    "gae_lambda": 0.8,
    "clip_range": 0.2,
    "clip_range_vf": None,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "normalize_advantages": True,
    "network": "separate actor/critic MLPs 64-64 tanh, orthogonal init",
    "adam_eps": 1e-8,  # SB3's default (rlkit's is 1e-5); set equal for an identical setup
    "device": "cpu",
}


@dataclasses.dataclass
class RunResult:
    """One training run of one library."""

    library: str
    seed: int
    repeat: int
    order: int
    steps: int
    train_s: float
    sps: float
    return_mean: float
    return_std: float
    threads: int
    #: seconds of the training call spent collecting rollouts and in the gradient updates.
    rollout_s: float = 0.0
    update_s: float = 0.0
    #: rlkit only: whether its fused CPU kernels ran (None for SB3).
    fused: bool | None = None


# --------------------------------------------------------------------------- helpers
def _import_sb3() -> Any:
    """Import stable_baselines3 lazily; exit with an install hint if it is missing."""
    try:
        import stable_baselines3
    except ImportError:
        sys.exit(
            "this benchmark needs Stable-Baselines3 (the optional 'bench' extra): "
            'pip install -e ".[bench]"'
        )
    return stable_baselines3


def _time_method(obj: Any, name: str, totals: dict[str, float]) -> None:
    """Accumulate the wall time of ``obj.name(...)`` calls in ``totals[name]``."""
    original = getattr(obj, name)
    totals[name] = 0.0

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - start

    setattr(obj, name, timed)


def _rlkit_agent(seed: int, threads: int, fused: bool = True) -> PPO:
    """rlkit PPO on a fresh seeded CartPole vector env, with the shared hyperparameters.

    ``fused=False`` forces rlkit's general autograd path instead of its fused CPU kernels
    (same maths; shows what the kernels contribute)."""
    env = make_vec_env(ENV_ID, num_envs=NUM_ENVS, seed=seed)
    hp = {k: v for k, v in HYPERPARAMETERS.items() if k not in ("num_envs", "network")}
    agent = PPO(env, seed=seed, num_threads=threads, **hp)
    agent.use_fused_kernels = fused
    return agent


def train_rlkit(
    seed: int, steps: int, threads: int, repeat: int, order: int, fused: bool = True
) -> RunResult:
    """Build, train (timed) and evaluate rlkit PPO."""
    torch.set_num_threads(threads)
    agent = _rlkit_agent(seed, threads, fused)
    phases: dict[str, float] = {}
    _time_method(agent, "collect_rollout", phases)
    _time_method(agent, "update", phases)
    start = time.perf_counter()
    agent.train(steps, progress_bar=False)
    train_s = time.perf_counter() - start
    used_threads = torch.get_num_threads()
    result = agent.evaluate(episodes=EVAL_EPISODES)  # fresh env, seed + EVAL_SEED_OFFSET
    agent.env.close()
    return RunResult(
        "rlkit",
        seed,
        repeat,
        order,
        agent.global_step,
        train_s,
        agent.global_step / train_s,
        result["return_mean"],
        result["return_std"],
        used_threads,
        phases["collect_rollout"],
        phases["update"],
        agent.fused_kernel() is not None,
    )


def train_sb3(seed: int, steps: int, threads: int, repeat: int, order: int) -> RunResult:
    """Build, train (timed) and evaluate Stable-Baselines3 PPO."""
    _import_sb3()
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(threads)
    hp = HYPERPARAMETERS
    env = sb3_make_vec_env(ENV_ID, n_envs=NUM_ENVS, seed=seed)
    model = SB3PPO(
        "MlpPolicy",
        env,
        learning_rate=hp["lr"],
        n_steps=hp["num_steps"],
        batch_size=hp["batch_size"],
        n_epochs=hp["num_epochs"],
        gamma=hp["gamma"],
        gae_lambda=hp["gae_lambda"],
        clip_range=hp["clip_range"],
        clip_range_vf=hp["clip_range_vf"],
        normalize_advantage=hp["normalize_advantages"],
        ent_coef=hp["ent_coef"],
        vf_coef=hp["vf_coef"],
        max_grad_norm=hp["max_grad_norm"],
        policy_kwargs={
            "net_arch": {"pi": [64, 64], "vf": [64, 64]},
            "activation_fn": torch.nn.Tanh,
        },
        device=hp["device"],
        seed=seed,
        verbose=0,
    )
    phases: dict[str, float] = {}
    _time_method(model, "collect_rollouts", phases)
    _time_method(model, "train", phases)
    start = time.perf_counter()
    model.learn(total_timesteps=steps, progress_bar=False)
    train_s = time.perf_counter() - start
    used_threads = torch.get_num_threads()
    eval_env = sb3_make_vec_env(ENV_ID, n_envs=NUM_ENVS, seed=seed + EVAL_SEED_OFFSET)
    returns, _ = evaluate_policy(
        model,
        eval_env,
        n_eval_episodes=EVAL_EPISODES,
        deterministic=True,
        return_episode_rewards=True,
    )
    eval_env.close()
    env.close()
    return RunResult(
        "sb3",
        seed,
        repeat,
        order,
        int(model.num_timesteps),
        train_s,
        model.num_timesteps / train_s,
        float(np.mean(returns)),
        float(np.std(returns)),
        used_threads,
        phases["collect_rollouts"],
        phases["train"],
    )


def rollout_throughput(threads: int, calls: int, rounds: int, fused: bool = True) -> dict[str, Any]:
    """rlkit ``collect_rollout`` steps/s vs raw random-action stepping of the same vector env.

    Each round times ``calls`` rollouts (after a warm-up) and the same number of raw env steps;
    the medians over rounds are reported.
    """
    torch.set_num_threads(threads)
    agent = _rlkit_agent(0, threads, fused)
    raw_env = make_vec_env(ENV_ID, num_envs=NUM_ENVS, seed=0)
    per_call = agent.config.num_steps * agent.num_envs
    vector_steps = calls * agent.config.num_steps

    def time_rollouts(n: int) -> float:
        total = 0.0
        for _ in range(n):
            start = time.perf_counter()
            agent.collect_rollout()
            total += time.perf_counter() - start
            agent.storage.reset()
        return total

    def time_raw(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            raw_env.step(raw_env.action_space.sample())
        return time.perf_counter() - start

    time_rollouts(5)  # warm-up
    time_raw(5 * agent.config.num_steps)
    rlkit_sps, raw_sps = [], []
    for _ in range(rounds):
        rlkit_sps.append(calls * per_call / time_rollouts(calls))
        raw_sps.append(vector_steps * NUM_ENVS / time_raw(vector_steps))
    agent.env.close()
    raw_env.close()
    rlkit_med, raw_med = statistics.median(rlkit_sps), statistics.median(raw_sps)
    return {
        "env_steps_per_round": calls * per_call,
        "rounds": rounds,
        "rlkit_rollout_sps": rlkit_med,
        "raw_env_sps": raw_med,
        "fraction": rlkit_med / raw_med,
        "rlkit_rollout_sps_all": rlkit_sps,
        "raw_env_sps_all": raw_sps,
    }


def _cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else platform's best guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int) -> dict[str, Any]:
    """CPU count, library versions and the torch thread count used."""
    sb3 = _import_sb3()
    return {
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
        "rlkit": rlkit.__version__,
        "stable_baselines3": sb3.__version__,
    }


# --------------------------------------------------------------------------- reporting
def _range(values: list[float]) -> str:
    return f"{min(values):,.0f} .. {max(values):,.0f}"


def _score(run: RunResult) -> str:
    return f"{run.return_mean:.1f} ± {run.return_std:.1f}"


def summarize(runs: list[RunResult]) -> dict[str, Any]:
    """Paired ratios (same seed and repeat) and per-library medians / score summaries."""
    by_key = {(r.library, r.seed, r.repeat): r for r in runs}
    pairs = []
    for r in runs:
        if r.library != "rlkit":
            continue
        peer = by_key[("sb3", r.seed, r.repeat)]
        pairs.append({"seed": r.seed, "repeat": r.repeat, "ratio": r.sps / peer.sps})
    out: dict[str, Any] = {
        "pairs": pairs,
        "ratio_median": statistics.median(p["ratio"] for p in pairs),
    }
    for lib in ("rlkit", "sb3"):
        mine = [r for r in runs if r.library == lib]
        means = [r.return_mean for r in mine]
        out[lib] = {
            "sps_median": statistics.median(r.sps for r in mine),
            "sps_all": [r.sps for r in mine],
            "return_mean_of_runs": float(np.mean(means)),
            "return_std_across_runs": float(np.std(means)),
            "return_std_within_run_mean": float(np.mean([r.return_std for r in mine])),
        }
    return out


def print_report(
    machine: dict[str, Any],
    args: argparse.Namespace,
    runs: list[RunResult],
    summary: dict[str, Any],
    rollout: dict[str, Any] | None,
) -> None:
    """The readable table."""
    print()
    print(
        f"PPO on {ENV_ID}: rlkit {machine['rlkit']} vs Stable-Baselines3 "
        f"{machine['stable_baselines3']}"
    )
    print(
        f"machine: {machine['cpu_count']} CPUs ({machine['affinity_cpus']} usable), "
        f"{machine['processor']}, torch {machine['torch']}, torch threads {args.threads}, "
        f"python {machine['python']}"
    )
    print(
        f"setup: {NUM_ENVS} envs x 32 steps, minibatch 256, 20 epochs, lr 1e-3 constant, "
        "gamma 0.98, lambda 0.8,"
    )
    print(
        "       clip 0.2, ent 0.0, vf 0.5, grad-norm 0.5, adv. norm, 64-64 tanh actor/critic, CPU"
    )
    print(
        f"       {args.steps:,} steps/run; eval {EVAL_EPISODES} deterministic episodes on a "
        f"fresh env seeded train seed + {EVAL_SEED_OFFSET}"
    )
    print("       Adam eps 1e-8 for both (SB3's default; rlkit's default is 1e-5)")
    path = (
        "general autograd path (--rlkit-autograd)" if args.rlkit_autograd else "fused CPU kernels"
    )
    print(f"       rlkit path: {path}")
    print()
    header = (
        f"{'seed':>4} {'rep':>3} | {'rlkit steps/s':>13} {'sb3 steps/s':>12} "
        f"{'ratio':>6} | {'rlkit return':>14} {'sb3 return':>14}"
    )
    print(header)
    print("-" * len(header))
    by_key = {(r.library, r.seed, r.repeat): r for r in runs}
    for pair in summary["pairs"]:
        mine = by_key[("rlkit", pair["seed"], pair["repeat"])]
        peer = by_key[("sb3", pair["seed"], pair["repeat"])]
        print(
            f"{pair['seed']:>4} {pair['repeat']:>3} | {mine.sps:>13,.0f} {peer.sps:>12,.0f} "
            f"{pair['ratio']:>6.2f} | {_score(mine):>14} {_score(peer):>14}"
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
    rl_score = f"{rl['return_mean_of_runs']:.1f} ± {rl_std:.1f}"
    sb_score = f"{sb['return_mean_of_runs']:.1f} ± {sb_std:.1f}"
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
    print(f"{'  final return':<30} {rl_score:>16} {sb_score:>16}")
    print("  ratio: rlkit/sb3 training steps/s, median of the per-pair ratios")
    print(f"  final return: {what}")
    print()
    print("where the training time goes (median seconds per run; ratio = sb3 / rlkit time)")
    print(f"{'':<30} {'rlkit':>16} {'sb3':>16} {'ratio':>8}")
    for label, field in (
        ("  collecting rollouts", "rollout_s"),
        ("  gradient updates", "update_s"),
    ):
        mine_s = statistics.median(getattr(r, field) for r in runs if r.library == "rlkit")
        peer_s = statistics.median(getattr(r, field) for r in runs if r.library == "sb3")
        print(f"{label:<30} {mine_s:>16.2f} {peer_s:>16.2f} {peer_s / mine_s:>8.2f}")
    if rollout is not None:
        print()
        print(
            f"rollout only (median of {rollout['rounds']} rounds x "
            f"{rollout['env_steps_per_round']:,} env steps, after a warm-up)"
        )
        print(
            f"{'':<14} {'rlkit collect_rollout':>22} {'raw random-action env':>22} {'fraction':>9}"
        )
        print(
            f"{'  steps/s':<14} {rollout['rlkit_rollout_sps']:>22,.0f} "
            f"{rollout['raw_env_sps']:>22,.0f} {rollout['fraction']:>9.2f}"
        )
    print()


def runs_std(runs: list[RunResult], library: str) -> float:
    """Episode-return std of the (single) run of ``library``."""
    return next(r.return_std for r in runs if r.library == library)


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="env steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    parser.add_argument("--repeats", type=int, default=1, help="repeats per seed (noise)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both")
    parser.add_argument(
        "--rollout-calls", type=int, default=40, help="collect_rollout calls per timing round"
    )
    parser.add_argument("--rollout-rounds", type=int, default=3, help="rollout timing rounds")
    parser.add_argument("--json", type=Path, default=None, help="write all figures here")
    parser.add_argument(
        "--rlkit-autograd",
        action="store_true",
        help="run rlkit on its general autograd path instead of its fused CPU kernels",
    )
    args = parser.parse_args(argv)
    for name in ("steps", "repeats", "threads", "rollout_calls", "rollout_rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds must not repeat a seed (use --repeats)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the paired training benchmark, the rollout benchmark, print and optionally save."""
    args = parse_args(argv)
    machine = machine_info(args.threads)
    runs: list[RunResult] = []
    order = 0
    pair_index = 0
    total = len(args.seeds) * args.repeats
    for repeat in range(args.repeats):
        for seed in args.seeds:
            libs = ("rlkit", "sb3") if pair_index % 2 == 0 else ("sb3", "rlkit")
            for lib in libs:
                if lib == "rlkit":
                    run = train_rlkit(
                        seed, args.steps, args.threads, repeat, order, not args.rlkit_autograd
                    )
                else:
                    run = train_sb3(seed, args.steps, args.threads, repeat, order)
                order += 1
                runs.append(run)
            pair_index += 1
            print(
                f"[{pair_index}/{total}] seed {seed} repeat {repeat} trained",
                file=sys.stderr,
                flush=True,
            )
    rollout = rollout_throughput(
        args.threads, args.rollout_calls, args.rollout_rounds, not args.rlkit_autograd
    )
    summary = summarize(runs)
    print_report(machine, args, runs, summary, rollout)
    if args.json is not None:
        payload = {
            "benchmark": "ppo_cartpole_vs_sb3",
            "env": ENV_ID,
            "machine": machine,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "hyperparameters": HYPERPARAMETERS,
            "eval": {
                "episodes": EVAL_EPISODES,
                "deterministic": True,
                "seed_offset": EVAL_SEED_OFFSET,
            },
            "runs": [dataclasses.asdict(r) for r in runs],
            "summary": summary,
            "rollout": rollout,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
