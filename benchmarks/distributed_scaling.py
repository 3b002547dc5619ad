"""Env steps per second of distributed IMPALA versus the number of actors, per backend.

For each backend (``local``: actors in the learner's process; ``process``: one subprocess per
actor; ``ray``: one Ray actor each) and each actor count, the script builds IMPALA on
CartPole-v1, lets the actors start and warm up, then runs learner iterations for
``--seconds`` and counts the env steps the learner consumed. Scaling efficiency is
``sps_n / (n * sps_1)`` within a backend: 1.0 is linear scaling.

    python benchmarks/distributed_scaling.py                       # ~3 minutes on 2 cores
    python benchmarks/distributed_scaling.py --backends process ray --actors 1 2 4 8
    python benchmarks/distributed_scaling.py --mode sync --json scaling.json

The table goes to stdout, progress lines to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from typing import Any

import numpy as np
import torch

import rlkit
from rlkit.agents import IMPALA
from rlkit.envs import make_vec_env

NUMERIC = (
    "env_steps",
    "seconds",
    "sps",
    "iterations",
    "learner_busy",
    "actor_wait",
    "policy_lag_mean",
    "startup_s",
    "broadcast_mb",
)


def measure(
    backend: str,
    num_actors: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    env = make_vec_env(args.env, num_envs=args.envs_per_actor, seed=0)
    agent = IMPALA(
        env,
        seed=0,
        backend=backend,
        mode=args.mode,
        num_actors=num_actors,
        num_steps=args.num_steps,
        actor_num_cpus=args.actor_cpus,
    )
    try:
        start = time.perf_counter()
        agent.start_actors()
        for _ in range(args.warmup):  # includes actor start-up (process / Ray actor creation)
            agent.iteration()
        startup_s = time.perf_counter() - start
        steps0, t0 = agent.global_step, time.perf_counter()
        learn_s = wait_s = 0.0
        lags: list[float] = []
        iterations = 0
        while time.perf_counter() - t0 < args.seconds:
            metrics = agent.iteration()
            learn_s += metrics["time/learn_s"]
            wait_s += metrics["time/actor_wait_s"]
            lags.append(metrics["distributed/policy_lag_mean"])
            iterations += 1
        elapsed = time.perf_counter() - t0
        steps = agent.global_step - steps0
    finally:
        agent.close()
        env.close()
    return {
        "backend": backend,
        "actors": num_actors,
        "env_steps": steps,
        "seconds": elapsed,
        "sps": steps / elapsed,
        "iterations": iterations,
        "learner_busy": learn_s / elapsed,
        "actor_wait": wait_s / elapsed,
        "policy_lag_mean": float(np.mean(lags)) if lags else 0.0,
        "startup_s": startup_s,
        "broadcast_mb": agent.weights().num_bytes() / 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=["local", "process", "ray"])
    parser.add_argument("--actors", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--mode", choices=["sync", "async"], default="async")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--envs-per-actor", type=int, default=8)
    parser.add_argument("--num-steps", type=int, default=64, help="unroll length")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per setting")
    parser.add_argument("--warmup", type=int, default=5, help="untimed learner iterations")
    parser.add_argument("--actor-cpus", type=float, default=1.0, help="Ray CPUs reserved per actor")
    parser.add_argument("--ray-cpus", type=int, default=None, help="logical CPUs for ray.init")
    parser.add_argument("--repeats", type=int, default=1, help="medians over repeats")
    parser.add_argument("--json", default=None, help="also write every figure as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)

    ray_started = False
    if "ray" in args.backends:
        try:
            import ray
        except ImportError:
            sys.exit('the ray backend needs Ray: pip install "rlkit[ray]"')
        cpus = args.ray_cpus or max(os.cpu_count() or 1, int(max(args.actors) * args.actor_cpus))
        ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)
        ray_started = True

    runs: list[dict[str, Any]] = []
    total = args.repeats * len(args.backends) * len(args.actors)
    try:
        for repeat in range(args.repeats):
            # alternate the order so that slow periods of a shared machine spread out
            order = [(b, n) for b in args.backends for n in args.actors]
            for backend, n in order if repeat % 2 == 0 else order[::-1]:
                run = measure(backend, n, args)
                run["repeat"] = repeat
                runs.append(run)
                print(
                    f"[{len(runs)}/{total}] {backend} x{n}: {run['sps']:.0f} steps/s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if ray_started:
            import ray

            ray.shutdown()
    rows = []
    for backend in args.backends:
        for n in args.actors:
            mine = [r for r in runs if r["backend"] == backend and r["actors"] == n]
            row = {k: float(np.median([r[k] for r in mine])) for k in NUMERIC}
            row.update(backend=backend, actors=n, sps_runs=[r["sps"] for r in mine])
            rows.append(row)

    base = {r["backend"]: r["sps"] for r in rows if r["actors"] == min(args.actors)}
    n0 = min(args.actors)
    print(
        f"\nIMPALA on {args.env}: {args.envs_per_actor} envs/actor, unroll {args.num_steps}, "
        f"mode {args.mode}, {args.seconds:.0f} s timed per run, median of {args.repeats} "
        f"run(s), {os.cpu_count()} CPUs\n"
    )
    header = (
        "| backend | actors | env steps/s | scaling eff. | learner busy | waiting on actors "
        "| mean policy lag |"
    )
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        eff = r["sps"] / (r["actors"] / n0 * base[r["backend"]])
        r["scaling_efficiency"] = eff
        print(
            f"| {r['backend']} | {r['actors']} | {r['sps']:,.0f} | {eff:.2f} | "
            f"{r['learner_busy']:.0%} | {r['actor_wait']:.0%} | {r['policy_lag_mean']:.2f} |"
        )
    print(f"\nweights per broadcast: {rows[0]['broadcast_mb'] * 1e3:.1f} kB")
    if args.json:
        machine = {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "rlkit": rlkit.__version__,
        }
        with open(args.json, "w") as f:
            json.dump(
                {"settings": vars(args), "machine": machine, "rows": rows, "runs": runs},
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
