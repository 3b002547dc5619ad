"""Exploration benchmark: PPO with each intrinsic reward on an rlkit exploration testbed.

Every run uses the same PPO settings, env count, step budget and seeds; only
``intrinsic_reward`` changes. For each module the table reports how many distinct states the
training envs visited, how many training episodes reached the goal, how many seeds' greedy
policies reach it afterwards (evaluation return), and the wall time.

    python benchmarks/exploration.py                         # DeepChain length 20, 40k steps
    python benchmarks/exploration.py --steps 150000 --seeds 0 1 2
    python benchmarks/exploration.py --env rlkit/SparseGridMaze-v0 \
        --env-kwargs '{"size": 12, "rooms": true}'
    python benchmarks/exploration.py --modules none rnd ngu --markdown

The table goes to stdout; progress lines go to stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlkit.agents import PPO
from rlkit.envs import make_vec_env
from rlkit.rewards import INTRINSIC_REWARDS
from rlkit.utils.files import write_bytes_atomic

NUM_ENVS = 8
PPO_SETTINGS: dict[str, Any] = {
    "num_steps": 128,
    "batch_size": 256,
    "num_epochs": 4,
    "ent_coef": 0.01,
}
DEFAULT_MODULES = ["none", *(m for m in INTRINSIC_REWARDS if m != "combined"), "combined"]
#: "combined" in this benchmark: Combined's default mix (RND + E3B, equal weights).
COMBINED = {"id": "combined"}


@dataclass
class Run:
    module: str
    seed: int
    distinct: int
    goal_episodes: int
    eval_return: float
    seconds: float


def run_one(
    env_id: str, env_kwargs: dict[str, Any], module: str, seed: int, steps: int
) -> tuple[Run, int]:
    """Train PPO (+ ``module``) for ``steps`` env steps; return the run and the state count."""
    env = make_vec_env(env_id, num_envs=NUM_ENVS, seed=seed, env_kwargs=env_kwargs)
    spec: Any = None if module == "none" else COMBINED if module == "combined" else module
    start = time.perf_counter()
    agent = PPO(env, seed=seed, intrinsic_reward=spec, **PPO_SETTINGS)
    agent.train(steps, progress_bar=False)
    seconds = time.perf_counter() - start
    visits = np.sum(env.unwrapped.get_attr("visit_counts"), axis=0)
    num_states = int(env.unwrapped.get_attr("num_states")[0])
    result = agent.evaluate(episodes=NUM_ENVS)
    env.close()
    run = Run(
        module, seed, int((visits > 0).sum()), int(visits[-1]), result["return_mean"], seconds
    )
    return run, num_states


def table(runs: list[Run], num_states: int, markdown: bool) -> str:
    header = [
        "module",
        f"distinct states (of {num_states}) mean [min-max]",
        "goal reached in training (episodes, mean)",
        "seeds whose greedy policy reaches the goal",
        "eval return (mean)",
        "time s (mean)",
    ]
    rows = []
    for module in dict.fromkeys(r.module for r in runs):
        group = [r for r in runs if r.module == module]
        distinct = [r.distinct for r in group]
        rows.append(
            [
                module,
                f"{statistics.mean(distinct):.1f} [{min(distinct)}-{max(distinct)}]",
                f"{statistics.mean(r.goal_episodes for r in group):.0f}",
                f"{sum(r.eval_return > 0.5 for r in group)}/{len(group)}",
                f"{statistics.mean(r.eval_return for r in group):.2f}",
                f"{statistics.mean(r.seconds for r in group):.1f}",
            ]
        )
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), *(fmt.format(*row) for row in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="rlkit/DeepChain-v0", help="an rlkit exploration testbed")
    parser.add_argument(
        "--env-kwargs", default='{"length": 20}', help="JSON keyword arguments of the env"
    )
    parser.add_argument("--steps", type=int, default=40_000, help="env steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--modules",
        nargs="+",
        default=DEFAULT_MODULES,
        help="intrinsic reward ids ('none' = plain PPO; 'combined' = RND + E3B)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--json", help="also write every run as JSON to this file")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m != "none" and m not in INTRINSIC_REWARDS]
    if unknown:
        parser.error(f"unknown modules {unknown}; known: none, {', '.join(INTRINSIC_REWARDS)}")
    env_kwargs = json.loads(args.env_kwargs)
    torch.set_num_threads(args.threads)
    runs: list[Run] = []
    num_states = 0
    total = len(args.modules) * len(args.seeds)
    for module in args.modules:
        for seed in args.seeds:
            run, num_states = run_one(args.env, env_kwargs, module, seed, args.steps)
            runs.append(run)
            print(
                f"[{len(runs)}/{total}] {module} seed {seed}: {run.distinct} states, "
                f"goal {run.goal_episodes}x, eval {run.eval_return:.2f}, {run.seconds:.1f}s",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"{args.env} {env_kwargs}, PPO {PPO_SETTINGS}, {NUM_ENVS} envs, {args.steps} steps, "
        f"seeds {args.seeds}"
    )
    print(table(runs, num_states, args.markdown))
    if args.json:
        write_bytes_atomic(args.json, json.dumps([r.__dict__ for r in runs], indent=2).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
