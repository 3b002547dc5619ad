"""Which torch thread count trains fastest: PPO on vector (CartPole-v1) and image observations
(84x84 PixelReach frames through the Nature CNN), with 1 thread and with torch's default, on a
quiet machine and with a busy one (another process spinning on one core).

    python benchmarks/threads.py                 # ~3 minutes on 2 cores
    python benchmarks/threads.py --steps 20000 --busy

Each run builds a fresh agent and times ``agent.train`` alone. The thread count is applied the
way rlkit applies it: the ``num_threads`` hyperparameter, which sets torch's threads for the
duration of ``train`` (what the CLI's ``--num-threads`` sets; its default is
``rlkit.runtime.default_num_threads()``). This is the measurement behind that default
(``docs/performance.md``, "Threads").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
from typing import Any

import torch

import rlkit.envs.pixel  # noqa: F401  (registers rlkit/PixelReach-v0)
from rlkit.agents import PPO
from rlkit.envs import make_vec_env

SETTINGS: dict[str, dict[str, Any]] = {
    "vector": {
        "env": "CartPole-v1",
        "env_kwargs": {},
        "hyper": {"num_steps": 32, "batch_size": 256, "num_epochs": 20, "lr": 1e-3},
    },
    "image": {
        "env": "rlkit/PixelReach-v0",
        "env_kwargs": {"grid": 6, "cell": 14},  # 84x84 frames
        "hyper": {"num_steps": 64, "batch_size": 128, "num_epochs": 4, "lr": 2.5e-4},
    },
}


def _spin(stop: Any) -> None:
    """Keep one core busy (a stand-in for another job on the machine)."""
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def run(kind: str, threads: int | None, steps: int) -> float:
    setting = SETTINGS[kind]
    env = make_vec_env(setting["env"], num_envs=8, seed=0, env_kwargs=setting["env_kwargs"])
    agent = PPO(env, seed=0, num_threads=threads, device="cpu", **setting["hyper"])
    start = time.perf_counter()
    agent.train(steps, progress_bar=False)
    elapsed = time.perf_counter() - start
    env.close()
    return agent.global_step / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000, help="env steps per run")
    parser.add_argument("--busy", action="store_true", help="only the busy-machine runs")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    default = torch.get_num_threads()
    results = []
    loads = [True] if args.busy else [False, True]
    for busy in loads:
        stop = mp.Event()
        spinner = mp.Process(target=_spin, args=(stop,), daemon=True) if busy else None
        if spinner is not None:
            spinner.start()
        try:
            for kind in SETTINGS:
                steps = args.steps if kind == "vector" else max(args.steps // 5, 1024)
                for threads in (1, default):
                    sps = run(kind, threads, steps)
                    row = {"load": "busy" if busy else "quiet", "obs": kind, "threads": threads}
                    results.append({**row, "steps_per_s": round(sps, 1)})
                    print(f"{row['load']:>5} {kind:>6} threads={threads}: {sps:8.1f} steps/s")
        finally:
            if spinner is not None:
                stop.set()
                spinner.join(timeout=5)
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    info["torch"] = torch.__version__
    print(json.dumps(info))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "runs": results}, f, indent=2)


if __name__ == "__main__":
    main()
